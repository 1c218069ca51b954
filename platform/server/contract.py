"""The contract between whoever starts the tracking server and the server itself, defined once.

Three parties meet here: the ECS task definition (`mlflow_platform.infra.tracking_server`, with the
secrets that `infra.server_credentials` and `infra.metadata_store` store), the local platform
(`mlflow_platform.local.platform`), and the entrypoint (`settings` and `entrypoint` in this package).
The toolkit reads the admin secret with `AdminSecret` too. Each party imports the names, payload models
and bounds below, so a rename or a tightened bound cannot leave them disagreeing.

This module imports only pydantic: it is safe for the toolkit, the Pulumi program and the image alike.
Variables marked *secret* reach the container only as ECS `secrets` (Secrets Manager references), never
as plain `environment`; the local platform reads the same secrets from its emulated Secrets Manager.
"""

from __future__ import annotations

import json
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

__all__ = [
    "ADMIN_SECRET",
    "ADMIN_USERNAME",
    "ALLOWED_HOSTS",
    "ARTIFACTS_DESTINATION",
    "AUTH_CACHE_SECONDS",
    "AUTH_CONFIG_DIR",
    "DATABASE_SECRET",
    "DATABASE_URI",
    "DEFAULT_AUTH_CACHE_SECONDS",
    "DEFAULT_WORKERS",
    "FLASK_SECRET_KEY",
    "FLASK_SECRET_KEY_MIN_LENGTH",
    "HOST",
    "LISTEN_HOST",
    "LISTEN_PORT",
    "MAX_WORKERS",
    "MIN_ADMIN_PASSWORD_LENGTH",
    "PORT",
    "POSTGRES_DRIVER",
    "SECRET_VARIABLES",
    "WORKERS",
    "AdminSecret",
    "AuthCacheSeconds",
    "DatabaseSecret",
    "Port",
    "Workers",
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
    # libpq's sslmode; the stack stores `require` so a changed parameter group can never mean plain text.
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
