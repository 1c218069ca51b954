"""Where the toolkit's defaults come from, field by field, first match wins:

explicit argument > environment (`MLFLOW_PLATFORM_<FIELD>`, MLflow's `MLFLOW_TRACKING_URI`) >
profile file (the stack's, or the active one) > the SSM parameter the stack published.

A profile and the SSM parameter each describe one stack: every field but the tracking URI (artifact
store, region, secret id, AWS endpoint, ...) belongs to that stack's server. So they supply those
fields only when their tracking URI is the one in use; a tracking URI from an argument or the
environment that names another server takes nothing from them, and whatever is then missing fails
with the command or variable that provides it. (Otherwise a notebook tracking to one stack would get
another stack's bucket from the active profile, and `get_model_s3_path` a path in the wrong bucket.)
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from mlflow_platform.server.contract import audience_of
from toolkit.aws import aws_client, explain_aws_error
from toolkit.client_config import ClientConfig, ssm_parameter_name
from toolkit.errors import ConfigError
from toolkit.profiles import active_profile_name, load_profile, profile_exists

ENV_PREFIX = "MLFLOW_PLATFORM_"
# MLflow's own variables, consulted after ours for the same field.
MLFLOW_ENV_ALIASES = {"tracking_uri": "MLFLOW_TRACKING_URI"}
FIELDS = tuple(ClientConfig.model_fields)
# What a profile or the SSM parameter describes about its stack's server: every field but the URI.
STACK_BOUND_FIELDS = tuple(field for field in FIELDS if field != "tracking_uri")


def same_server(first: str, second: str) -> bool:
    """Whether two tracking URIs name one server: same origin (scheme, host, port) and path."""
    try:
        origins = audience_of(first), audience_of(second)
    except ValueError:
        return first.rstrip("/") == second.rstrip("/")
    paths = (urlsplit(first).path.rstrip("/"), urlsplit(second).path.rstrip("/"))
    return origins[0] == origins[1] and paths[0] == paths[1]


@dataclass(frozen=True)
class ResolvedClientConfig:
    """The config and, per field, where its value came from (for `config show` and error messages)."""

    config: ClientConfig
    sources: dict[str, str]
    # Profiles or SSM parameters left out because they describe another server than the one in use.
    skipped: tuple[str, ...] = ()


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
    A profile or SSM parameter whose tracking URI is not the one in use supplies nothing (module
    docstring); the `ConfigError` for what is then missing names the profile and the URI in use.
    """
    environ = os.environ if environ is None else environ
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    skipped: list[str] = []

    def take(layer: Mapping[str, Any], source: str) -> None:
        for field, value in layer.items():
            if value is not None and field not in merged:
                merged[field], sources[field] = value, source

    def take_stack_document(document: ClientConfig, source: str) -> None:
        """A profile or SSM parameter: all of it, or nothing when it is another server's."""
        in_use = merged.get("tracking_uri")
        if in_use is not None and not same_server(str(in_use), document.tracking_uri):
            skipped.append(f"{source} (tracking URI {document.tracking_uri})")
            return
        take(document.model_dump(), source)

    take({k: v for k, v in (explicit or {}).items()}, "argument")
    for field, (value, source) in env_layer(environ).items():
        take({field: value}, source)
    wanted_stack = stack or environ.get(ENV_PREFIX + "STACK")
    profile = wanted_stack if wanted_stack and profile_exists(wanted_stack) else None
    if wanted_stack is None:
        profile = active_profile_name()
    if profile:
        take_stack_document(load_profile(profile), f"profile {profile}")

    missing = [f for f in FIELDS if f not in merged and ClientConfig.model_fields[f].is_required()]
    if missing and wanted_stack:
        published = read_ssm_client_config(
            wanted_stack, region=merged.get("region"), endpoint_url=merged.get("aws_endpoint_url")
        )
        take_stack_document(published, f"SSM {ssm_parameter_name(wanted_stack)}")
        missing = [f for f in FIELDS if f not in merged and ClientConfig.model_fields[f].is_required()]
    if missing:
        raise ConfigError("client config", _missing_problems(missing, merged, sources, skipped))
    config = ClientConfig.parse(merged, source="resolved client config")
    return ResolvedClientConfig(config, sources, tuple(skipped))


def _missing_problems(
    missing: list[str], merged: Mapping[str, Any], sources: Mapping[str, str], skipped: list[str]
) -> list[str]:
    """One line per missing field, and one saying what provides them."""
    variables = ", ".join(ENV_PREFIX + f.upper() for f in missing)
    if not skipped:
        return [f"{f}: not set by any argument, variable or profile" for f in missing] + [
            f"run `mlflow-platform config pull --stack NAME` (or `mlflow-platform local up`), or set {variables}"
        ]
    uri, uri_source = merged["tracking_uri"], sources["tracking_uri"]
    return [
        f"{f}: not set by any argument or variable, and not taken from {' or '.join(skipped)}: "
        f"that is another server than the tracking URI in use, {uri} ({uri_source})"
        for f in missing
    ] + [
        f"for {uri}: run `mlflow-platform config pull --stack NAME` with the stack of that server and pass "
        f"stack=NAME (or set MLFLOW_PLATFORM_STACK), or set {variables}; or leave out the tracking URI "
        f"({uri_source}) to use the profile's own server"
    ]
