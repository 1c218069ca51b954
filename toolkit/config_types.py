"""Value types that both config models (`PlatformConfig`, `ClientConfig`) use, defined once."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

__all__ = ["AwsRegion", "MlflowVersion", "StackName"]

# eu-west-1, us-gov-west-1, ap-southeast-2, ...
AwsRegion = Annotated[str, Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")]
# An exact MLflow release: the server image and the toolkit must agree on it.
MlflowVersion = Annotated[str, Field(pattern=r"^\d+\.\d+\.\d+$")]
# What Pulumi accepts as a stack name (it also names the SSM parameter and secrets).
StackName = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,100}$")]
