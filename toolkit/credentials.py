"""The MLflow user a client signs in as: MLflow's own variables if set, else the stack's secret.

The values are handed to MLflow in-process and never printed, logged or written to a profile.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import ValidationError

from mlflow_platform.server.contract import AdminSecret
from toolkit.aws import client_for, explain_aws_error
from toolkit.client_config import ClientConfig
from toolkit.errors import ConfigError

USERNAME_ENV = "MLFLOW_TRACKING_USERNAME"
PASSWORD_ENV = "MLFLOW_TRACKING_PASSWORD"  # noqa: S105 - the name of a variable, not a password


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)
    source: str


def resolve_credentials(config: ClientConfig, environ: Mapping[str, str] | None = None) -> Credentials:
    environ = os.environ if environ is None else environ
    if environ.get(USERNAME_ENV) and environ.get(PASSWORD_ENV):
        return Credentials(environ[USERNAME_ENV], environ[PASSWORD_ENV], source=f"env {USERNAME_ENV}/{PASSWORD_ENV}")
    return read_credentials_secret(config)


def read_credentials_secret(config: ClientConfig) -> Credentials:
    """Read the stack's credentials secret (the server's `AdminSecret` payload) from Secrets Manager."""
    secret_id = config.credentials_secret_id
    if secret_id is None:
        raise ConfigError(
            f"client config of stack {config.stack}",
            [f"credentials_secret_id: not set; the stack signs in with auth: {config.auth}, not a password"],
        )
    try:
        response = client_for("secretsmanager", config).get_secret_value(SecretId=secret_id)
    except Exception as exc:
        raise explain_aws_error(exc, doing=f"reading the MLflow credentials secret {secret_id}") from exc
    try:
        admin = AdminSecret.model_validate_json(response["SecretString"])
    except ValidationError as exc:
        # Keys and rules only, never pydantic's own text: it could quote part of the secret.
        problems = [
            f"SecretString.{'.'.join(map(str, error['loc']))}: "
            + ("missing" if error["type"] == "missing" else str(error["msg"]).removeprefix("Value error, "))
            if error["loc"]
            else 'SecretString: expected JSON {"username": ..., "password": ...}'
            for error in exc.errors(include_url=False, include_input=False)
        ]
        raise ConfigError(f"secret {secret_id}", problems) from None
    return Credentials(admin.username, admin.password.get_secret_value(), source=f"Secrets Manager {secret_id}")
