"""The MLflow user a client signs in as: MLflow's own variables if set, else the stack's secret.

The values are handed to MLflow in-process and never printed, logged or written to a profile.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

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
    """Read `{"username": ..., "password": ...}` from the stack's Secrets Manager secret."""
    secret_id = config.credentials_secret_id
    try:
        response = client_for("secretsmanager", config).get_secret_value(SecretId=secret_id)
    except Exception as exc:
        raise explain_aws_error(exc, doing=f"reading the MLflow credentials secret {secret_id}") from exc
    try:
        payload = json.loads(response["SecretString"])
        return Credentials(str(payload["username"]), str(payload["password"]), source=f"Secrets Manager {secret_id}")
    except (KeyError, TypeError, ValueError):
        raise ConfigError(
            f"secret {secret_id}", ['SecretString: expected JSON {"username": ..., "password": ...}']
        ) from None
