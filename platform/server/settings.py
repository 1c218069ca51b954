"""The server entrypoint's settings, read from the environment of the ECS task (or the local platform).

Validation happens before MLflow is imported, so a wrong task definition fails in a second with one
line that names the variable. Secret values never appear in an error: for the variables listed in
`server_env.SECRET_VARIABLES` only the key and what was expected are reported, never the input.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from mlflow_platform.server import contract as server_env

# MLflow refuses admin passwords shorter than this (mlflow.utils.validation._validate_password).
MIN_ADMIN_PASSWORD_LENGTH = 12
DEFAULT_WORKERS = 2
# MLflow's basic auth verifies the password (PBKDF2, deliberately slow: ~0.1-0.2 s of CPU here) on every
# request; a tracked fit makes dozens. A verified password is cached, HMAC-keyed, for this long in each
# server process. The price: a password changed or a user deleted through the API on one worker is
# still accepted by the other workers and tasks for up to this long (a restart clears every cache).
DEFAULT_AUTH_CACHE_SECONDS = 30
DEFAULT_HOST = "0.0.0.0"  # noqa: S104 - inside the task's private subnet, behind the load balancer
DEFAULT_PORT = 5000
# The image installs psycopg2 (the `server` extra); SQLAlchemy 2.1's default PostgreSQL driver is psycopg 3.
POSTGRES_DRIVER = "postgresql+psycopg2"

# MLflow's default Host allow-list, kept when we add the configured names: `--allowed-hosts` replaces
# the default instead of extending it (mlflow/server/security_utils.py, checked in MLflow 3.17.2), and
# the load balancer's health check addresses a task by its private IP and port.
LOCALHOST_HOSTS = ("localhost", "127.0.0.1", "[::1]", "localhost:*", "127.0.0.1:*", "[[]::1]:*")
PRIVATE_IP_HOST_PATTERNS = ("10.*", "192.168.*", *(f"172.{i}.*" for i in range(16, 32)), "fc00:*", "fd00:*")

# Set by the ECS agent in every task: where a container-local SQLite file would be lost on restart.
ECS_METADATA_ENV = "ECS_CONTAINER_METADATA_URI_V4"


class SettingsError(ValueError):
    """A setting is missing or malformed; the message is one line naming the variable(s)."""


class DatabaseSecret(BaseModel):
    """The RDS-style connection secret (the shape Secrets Manager's RDS templates use)."""

    model_config = ConfigDict(extra="ignore")

    engine: Literal["postgres", "postgresql"] = "postgres"
    host: Annotated[str, Field(min_length=1)]
    port: Annotated[int, Field(ge=1, le=65535)] = 5432
    dbname: Annotated[str, Field(min_length=1)]
    username: Annotated[str, Field(min_length=1)]
    password: SecretStr
    # Optional libpq sslmode (RDS for PostgreSQL 15+ forces TLS; libpq's default `prefer` works with it).
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None = None

    def sqlalchemy_uri(self) -> str:
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


class AdminSecret(BaseModel):
    """The MLflow admin user; the toolkit signs in with the same secret."""

    model_config = ConfigDict(extra="ignore")

    username: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._@+-]+$")]
    password: SecretStr

    @field_validator("password")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < MIN_ADMIN_PASSWORD_LENGTH:
            raise ValueError(f"password: must be at least {MIN_ADMIN_PASSWORD_LENGTH} characters (MLflow's rule)")
        return value


