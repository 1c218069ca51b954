"""`mlflow_init`: point this process's MLflow at a platform stack, signed in, with one experiment chosen.

Everything the caller does not pass comes from the resolved `ClientConfig` (argument > env > profile >
SSM, see `toolkit.resolve`). Credentials are handed to MLflow through its own variables
`MLFLOW_TRACKING_USERNAME`/`MLFLOW_TRACKING_PASSWORD` in this process's environment, which is the only
way MLflow's REST client takes them; they are never printed or logged.
"""

from __future__ import annotations

import logging
import os
from typing import Any
from urllib.parse import urlsplit

from toolkit.client_config import ClientConfig
from toolkit.credentials import PASSWORD_ENV, USERNAME_ENV, resolve_credentials
from toolkit.errors import ConfigError, ToolkitError
from toolkit.resolve import resolve_client_config
from toolkit.session import TrackingSession, set_current_session

_logger = logging.getLogger(__name__)

S3_ENDPOINT_ENV = "MLFLOW_S3_ENDPOINT_URL"
EXPERIMENT_NAME_ENV = "MLFLOW_EXPERIMENT_NAME"
DEFAULT_EXPERIMENT = "Default"


# The pair a previous `mlflow_init` put into the environment from a secret: a later call for another
# stack must read that stack's secret, not mistake our own earlier value for the user's choice.
_credentials_we_set: tuple[str, str] | None = None
# Whether a previous `mlflow_init` set `MLFLOW_TRACKING_AUTH=aws-iam` (a later call may unset it).
_auth_we_set = False


def _environ_without_our_credentials() -> dict[str, str]:
    environ = dict(os.environ)
    if _credentials_we_set == (environ.get(USERNAME_ENV), environ.get(PASSWORD_ENV)):
        environ.pop(USERNAME_ENV, None)
        environ.pop(PASSWORD_ENV, None)
    return environ


class TrackingServerError(ToolkitError, RuntimeError):
    """The tracking server could not be reached, or refused the credentials; the message says which."""


def normalize_tracking_uri(host: str) -> str:
    """`mlflow.example.org` (optionally with a port or path) means `https://mlflow.example.org`.

    Only http(s) is accepted: the platform's server is always reached over HTTP, and a typo such as
    `htps://...` should fail here rather than as a file store MLflow would silently create.
    """
    value = host.strip().rstrip("/")
    if not value:
        raise ValueError("tracking_server_host is empty")
    if "://" not in value:
        value = "https://" + value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"tracking_server_host {host!r}: expected a host name or an http(s) URL")
    if parts.username or parts.password:
        raise ValueError("tracking_server_host must not contain user:password; credentials come from the stack")
    return value


def big_schema_autolog_settings(big_schema: bool) -> dict[str, Any]:
    """Keyword arguments for `mlflow.sklearn.autolog`.

    With `big_schema` nothing that grows with the number of columns: signature inference, input examples
    and dataset records (which carry a per-column schema) are off.
    """
    return {
        "log_input_examples": False,
        "log_model_signatures": not big_schema,
        "log_datasets": not big_schema,
        "log_models": True,
        "silent": True,
    }


def mlflow_init(
    tracking_server_host: str | None = None,
    experiment_name: str | None = None,
    autolog: bool = True,
    big_schema: bool = False,
    *,
    stack: str | None = None,
    config: ClientConfig | None = None,
) -> TrackingSession:
    """Set MLflow's tracking URI, credentials, experiment (created if missing) and autologging.

    `tracking_server_host`: a bare host means https; default: the resolved config's `tracking_uri`.
    `stack`: which stack's profile/SSM parameter to use (default: the active profile).
    `config`: a ready `ClientConfig` (skips resolution; the local platform's fixtures use it).
    `big_schema`: for very wide data; see `big_schema_autolog_settings`. The tracking decorators inherit it.
    Fits outside the decorators are still autologged by MLflow itself, which on wide data stays slow
    whatever the settings (its training-metrics dataset digest hashes every column, and it infers pip
    requirements); the decorators avoid both (README, Performance).
    Returns the session (no secrets in it); the decorators and `get_model_s3_path` read it.
    """
    import mlflow

    tracking_uri = normalize_tracking_uri(tracking_server_host) if tracking_server_host else None
    if config is None:
        try:
            config = resolve_client_config({"tracking_uri": tracking_uri}, stack=stack).config
        except ConfigError:
            # A host and MLflow's own credential variables are enough to track; only the stack-specific
            # features (S3 paths of models) then need more, and say so when used.
            if not (tracking_uri and os.environ.get(USERNAME_ENV) and os.environ.get(PASSWORD_ENV)):
                raise
            config = None
    elif tracking_uri is None:
        tracking_uri = config.tracking_uri
    if tracking_uri is None:
        assert config is not None
        tracking_uri = config.tracking_uri
    elif config is not None and tracking_uri != config.tracking_uri:
        config = config.model_copy(update={"tracking_uri": tracking_uri})

    if config is not None:
        credentials_source = _sign_in(config)
        if config.aws_endpoint_url:
            _point_mlflow_s3_at_emulator(config)
    else:
        credentials_source = f"env {USERNAME_ENV}/{PASSWORD_ENV}"

    name = experiment_name or os.environ.get(EXPERIMENT_NAME_ENV) or DEFAULT_EXPERIMENT
    mlflow.set_tracking_uri(tracking_uri)
    experiment = _set_experiment(mlflow, name, tracking_uri, credentials_source)

    settings = big_schema_autolog_settings(big_schema)
    if autolog:
        mlflow.sklearn.autolog(**settings)
    else:
        mlflow.sklearn.autolog(disable=True)
    session = TrackingSession(
        tracking_uri=tracking_uri,
        experiment_id=experiment.experiment_id,
        experiment_name=name,
        config=config,
        credentials_source=credentials_source,
        big_schema=big_schema,
        autolog=autolog,
        autolog_settings=settings if autolog else {},
    )
    set_current_session(session)
    _logger.info("MLflow tracking %s, experiment %r, credentials from %s", tracking_uri, name, credentials_source)
    return session


