"""The contract between whoever starts the tracking server and the server itself, defined once.

Three parties meet here: the ECS task definition (`mlflow_platform.infra.tracking_server`, with the
secrets that `infra.server_credentials` and `infra.metadata_store` store), the local platform
(`mlflow_platform.local.platform`), and the entrypoint (`settings` and `entrypoint` in this package).
The toolkit reads the admin secret with `AdminSecret` too, and writes the identity token whose shape
is defined here (the section on signing in with an AWS identity). Each party imports the names, payload models
and bounds below, so a rename or a tightened bound cannot leave them disagreeing.

This module imports only pydantic: it is safe for the toolkit, the Pulumi program and the image alike.
Variables marked *secret* reach the container only as ECS `secrets` (Secrets Manager references), never
as plain `environment`; the local platform reads the same secrets from its emulated Secrets Manager.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Final, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

__all__ = [
    "ADMIN_SECRET",
    "ADMIN_USERNAME",
    "ALLOWED_HOSTS",
    "ARTIFACTS_DESTINATION",
    "AUDIENCE_HEADER",
    "AUTH_CACHE_SECONDS",
    "AUTH_CONFIG_DIR",
    "DATABASE_SECRET",
    "DATABASE_URI",
    "DEFAULT_AUTH_CACHE_SECONDS",
    "DEFAULT_WORKERS",
    "FLASK_SECRET_KEY",
    "FLASK_SECRET_KEY_MIN_LENGTH",
    "GET_CALLER_IDENTITY_BODY",
    "GET_CALLER_IDENTITY_CONTENT_TYPE",
    "GRACEFUL_SHUTDOWN_SECONDS",
    "HOST",
    "IDENTITY",
    "IDENTITY_TOKEN_LIFETIME_SECONDS",
    "IDENTITY_TOKEN_MAX_BYTES",
    "IDENTITY_TOKEN_PREFIX",
    "IDENTITY_TOKEN_RENEW_SECONDS",
    "LISTEN_HOST",
    "LISTEN_PORT",
    "MAX_WORKERS",
    "MIN_ADMIN_PASSWORD_LENGTH",
    "MLFLOW_USERNAME_PATTERN",
    "PORT",
    "POSTGRES_DRIVER",
    "PUBLIC_SCHEME",
    "RDS_CA_BUNDLE",
    "SECRET_VARIABLES",
    "STOP_TIMEOUT_SECONDS",
    "STS_ENDPOINT",
    "USERNAME_FROM_NAME",
    "USERNAME_FROM_SESSION",
    "WORKERS",
    "AdminSecret",
    "AuthCacheSeconds",
    "DatabaseSecret",
    "DefaultPermission",
    "IdentityMapping",
    "Port",
    "Principal",
    "ServerIdentity",
    "Workers",
    "audience_of",
    "sts_regional_endpoint",
]

# --- environment variable names ---------------------------------------------------------------------

# JSON of `DatabaseSecret`. *secret*
DATABASE_SECRET: Final = "MLFLOW_PLATFORM_DATABASE"
# Alternative to DATABASE_SECRET for a password-less URI (the local platform's SQLite file).
DATABASE_URI: Final = "MLFLOW_PLATFORM_DATABASE_URI"
# JSON of `AdminSecret`; the toolkit reads the same secret. *secret*
ADMIN_SECRET: Final = "MLFLOW_PLATFORM_ADMIN"
# The Flask secret key, a plain string identical on every task and worker (MLflow's own variable). *secret*
FLASK_SECRET_KEY: Final = "MLFLOW_FLASK_SERVER_SECRET_KEY"
# s3://bucket[/prefix] that the server proxies artifacts to.
ARTIFACTS_DESTINATION: Final = "MLFLOW_PLATFORM_ARTIFACTS_DESTINATION"
# Comma-separated Host header values the server accepts besides its own address (load balancer, domain).
ALLOWED_HOSTS: Final = "MLFLOW_PLATFORM_ALLOWED_HOSTS"
# Uvicorn worker processes per server (task).
WORKERS: Final = "MLFLOW_PLATFORM_WORKERS"
# Seconds a verified password stays cached per server process (MLflow's `auth_cache_ttl_seconds`); 0 = off.
AUTH_CACHE_SECONDS: Final = "MLFLOW_PLATFORM_AUTH_CACHE_SECONDS"
HOST: Final = "MLFLOW_PLATFORM_HOST"
PORT: Final = "MLFLOW_PLATFORM_PORT"
# `https` or `http`: the scheme clients reach the server with (the load balancer's listener). The UI's
# CORS origins use only this scheme; unset means https.
PUBLIC_SCHEME: Final = "MLFLOW_PLATFORM_PUBLIC_SCHEME"
# Optional: the directory where the entrypoint writes MLflow's basic-auth ini (it holds the database
# URI, password included; mode 0600). Default: a new private temporary directory. The local platform
# points it into its data directory so restarts reuse one file instead of leaving copies in /tmp.
AUTH_CONFIG_DIR: Final = "MLFLOW_PLATFORM_AUTH_CONFIG_DIR"

SECRET_VARIABLES: Final = (DATABASE_SECRET, ADMIN_SECRET, FLASK_SECRET_KEY)

# --- values both sides must agree on ----------------------------------------------------------------

# The MLflow admin user: break-glass access, created and kept in sync by the entrypoint.
ADMIN_USERNAME: Final = "admin"
# Where the server listens in its container: every interface of the task's private address, which only
# the load balancer's security group may reach. The local platform overrides HOST with 127.0.0.1.
LISTEN_HOST: Final = "0.0.0.0"  # noqa: S104 - inside the task's private subnet, behind the load balancer
LISTEN_PORT: Final = 5000
# MLflow refuses admin passwords shorter than this (mlflow.utils.validation._validate_password).
MIN_ADMIN_PASSWORD_LENGTH: Final = 12
# Flask signs sessions and CSRF tokens with the key; a short one is guessable.
FLASK_SECRET_KEY_MIN_LENGTH: Final = 16
DEFAULT_WORKERS: Final = 2
# Each worker holds its own MLflow app and database pool; beyond this a task should scale out instead.
MAX_WORKERS: Final = 32
DEFAULT_AUTH_CACHE_SECONDS: Final = 30
# Where the image holds the RDS certificate authorities; its `PGSSLROOTCERT` points libpq here.
RDS_CA_BUNDLE: Final = "/etc/ssl/certs/rds-global-bundle.pem"
# Seconds between ECS's SIGTERM and its SIGKILL (the container's `stopTimeout`): Fargate's maximum.
STOP_TIMEOUT_SECONDS: Final = 120
# Seconds the server keeps finishing in-flight requests after SIGTERM before it closes them (uvicorn's
# `--timeout-graceful-shutdown`): short of the stop timeout, so the server exits by itself, never killed.
GRACEFUL_SHUTDOWN_SECONDS: Final = 110
# The image installs psycopg2 (the `server` extra); SQLAlchemy 2.1's default PostgreSQL driver is psycopg 3.
POSTGRES_DRIVER: Final = "postgresql+psycopg2"

Workers = Annotated[int, Field(ge=1, le=MAX_WORKERS)]
AuthCacheSeconds = Annotated[int, Field(ge=0, le=3600)]
Port = Annotated[int, Field(ge=1, le=65535)]


# --- secret payloads --------------------------------------------------------------------------------


class _Payload(BaseModel):
    """A secret's JSON object. Unknown keys are ignored: Secrets Manager's RDS templates add their own."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    def secret_string(self) -> str:
        """The JSON stored in Secrets Manager, secret values revealed (for the writers of the secret)."""
        payload = {
            name: value.get_secret_value() if isinstance(value, SecretStr) else value
            for name, value in self
            if value is not None
        }
        return json.dumps(payload, separators=(",", ":"))