class ServerSettings(BaseModel):
    """Everything the entrypoint needs; built by `from_environ`, which reports errors by variable name."""

    model_config = ConfigDict(frozen=True)

    database_uri: SecretStr
    admin: AdminSecret
    flask_secret_key: SecretStr
    artifacts_destination: str
    allowed_hosts: tuple[str, ...] = ()
    workers: Annotated[int, Field(ge=1, le=64)] = DEFAULT_WORKERS
    auth_cache_seconds: Annotated[int, Field(ge=0, le=3600)] = DEFAULT_AUTH_CACHE_SECONDS
    host: Annotated[str, Field(min_length=1)] = DEFAULT_HOST
    port: Annotated[int, Field(ge=1, le=65535)] = DEFAULT_PORT

    @property
    def database_kind(self) -> Literal["postgresql", "sqlite"]:
        return "sqlite" if self.database_uri.get_secret_value().startswith("sqlite:") else "postgresql"

    def mlflow_allowed_hosts(self) -> str:
        """The value for `--allowed-hosts`: the configured names, each also with any port, plus MLflow's
        defaults (localhost and private IPs, which the load balancer's health check uses)."""
        if "*" in self.allowed_hosts:
            return "*"
        hosts: list[str] = []
        for name in self.allowed_hosts:
            hosts.append(name)
            if ":" not in name:
                hosts.append(f"{name}:*")
        hosts += [*LOCALHOST_HOSTS, *PRIVATE_IP_HOST_PATTERNS]
        return ",".join(dict.fromkeys(hosts))

    def mlflow_cors_allowed_origins(self) -> str | None:
        """The value for `--cors-allowed-origins`: the UI served on a configured name is the same origin.

        Without it MLflow's CORS guard (3.5+) answers 403 to every state-changing API call whose Origin
        is not localhost, and browsers send an Origin with same-origin POSTs: the UI on the domain
        could not even search runs (POST /ajax-api/2.0/mlflow/runs/search).
        """
        origins: list[str] = []
        for name in self.allowed_hosts:
            if "*" in name:
                continue
            for scheme in ("https", "http"):
                origins.append(f"{scheme}://{name}")
                if ":" not in name:
                    origins.append(f"{scheme}://{name}:*")
        return ",".join(origins) or None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> ServerSettings:
        """Read and validate every setting; raise `SettingsError` listing all problems on one line."""
        environ = os.environ if environ is None else environ
        problems: list[str] = []
        values: dict[str, Any] = {}

        database_secret = environ.get(server_env.DATABASE_SECRET, "").strip()
        database_uri = environ.get(server_env.DATABASE_URI, "").strip()
        if database_secret and database_uri:
            problems.append(f"{server_env.DATABASE_SECRET} and {server_env.DATABASE_URI}: set only one of them")
        elif database_secret:
            secret = _parse_secret(server_env.DATABASE_SECRET, database_secret, DatabaseSecret, problems)
            if isinstance(secret, DatabaseSecret):
                values["database_uri"] = secret.sqlalchemy_uri()
        elif database_uri:
            problem = _check_database_uri(database_uri, on_ecs=bool(environ.get(ECS_METADATA_ENV)))
            if problem:
                problems.append(f"{server_env.DATABASE_URI}: {problem}")
            else:
                values["database_uri"] = _with_psycopg2(database_uri)
        else:
            problems.append(
                f"{server_env.DATABASE_SECRET}: required (JSON with host, port, dbname, username, password), "
                f"or {server_env.DATABASE_URI} for a password-less URI"
            )

        admin_raw = environ.get(server_env.ADMIN_SECRET, "").strip()
        if not admin_raw:
            problems.append(f'{server_env.ADMIN_SECRET}: required (JSON {{"username": ..., "password": ...}})')
        else:
            admin = _parse_secret(server_env.ADMIN_SECRET, admin_raw, AdminSecret, problems)
            if admin is not None:
                values["admin"] = admin

        flask_key = environ.get(server_env.FLASK_SECRET_KEY, "")
        if not flask_key.strip():
            problems.append(f"{server_env.FLASK_SECRET_KEY}: required (a random string, the same on every task)")
        elif len(flask_key) < 16:
            problems.append(f"{server_env.FLASK_SECRET_KEY}: too short, expected at least 16 characters")
        else:
            values["flask_secret_key"] = flask_key

        destination = environ.get(server_env.ARTIFACTS_DESTINATION, "").strip()
        parts = urlsplit(destination)
        if not destination:
            problems.append(f"{server_env.ARTIFACTS_DESTINATION}: required (s3://bucket[/prefix])")
        elif parts.scheme != "s3" or not parts.netloc:
            problems.append(f"{server_env.ARTIFACTS_DESTINATION}: got {destination!r}, expected s3://bucket[/prefix]")
        else:
            values["artifacts_destination"] = destination.rstrip("/")

        hosts = tuple(h.strip() for h in environ.get(server_env.ALLOWED_HOSTS, "").split(",") if h.strip())
        bad_hosts = [h for h in hosts if not _valid_host(h)]
        if bad_hosts:
            problems.append(
                f"{server_env.ALLOWED_HOSTS}: got {', '.join(map(repr, bad_hosts))}, "
                "expected comma-separated host names such as mlflow.example.org or my-alb-123.elb.amazonaws.com"
            )
        else:
            values["allowed_hosts"] = hosts

        for variable, key, low, high in (
            (server_env.WORKERS, "workers", 1, 64),
            (server_env.AUTH_CACHE_SECONDS, "auth_cache_seconds", 0, 3600),
            (server_env.PORT, "port", 1, 65535),
        ):
            raw = environ.get(variable, "").strip()
            if not raw:
                continue
            if not raw.isdigit() or not low <= int(raw) <= high:
                problems.append(f"{variable}: got {raw!r}, expected an integer from {low} to {high}")
            else:
                values[key] = int(raw)
        host = environ.get(server_env.HOST, "").strip()
        if host:
            values["host"] = host

        if problems:
            raise SettingsError("; ".join(problems))
        try:
            return cls.model_validate(values)
        except ValidationError as exc:  # pragma: no cover - the checks above cover every field
            raise SettingsError(
                "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            ) from None


def _parse_secret(variable: str, raw: str, model: type[BaseModel], problems: list[str]) -> BaseModel | None:
    """Parse a JSON secret; report problems by key only, so that no part of the value is echoed."""
    try:
        payload = json.loads(raw)
    except ValueError:
        problems.append(f"{variable}: not valid JSON (the value is a secret and is not shown)")
        return None
    if not isinstance(payload, dict):
        problems.append(f"{variable}: expected a JSON object, got a JSON {type(payload).__name__}")
        return None
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        for error in exc.errors(include_url=False, include_input=False):
            key = ".".join(str(part) for part in error["loc"])
            if error["type"] == "missing":
                problems.append(f"{variable}: key {key!r} missing")
            elif error["type"] == "value_error":
                problems.append(f"{variable}: {str(error['msg']).removeprefix('Value error, ')}")
            else:
                problems.append(f"{variable}: key {key!r} malformed ({error['msg']})")
        return None


def _check_database_uri(uri: str, *, on_ecs: bool) -> str | None:
    scheme = uri.split(":", 1)[0].lower()
    if scheme not in ("sqlite", "postgres", "postgresql", "postgresql+psycopg2"):
        return f"scheme {scheme!r} not supported, expected sqlite:///path or postgresql://host/db"
    if scheme == "sqlite" and on_ecs:
        return "a SQLite file inside an ECS task is lost when the task restarts; use the database secret"
    if "@" in uri.split("//", 1)[-1].split("/", 1)[0]:
        parts = urlsplit(uri)
        if parts.password:
            return "must not contain a password; pass the connection as the database secret instead"
    return None


def _with_psycopg2(uri: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if uri.startswith(prefix):
            return POSTGRES_DRIVER + "://" + uri[len(prefix) :]
    return uri


def _valid_host(host: str) -> bool:
    if host == "*":
        return True
    if any(c.isspace() for c in host) or "/" in host or not host:
        return False
    return all(c.isalnum() or c in ".-:[]*_" for c in host)
