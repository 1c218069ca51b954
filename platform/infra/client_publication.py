"""Publishing the stack's `ClientConfig`: the stack output and the SSM parameter hold the same JSON.

The values are validated with the toolkit's own model before they are published, so a client never
receives a config that `ClientConfig.parse` would refuse. Nothing secret is in it: clients sign in with
their own AWS identity (`auth: aws-iam`), and the admin secret is not even named.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from toolkit.client_config import ClientConfig, ssm_parameter_name


def tracking_uri(*, https: bool, host: str) -> str:
    """`https://host`; `http://` only for a dev stack without a certificate (PlatformConfig's rule)."""
    return f"{'https' if https else 'http'}://{host}"


def validated_client_config(values: dict[str, Any]) -> dict[str, Any]:
    """The JSON form of a `ClientConfig`, or a `ConfigError` naming the bad field."""
    return ClientConfig.parse(values, source="client config of this stack").model_dump(mode="json", exclude_none=True)


@dataclass(frozen=True)
class ClientConfigPublicationArgs:
    stack: str
    """The Pulumi stack name; it names the SSM parameter."""
    tracking_uri: pulumi.Input[str]
    """The URL clients reach the server at (the domain, else the load balancer's name)."""
    artifact_store_uri: pulumi.Input[str]
    """`s3://<bucket>` of the artifact store."""
    region: str
    """The stack's region."""
    mlflow_version: str
    """The MLflow version the server runs."""
    auth: str = "aws-iam"
    """How clients sign in: `aws-iam` (their own AWS identity, no secret named) or `basic`."""
    credentials_secret_id: pulumi.Input[str] | None = None
    """With `auth: basic` only: the Secrets Manager ARN of the MLflow credentials (never their value)."""
    model_reader_policy_arn: pulumi.Input[str] | None = None
    """The managed policy that lets a scoring pipeline's role read models."""


class ClientConfigPublication(pulumi.ComponentResource):
    """Validates the client config and writes it to `ssm_parameter_name(stack)`."""

    client_config: pulumi.Output[dict[str, Any]]
    """The validated `ClientConfig` as a dict (the stack output `client_config`)."""
    parameter_name: pulumi.Output[str]
    """The SSM parameter holding the same config as JSON."""

    def __init__(
        self, name: str, args: ClientConfigPublicationArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlflow-platform:client:ClientConfigPublication", name, None, opts)
        self.client_config = pulumi.Output.all(
            tracking_uri=args.tracking_uri,
            artifact_store_uri=args.artifact_store_uri,
            credentials_secret_id=args.credentials_secret_id,
            model_reader_policy_arn=args.model_reader_policy_arn,
        ).apply(
            lambda resolved: validated_client_config(
                {
                    "stack": args.stack,
                    "tracking_uri": resolved["tracking_uri"],
                    "artifact_store_uri": resolved["artifact_store_uri"],
                    "region": args.region,
                    "credentials_secret_id": resolved["credentials_secret_id"],
                    "mlflow_version": args.mlflow_version,
                    "auth": args.auth,
                    "model_reader_policy_arn": resolved["model_reader_policy_arn"],
                }
            )
        )
        parameter = aws.ssm.Parameter(
            f"{name}-parameter",
            name=ssm_parameter_name(args.stack),
            type="String",
            tier="Standard",
            description="mlflow-platform ClientConfig (no secret values), read by `config pull --from-ssm`",
            # `insecure_value`: the provider would mark `value` secret and hide every diff of a config
            # that holds no secret at all.
            insecure_value=pulumi.Output.json_dumps(self.client_config),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.parameter_name = parameter.name
        self.register_outputs({"client_config": self.client_config, "parameter_name": self.parameter_name})