class DatabaseSecret(_Payload):
    """The database connection, in the shape Secrets Manager's RDS templates use."""

    engine: Literal["postgres", "postgresql"] = "postgres"
    host: Annotated[str, Field(min_length=1)]
    port: Port = 5432
    dbname: Annotated[str, Field(min_length=1)]
    username: Annotated[str, Field(min_length=1)]
    password: SecretStr
    # libpq's sslmode. The stack stores `verify-full`: TLS whatever the parameter group says, and the
    # server's certificate checked against the RDS CA bundle the image holds (`RDS_CA_BUNDLE`) for the
    # host name in `host`.
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None = None

    def sqlalchemy_uri(self) -> str:
        """The URI `mlflow server` and the auth store connect with (psycopg2, password URL-encoded)."""
        from sqlalchemy.engine import URL

        url = URL.create(
            POSTGRES_DRIVER,
            username=self.username,
            password=self.password.get_secret_value(),
            host=self.host,
            port=self.port,
            database=self.dbname,
            query={"sslmode": self.sslmode} if self.sslmode else {},
        )
        return url.render_as_string(hide_password=False)


class AdminSecret(_Payload):
    """The MLflow admin user; the entrypoint keeps MLflow's user in sync with it."""

    username: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._@+-]+$")]
    password: SecretStr

    @field_validator("password")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < MIN_ADMIN_PASSWORD_LENGTH:
            raise ValueError(f"must be at least {MIN_ADMIN_PASSWORD_LENGTH} characters (MLflow's rule)")
        return value


# --- sign-in with an AWS identity -------------------------------------------------------------------
#
# A client signs an `sts:GetCallerIdentity` request with its own AWS credentials, the audience header
# (naming this server) among the signed headers, and sends the signed headers as a bearer token; the
# server replays them to STS and learns who signed. `toolkit.aws_auth` writes the token and
# `mlflow_platform.server.identity_token` reads it; both take the shape from here.

# JSON of `ServerIdentity`: the audiences this server answers to and which AWS principals are which
# MLflow users. Unset: MLflow's Basic auth only.
IDENTITY: Final = "MLFLOW_PLATFORM_IDENTITY"
# Optional: where the server replays a credential. Default: STS's regional endpoint in the region of
# `ServerIdentity` (in AWS reached through the VPC's interface endpoint). The local platform: its moto.
STS_ENDPOINT: Final = "MLFLOW_PLATFORM_STS_ENDPOINT"

