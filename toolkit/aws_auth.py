"""Sign in to a platform's tracking server with your own AWS identity: the `aws-iam` auth.

For each request MLflow sends, `AwsIamAuth` adds `Authorization: Bearer <identity token>`: the headers
of an `sts:GetCallerIdentity` request signed (SigV4, `botocore`) with the caller's AWS credentials,
with the header `contract.AUDIENCE_HEADER` naming the tracking server among the signed ones. The server
replays the request to STS, learns the caller's ARN and maps it to an MLflow user. No password exists
anywhere; a token is good for one server and a few minutes.

Which AWS credentials sign:

- for a stack in AWS, boto3's usual chain: `AWS_PROFILE` (SSO profiles included), the environment's
  keys, the container's task role, the instance's role;
- for the local platform (the config names an emulated `aws_endpoint_url`), the environment's
  `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` when set (any IAM user created in the emulator), else the
  emulator key of the IAM user `mlflow-platform local up` created for you, which the profile carries.
  Real AWS credentials from a profile are never used to sign for the emulator.

Tokens are cached per identity and server, and a new one is signed once the cached one is
`contract.IDENTITY_TOKEN_RENEW_SECONDS` old, well before the server would refuse it; the identity is
looked up again for every request, so switching `AWS_PROFILE` or the keys switches the MLflow user.

Where the STS endpoint and region come from, for a request to a server: what `register` was told
(`mlflow_init` registers the config it resolved), else the active profile if it is that server's, else
the environment (`AWS_REGION`, `AWS_DEFAULT_REGION`) and STS's regional endpoint.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests.auth

from mlflow_platform.server import contract
from toolkit.aws import AwsAccessError
from toolkit.client_config import ClientConfig

__all__ = [
    "AUTH_NAME",
    "AwsIamAuth",
    "AwsKey",
    "SigningTarget",
    "identity_token",
    "register",
    "signing_credentials",
    "signing_target",
    "target_for",
]

# The name MLflow knows the provider by: `MLFLOW_TRACKING_AUTH=aws-iam`.
AUTH_NAME = "aws-iam"
AUTH_ENV = "MLFLOW_TRACKING_AUTH"
_REGION_VARIABLES = ("MLFLOW_PLATFORM_REGION", "AWS_REGION", "AWS_DEFAULT_REGION")
_SIGNED_HEADERS = ("Authorization", "X-Amz-Date", "X-Amz-Security-Token", "Content-Type", contract.AUDIENCE_HEADER)


@dataclass(frozen=True)
class SigningTarget:
    """What a token for one tracking server is signed for."""

    audience: str
    region: str
    sts_endpoint: str
    # The local profile's emulator key (access key id, secret key); None for a stack in AWS.
    emulator_key: tuple[str, str] | None = None

    @property
    def emulated(self) -> bool:
        return self.sts_endpoint != contract.sts_regional_endpoint(self.region)


@dataclass(frozen=True)
class AwsKey:
    """The credentials one token is signed with."""

    access_key: str
    secret_key: str = field(repr=False)
    token: str | None = field(default=None, repr=False)


def target_for(config: ClientConfig) -> SigningTarget:
    """The signing target of a stack's tracking server (STS in the stack's region, or the emulator)."""
    key = None
    if config.emulator_access_key_id and config.emulator_secret_access_key:
        key = (config.emulator_access_key_id, config.emulator_secret_access_key.get_secret_value())
    return SigningTarget(
        audience=contract.audience_of(config.tracking_uri),
        region=config.region,
        sts_endpoint=config.aws_endpoint_url or contract.sts_regional_endpoint(config.region),
        emulator_key=key,
    )


_lock = threading.Lock()
_targets: dict[str, SigningTarget] = {}
# (audience, region, endpoint, access key id, digest of secret and session token) -> (token, monotonic time)
_tokens: dict[tuple[str, str, str, str, str], tuple[str, float]] = {}
# The boto3 session per identity-selecting environment, so each request costs no new session.
_sessions: dict[tuple[str, ...], Any] = {}


def register(config: ClientConfig) -> SigningTarget:
    """Sign tokens for `config`'s server as that config says (`mlflow_init` calls this)."""
    target = target_for(config)
    with _lock:
        _targets[target.audience] = target
    return target


def signing_target(url: str) -> SigningTarget:
    """The target for a request to `url`: registered, else the active profile's, else the environment's."""
    audience = contract.audience_of(url)
    with _lock:
        known = _targets.get(audience)
    if known is not None:
        return known
    target = _target_from_profile(audience) or _target_from_environment(audience)
    with _lock:
        _targets.setdefault(audience, target)
    return target