def _sign_in(config: ClientConfig) -> str:
    """Make MLflow sign in as the stack says; returns where the identity or credentials come from.

    `MLFLOW_TRACKING_USERNAME`/`PASSWORD` set by the caller always win (break-glass, service accounts).
    Otherwise a stack with `auth: aws-iam` signs each request with the caller's AWS identity through
    MLflow's request auth provider `aws-iam` (`MLFLOW_TRACKING_AUTH`), and no secret is read; a stack
    with `auth: basic` has its credentials secret read with the caller's AWS identity.
    """
    from toolkit.aws_auth import AUTH_ENV, AUTH_NAME, register

    global _credentials_we_set, _auth_we_set
    environ = _environ_without_our_credentials()
    if _credentials_we_set is not None:
        # Ours, from an earlier call: this call decides afresh.
        os.environ.pop(USERNAME_ENV, None)
        os.environ.pop(PASSWORD_ENV, None)
        _credentials_we_set = None
    if _auth_we_set and os.environ.get(AUTH_ENV) == AUTH_NAME:
        os.environ.pop(AUTH_ENV, None)
    _auth_we_set = False
    if config.auth == AUTH_NAME and not (environ.get(USERNAME_ENV) and environ.get(PASSWORD_ENV)):
        target = register(config)
        os.environ[AUTH_ENV] = AUTH_NAME
        _auth_we_set = True
        return f"AWS identity ({_identity_source(target.emulated, config)})"
    credentials = resolve_credentials(config, environ)
    os.environ[USERNAME_ENV] = credentials.username
    os.environ[PASSWORD_ENV] = credentials.password
    _credentials_we_set = (
        None if credentials.source.startswith("env ") else (credentials.username, credentials.password)
    )
    return credentials.source


def _identity_source(emulated: bool, config: ClientConfig) -> str:
    """Where the signing AWS credentials come from, in words (never the key itself)."""
    if os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"):
        return "env AWS_ACCESS_KEY_ID"
    if emulated:
        return f"the emulator key of profile {config.stack}"
    if os.environ.get("AWS_PROFILE"):
        return f"AWS_PROFILE {os.environ['AWS_PROFILE']}"
    return "boto3's default credential chain"


def _point_mlflow_s3_at_emulator(config: ClientConfig) -> None:
    """The local platform's S3 is moto on 127.0.0.1. MLflow's S3 artifact repository (direct `s3://`
    reads, e.g. of a path from `get_model_s3_path`) takes its endpoint from `MLFLOW_S3_ENDPOINT_URL` and
    its key from boto3's usual chain; a laptop without any AWS key gets the profile's emulator key (the
    same identity that signs in to the server), else the emulator's dummy key, while a key the caller
    already has is left alone (moto accepts any)."""
    import boto3

    from toolkit.aws import LOCAL_EMULATOR_KEY

    if not os.environ.get(S3_ENDPOINT_ENV) and config.aws_endpoint_url:
        os.environ[S3_ENDPOINT_ENV] = config.aws_endpoint_url
    if boto3.session.Session().get_credentials() is None:
        if config.emulator_access_key_id and config.emulator_secret_access_key:
            os.environ["AWS_ACCESS_KEY_ID"] = config.emulator_access_key_id
            os.environ["AWS_SECRET_ACCESS_KEY"] = config.emulator_secret_access_key.get_secret_value()
        else:
            os.environ["AWS_ACCESS_KEY_ID"] = LOCAL_EMULATOR_KEY
            os.environ["AWS_SECRET_ACCESS_KEY"] = LOCAL_EMULATOR_KEY


def _set_experiment(mlflow: Any, name: str, tracking_uri: str, credentials_source: str) -> Any:
    """`mlflow.set_experiment` with the two failures people hit mapped onto what to check."""
    from mlflow.exceptions import MlflowException
    from requests.exceptions import ConnectionError as RequestsConnectionError

    try:
        return mlflow.set_experiment(name)
    except MlflowException as exc:
        message = str(exc)
        if "401" in message or "Unauthorized" in message or "UNAUTHENTICATED" in message:
            hint = (
                "`mlflow-platform whoami` shows who you are to it and why it refuses"
                if credentials_source.startswith("AWS identity")
                else "check the user and password there"
            )
            raise TrackingServerError(
                f"{tracking_uri} refused the credentials from {credentials_source} (HTTP 401); {hint}"
            ) from None
        if "403" in message or "PERMISSION_DENIED" in message:
            raise TrackingServerError(
                f"{tracking_uri}: the user from {credentials_source} may not use or create experiment {name!r}"
            ) from exc
        if "Max retries exceeded" in message or "Connection refused" in message:
            raise TrackingServerError(f"cannot reach the tracking server at {tracking_uri}: {exc}") from exc
        raise
    except RequestsConnectionError as exc:
        raise TrackingServerError(f"cannot reach the tracking server at {tracking_uri}: {exc}") from exc