# The `Authorization: Bearer <token>` value starts with this; the rest is base64url of a JSON object
# holding the signed request's headers (the method, URL and body are fixed, so they are not sent).
IDENTITY_TOKEN_PREFIX: Final = "mlflow-aws-v1."
# The header naming the server a token is meant for (its origin, `audience_of(tracking URI)`).
AUDIENCE_HEADER: Final = "X-MLflow-Platform-Audience"
# The only request a token may carry, and its content type.
GET_CALLER_IDENTITY_BODY: Final = "Action=GetCallerIdentity&Version=2011-06-15"
GET_CALLER_IDENTITY_CONTENT_TYPE: Final = "application/x-www-form-urlencoded; charset=utf-8"
# A token larger than this is refused unread (a session token is at most a few KiB).
IDENTITY_TOKEN_MAX_BYTES: Final = 8192
# STS accepts a signature for 15 minutes after its X-Amz-Date; so does the server.
IDENTITY_TOKEN_LIFETIME_SECONDS: Final = 900
# Clients sign a new token once theirs is this old, well before the server would refuse it.
IDENTITY_TOKEN_RENEW_SECONDS: Final = 300
# A principal's `username` is a fixed MLflow user name, or one of these words: the role session name
# (an SSO user's e-mail, a pipeline's session) or the IAM user or role name.
USERNAME_FROM_SESSION: Final = "session"
USERNAME_FROM_NAME: Final = "name"
# MLflow's permission names a stack may choose as the default for resources a user was not granted.
DefaultPermission = Literal["READ", "USE", "EDIT", "MANAGE", "NO_PERMISSIONS"]

# arn:<partition>:<iam|sts>::<account>:<resource>; `*` anywhere matches any characters (as in IAM).
_PRINCIPAL_PATTERN = r"^arn:(\*|aws[a-z-]*):(\*|iam|sts)::(\*|\d{12}):[A-Za-z0-9+=,.@_/:*-]+$"
# What the platform lets a fixed MLflow user name contain (the admin secret's rule).
MLFLOW_USERNAME_PATTERN: Final = r"^[A-Za-z0-9._@+-]{1,100}$"


def sts_regional_endpoint(region: str) -> str:
    """STS's regional endpoint, the one the server replays to (never the global endpoint)."""
    return f"https://sts.{region}.amazonaws.com"


def audience_of(url: str) -> str:
    """The audience of a server: the origin of its URL, lower-case, without a default port or path.

    Client and server both compute it, the client from the URL it sends a request to, the server from
    the URLs it is configured with, so the two agree without further configuration.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in ("http", "https") or not host:
        raise ValueError(f"expected an http(s) URL, got {url!r}")
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port is None or (scheme, port) in (("http", 80), ("https", 443)):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


class Principal(BaseModel):
    """AWS principals (an ARN pattern) and the MLflow user they sign in as."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # An IAM or STS ARN; `*` matches any characters, e.g.
    # arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_DataScientist_*/*
    arn: Annotated[str, Field(min_length=1, max_length=2048)]
    # A fixed MLflow user name, "session" or "name" (see USERNAME_FROM_SESSION, USERNAME_FROM_NAME).
    username: Annotated[str, Field(min_length=1, max_length=100)]
    admin: bool = False

    @field_validator("arn")
    @classmethod
    def _iam_or_sts_arn(cls, value: str) -> str:
        if re.match(_PRINCIPAL_PATTERN, value) is None:
            raise ValueError(
                "expected an IAM or STS ARN, `*` for any characters, such as "
                "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_DataScientist_*/*"
            )
        return value

    @field_validator("username")
    @classmethod
    def _fixed_name_or_keyword(cls, value: str) -> str:
        if value in (USERNAME_FROM_SESSION, USERNAME_FROM_NAME):
            return value
        if re.match(MLFLOW_USERNAME_PATTERN, value) is None:
            raise ValueError(
                f'expected "{USERNAME_FROM_SESSION}", "{USERNAME_FROM_NAME}" or a fixed MLflow user name '
                "(letters, digits, '.', '_', '@', '+', '-')"
            )
        if value == ADMIN_USERNAME:
            raise ValueError(
                f"{ADMIN_USERNAME!r} is the break-glass admin, which signs in only with its password; "
                "map principals to their own names and set admin: true"
            )
        return value


class IdentityMapping(BaseModel):
    """Who may sign in with an AWS identity: the stack config's `identity` section.

    An ARN is mapped by the first principal whose pattern matches it; an ARN that matches none is
    refused. `default_permission` is what every user holds on resources nobody granted them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    default_permission: DefaultPermission = "READ"
    principals: list[Principal] = Field(default_factory=list)


class ServerIdentity(IdentityMapping):
    """What the server is given (`IDENTITY`): the mapping, its own audiences and the STS region."""

    # The origins clients reach this server at (`audience_of`); a token naming another is refused.
    audiences: Annotated[list[str], Field(min_length=1)]
    # The region whose STS endpoint verifies credentials; tokens must be signed for it.
    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")]

    @field_validator("audiences")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        return [audience_of(url) for url in value]
