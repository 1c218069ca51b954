"""Where the toolkit's defaults come from, field by field, first match wins:

explicit argument > environment (`MLFLOW_PLATFORM_<FIELD>`, MLflow's `MLFLOW_TRACKING_URI`) >
profile file (the stack's, or the active one) > the SSM parameter the stack published.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from toolkit.aws import aws_client, explain_aws_error
from toolkit.client_config import ClientConfig, ssm_parameter_name
from toolkit.errors import ConfigError
from toolkit.profiles import active_profile_name, load_profile, profile_exists

ENV_PREFIX = "MLFLOW_PLATFORM_"
# MLflow's own variables, consulted after ours for the same field.
MLFLOW_ENV_ALIASES = {"tracking_uri": "MLFLOW_TRACKING_URI"}
FIELDS = tuple(ClientConfig.model_fields)


@dataclass(frozen=True)
class ResolvedClientConfig:
    """The config and, per field, where its value came from (for `config show` and error messages)."""

    config: ClientConfig
    sources: dict[str, str]


def env_layer(environ: Mapping[str, str]) -> dict[str, tuple[Any, str]]:
    layer: dict[str, tuple[Any, str]] = {}
    for field in FIELDS:
        for name in (ENV_PREFIX + field.upper(), MLFLOW_ENV_ALIASES.get(field)):
            if name and environ.get(name):
                layer[field] = (environ[name], f"env {name}")
                break
    return layer


def read_ssm_client_config(stack: str, *, region: str | None, endpoint_url: str | None = None) -> ClientConfig:
    """The `ClientConfig` a stack published to SSM, read with the caller's AWS identity."""
    name = ssm_parameter_name(stack)
    try:
        ssm = aws_client("ssm", region=region or _default_region(), endpoint_url=endpoint_url)
        value = ssm.get_parameter(Name=name)["Parameter"]["Value"]
    except Exception as exc:
        raise explain_aws_error(exc, doing=f"reading SSM parameter {name}") from exc
    return ClientConfig.parse(json.loads(value), source=f"SSM parameter {name}")


def _default_region() -> str:
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        raise ConfigError(
            "client config", ["region: not set; pass region=..., or set MLFLOW_PLATFORM_REGION or AWS_REGION"]
        )
    return region


def resolve_client_config(
    explicit: Mapping[str, Any] | None = None,
    *,
    stack: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> ResolvedClientConfig:
    """Merge the layers field by field; the first layer that has a field wins.

    With a stack named (argument or `MLFLOW_PLATFORM_STACK`), the profile of that stack is used, never
    another stack's; the SSM parameter is read only when fields are still missing after the profile.
    """
    environ = os.environ if environ is None else environ
    layers: list[dict[str, tuple[Any, str]]] = [
        {k: (v, "argument") for k, v in (explicit or {}).items() if v is not None},
        env_layer(environ),
    ]
    wanted_stack = stack or environ.get(ENV_PREFIX + "STACK")
    profile = wanted_stack if wanted_stack and profile_exists(wanted_stack) else None
    if wanted_stack is None:
        profile = active_profile_name()
    if profile:
        layers.append(
            {k: (v, f"profile {profile}") for k, v in load_profile(profile).model_dump().items() if v is not None}
        )

    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for layer in layers:
        for field, (value, source) in layer.items():
            if field not in merged:
                merged[field], sources[field] = value, source
    missing = [f for f in FIELDS if f not in merged and ClientConfig.model_fields[f].is_required()]
    if missing and wanted_stack:
        published = read_ssm_client_config(
            wanted_stack, region=merged.get("region"), endpoint_url=merged.get("aws_endpoint_url")
        )
        for field, value in published.model_dump().items():
            if field not in merged and value is not None:
                merged[field], sources[field] = value, f"SSM {ssm_parameter_name(wanted_stack)}"
        missing = []
    if missing:
        hint = (
            "run `mlflow-platform config pull --stack NAME` (or `mlflow-platform local up`), "
            f"or set {', '.join(ENV_PREFIX + f.upper() for f in missing)}"
        )
        raise ConfigError(
            "client config", [f"{f}: not set by any argument, variable or profile" for f in missing] + [hint]
        )
    return ResolvedClientConfig(ClientConfig.parse(merged, source="resolved client config"), sources)