def _target_from_profile(audience: str) -> SigningTarget | None:
    from toolkit.errors import ToolkitError
    from toolkit.resolve import resolve_client_config

    try:
        config = resolve_client_config().config
    except ToolkitError:
        return None
    return target_for(config) if contract.audience_of(config.tracking_uri) == audience else None


def _target_from_environment(audience: str) -> SigningTarget:
    region = next((os.environ[name] for name in _REGION_VARIABLES if os.environ.get(name)), None)
    if region is None:
        import boto3

        region = boto3.session.Session().region_name
    if not region:
        raise AwsAccessError(
            f"signing in to {audience} with your AWS identity: no region; set AWS_REGION to the stack's region, "
            "or activate the stack's profile (`mlflow-platform config pull --stack NAME`)"
        )
    return SigningTarget(audience=audience, region=region, sts_endpoint=contract.sts_regional_endpoint(region))


def signing_credentials(target: SigningTarget) -> AwsKey:
    """The AWS credentials that sign for `target` right now (see the module docstring)."""
    key_id, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if target.emulated:
        if key_id and secret:
            return AwsKey(key_id, secret, os.environ.get("AWS_SESSION_TOKEN") or None)
        if target.emulator_key is not None:
            return AwsKey(*target.emulator_key)
        raise AwsAccessError(
            f"signing in to {target.audience}: no emulator key; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "to an IAM user's key in the local emulator, or run `mlflow-platform local up` for your own"
        )
    selector = (
        os.environ.get("AWS_PROFILE", ""),
        key_id or "",
        hashlib.sha256((secret or "").encode()).hexdigest(),
        hashlib.sha256(os.environ.get("AWS_SESSION_TOKEN", "").encode()).hexdigest(),
    )
    with _lock:
        session = _sessions.get(selector)
    if session is None:
        import boto3

        session = boto3.session.Session()
        with _lock:
            _sessions[selector] = session
    found = session.get_credentials()
    if found is None:
        raise AwsAccessError(
            f"signing in to {target.audience}: no AWS credentials found; set AWS_PROFILE (or AWS_ACCESS_KEY_ID "
            "and AWS_SECRET_ACCESS_KEY), or run `aws sso login`"
        )
    frozen = found.get_frozen_credentials()
    if not frozen.access_key or not frozen.secret_key:
        raise AwsAccessError(f"signing in to {target.audience}: the AWS credentials found have no key")
    return AwsKey(frozen.access_key, frozen.secret_key, frozen.token or None)


def sign(credentials: AwsKey, target: SigningTarget) -> str:
    """A new identity token: GetCallerIdentity for `target`, signed now with `credentials`."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(
        method="POST",
        url=target.sts_endpoint.rstrip("/") + "/",
        data=contract.GET_CALLER_IDENTITY_BODY,
        headers={
            "Content-Type": contract.GET_CALLER_IDENTITY_CONTENT_TYPE,
            contract.AUDIENCE_HEADER: target.audience,
        },
    )
    signer_credentials = Credentials(credentials.access_key, credentials.secret_key, credentials.token)
    SigV4Auth(signer_credentials, "sts", target.region).add_auth(request)
    headers = {name: str(request.headers[name]) for name in _SIGNED_HEADERS if name in request.headers}
    encoded = base64.urlsafe_b64encode(json.dumps(headers, separators=(",", ":")).encode()).decode().rstrip("=")
    return contract.IDENTITY_TOKEN_PREFIX + encoded


def identity_token(url: str) -> str:
    """A token for the server at `url`, from the cache while it is fresh, else newly signed."""
    target = signing_target(url)
    credentials = signing_credentials(target)
    digest = hashlib.sha256(f"{credentials.secret_key}\0{credentials.token or ''}".encode()).hexdigest()
    key = (target.audience, target.region, target.sts_endpoint, credentials.access_key, digest)
    now = time.monotonic()
    with _lock:
        cached = _tokens.get(key)
    if cached is not None and now - cached[1] < contract.IDENTITY_TOKEN_RENEW_SECONDS:
        return cached[0]
    token = sign(credentials, target)
    with _lock:
        _tokens[key] = (token, now)
    return token


class AwsIamAuth(requests.auth.AuthBase):
    """A `requests` auth that signs each request in with the caller's AWS identity.

    A request that already carries an `Authorization` header keeps it: MLflow puts Basic credentials
    there when `MLFLOW_TRACKING_USERNAME`/`PASSWORD` are set, and those win (break-glass, service accounts).
    """

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if "Authorization" not in request.headers and request.url:
            request.headers["Authorization"] = f"Bearer {identity_token(request.url)}"
        return request
