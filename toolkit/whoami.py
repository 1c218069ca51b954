"""`whoami`: which AWS principal you are, and which MLflow user a stack's server makes of it.

The principal comes from STS (the stack's regional endpoint, or the local platform's emulator) with the
same credentials that sign your identity tokens; the MLflow user from the server itself
(`/api/2.0/mlflow/users/current`), so what it prints is what the server decided, including why it
refused. `MLFLOW_TRACKING_USERNAME`/`PASSWORD` in the environment win here as everywhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from toolkit.aws import AwsAccessError, explain_aws_error
from toolkit.client_config import ClientConfig
from toolkit.credentials import PASSWORD_ENV, USERNAME_ENV

__all__ = ["CURRENT_USER_PATH", "Identity", "whoami"]

CURRENT_USER_PATH = "/api/2.0/mlflow/users/current"


@dataclass(frozen=True)
class Identity:
    tracking_uri: str
    # How this client signs in: "AWS identity" or "env MLFLOW_TRACKING_USERNAME/PASSWORD".
    signed_in_with: str
    # The caller's ARN as STS says (None when signing in with a password).
    principal: str | None
    # The MLflow user the server made of it, and whether it is an admin; None when refused.
    mlflow_user: str | None
    admin: bool
    # The server's reason when it refused (HTTP status and its one line).
    refused: str | None = None


def caller_arn(config: ClientConfig) -> str:
    """Who the credentials that sign for `config`'s server are, according to its STS."""
    import boto3

    from toolkit.aws_auth import signing_credentials, target_for

    target = target_for(config)
    key = signing_credentials(target)
    session = boto3.session.Session(
        aws_access_key_id=key.access_key, aws_secret_access_key=key.secret_key, aws_session_token=key.token
    )
    sts = session.client("sts", region_name=target.region, endpoint_url=target.sts_endpoint)
    try:
        return str(sts.get_caller_identity()["Arn"])
    except Exception as exc:
        raise explain_aws_error(exc, doing=f"asking STS at {target.sts_endpoint} who you are") from exc


def whoami(config: ClientConfig) -> Identity:
    """Ask STS and the tracking server; raises `AwsAccessError` when AWS cannot be asked."""
    import requests

    from toolkit.aws_auth import AwsIamAuth, register

    url = config.tracking_uri + CURRENT_USER_PATH
    basic = os.environ.get(USERNAME_ENV), os.environ.get(PASSWORD_ENV)
    try:
        if basic[0] and basic[1]:
            signed_in_with, principal = f"env {USERNAME_ENV}/{PASSWORD_ENV}", None
            response = requests.get(url, auth=(basic[0], basic[1]), timeout=30)
        elif config.auth == "aws-iam":
            signed_in_with, principal = "AWS identity", caller_arn(config)
            register(config)
            response = requests.get(url, auth=AwsIamAuth(), timeout=30)
        else:
            raise AwsAccessError(
                f"stack {config.stack} signs in with a password (auth: basic); set {USERNAME_ENV} and {PASSWORD_ENV}"
            )
    except requests.RequestException as exc:
        raise AwsAccessError(f"cannot reach the tracking server at {config.tracking_uri}: {exc}") from None
    if response.status_code != 200:
        reason = (response.text.strip().splitlines() or [""])[0][:300]
        return Identity(
            config.tracking_uri, signed_in_with, principal, None, False, f"HTTP {response.status_code}: {reason}"
        )
    user = response.json()["user"]
    return Identity(config.tracking_uri, signed_in_with, principal, str(user["username"]), bool(user["is_admin"]))
