"""The entrypoint's settings, read from the environment of the ECS task (or the local platform).

pydantic-settings reads the variables named in `contract` (each field's alias is its variable), with
`hide_input_in_errors` so a secret can never reach an error message; the errors are then reported one
line per variable, naming it and what was expected, and showing the given value only for variables that
are not secret. Validation happens before MLflow is imported, so a wrong task definition fails in a
second instead of after MLflow's start-up.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.sources.utils import parse_env_vars

from mlflow_platform.server import contract
from mlflow_platform.server.contract import (
    AdminSecret,
    AuthCacheSeconds,
    DatabaseSecret,
    Port,
    ServerIdentity,
    Workers,
)

__all__ = ["ServerSettings", "SettingsError"]

# MLflow's default Host allow-list, kept when we add the configured names: `--allowed-hosts` replaces
# the default instead of extending it (mlflow/server/security_utils.py, checked in MLflow 3.17.2), and
# the load balancer's health check addresses a task by its private IP and port.
LOCALHOST_HOSTS = ("localhost", "127.0.0.1", "[::1]", "localhost:*", "127.0.0.1:*", "[[]::1]:*")
PRIVATE_IP_HOST_PATTERNS = ("10.*", "192.168.*", *(f"172.{i}.*" for i in range(16, 32)), "fc00:*", "fd00:*")

# Set by the ECS agent in every task: where a container-local SQLite file would be lost on restart.
ECS_METADATA_ENV = "ECS_CONTAINER_METADATA_URI_V4"
_NO_DATABASE = (
    f"{contract.DATABASE_SECRET}: required (JSON with host, port, dbname, username, password), "
    f"or {contract.DATABASE_URI} for a password-less URI"
)
# What a missing variable should hold, for the error message.
_EXPECTED = {
    contract.ADMIN_SECRET: 'JSON {"username": ..., "password": ...}',
    contract.FLASK_SECRET_KEY: "a random string, the same on every task",
    contract.ARTIFACTS_DESTINATION: "s3://bucket[/prefix]",
}
_SQLITE_ON_ECS = "a SQLite file inside an ECS task is lost when the task restarts; use the database secret"


class SettingsError(ValueError):
    """A setting is missing or malformed; the message is one line naming the variable(s)."""


class _GivenEnvironment(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping (the process environment by default)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._environ, True, True, None)


class ServerSettings(BaseSettings):
    """Everything the entrypoint needs. Build it with `from_environ`, which raises `SettingsError`."""

    model_config = SettingsConfigDict(
        case_sensitive=True, env_ignore_empty=True, hide_input_in_errors=True, extra="ignore", frozen=True
    )

    database: Annotated[DatabaseSecret | None, NoDecode] = Field(None, validation_alias=contract.DATABASE_SECRET)
    plain_database_uri: str | None = Field(None, validation_alias=contract.DATABASE_URI)
    admin: Annotated[AdminSecret, NoDecode] = Field(validation_alias=contract.ADMIN_SECRET)
    flask_secret_key: SecretStr = Field(validation_alias=contract.FLASK_SECRET_KEY)
    artifacts_destination: str = Field(validation_alias=contract.ARTIFACTS_DESTINATION)
    allowed_hosts: Annotated[tuple[str, ...], NoDecode] = Field((), validation_alias=contract.ALLOWED_HOSTS)
    workers: Workers = Field(contract.DEFAULT_WORKERS, validation_alias=contract.WORKERS)
    auth_cache_seconds: AuthCacheSeconds = Field(
        contract.DEFAULT_AUTH_CACHE_SECONDS, validation_alias=contract.AUTH_CACHE_SECONDS
    )
    host: Annotated[str, Field(min_length=1)] = Field(contract.LISTEN_HOST, validation_alias=contract.HOST)
    port: Port = Field(contract.LISTEN_PORT, validation_alias=contract.PORT)
    public_scheme: Literal["https", "http"] = Field("https", validation_alias=contract.PUBLIC_SCHEME)
    auth_config_dir: Path | None = Field(None, validation_alias=contract.AUTH_CONFIG_DIR)
    # Sign-in with AWS identities: who maps to which MLflow user, and where STS is (not secret).
    identity: Annotated[ServerIdentity | None, NoDecode] = Field(None, validation_alias=contract.IDENTITY)
    sts_endpoint: str | None = Field(None, validation_alias=contract.STS_ENDPOINT)
    running_on_ecs: bool = Field(False, validation_alias=ECS_METADATA_ENV)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # `from_environ` reads the environment it is given; no dotenv or secrets directory in a container.
        return (init_settings,)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> ServerSettings:
        """Read and validate every setting; raise `SettingsError` listing all problems on one line."""
        environ = os.environ if environ is None else environ
        values = _GivenEnvironment(cls, environ)()
        try:
            return cls(**values)
        except ValidationError as exc:
            problems = _problems(exc, environ)
        # A check across variables runs only once every variable is valid; say it now too.
        if contract.DATABASE_SECRET not in values and contract.DATABASE_URI not in values:
            problems.insert(0, _NO_DATABASE)
        raise SettingsError("; ".join(dict.fromkeys(problems)))

    # --- field checks -----------------------------------------------------------------------------------

    @field_validator("database", mode="before")
    @classmethod
    def _database_json(cls, value: Any) -> Any:
        return _secret_json(DatabaseSecret, value)

    @field_validator("admin", mode="before")
    @classmethod
    def _admin_json(cls, value: Any) -> Any:
        return _secret_json(AdminSecret, value)

    @field_validator("identity", mode="before")
    @classmethod
    def _identity_json(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return ServerIdentity.model_validate_json(value)
        except ValidationError as exc:
            problems = [
                "not valid JSON"
                if error["type"] == "json_invalid"
                else f"{'.'.join(str(part) for part in error['loc']) or 'the value'}: "
                + str(error["msg"]).removeprefix("Value error, ")
                for error in exc.errors(include_url=False, include_input=False)
            ]
            raise ValueError("; ".join(problems)) from None

    @field_validator("sts_endpoint")
    @classmethod
    def _http_endpoint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
            raise ValueError("expected an http(s) URL without a path, such as https://sts.eu-west-1.amazonaws.com")
        return value.strip().rstrip("/")

    @field_validator("running_on_ecs", mode="before")
    @classmethod
    def _set_at_all(cls, value: Any) -> bool:
        return bool(value)

    @field_validator("flask_secret_key")
    @classmethod
    def _long_key(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < contract.FLASK_SECRET_KEY_MIN_LENGTH:
            raise ValueError(
                f"too short, expected at least {contract.FLASK_SECRET_KEY_MIN_LENGTH} characters "
                "(a random string, the same on every task)"
            )
        return value

    @field_validator("artifacts_destination")
    @classmethod
    def _s3_destination(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError("expected s3://bucket[/prefix]")
        return value.strip().rstrip("/")

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _comma_separated_hosts(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        hosts = tuple(host.strip() for host in value.split(",") if host.strip())
        if not all(_valid_host(host) for host in hosts):
            raise ValueError(
                "expected comma-separated host names such as mlflow.example.org or my-alb-123.elb.amazonaws.com"
            )
        return hosts

    @field_validator("plain_database_uri")
    @classmethod
    def _password_less_uri(cls, value: str | None) -> str | None:
        if value is None:
            return None
        uri = value.strip()
        scheme = uri.split(":", 1)[0].lower()
        if scheme not in ("sqlite", "postgres", "postgresql", contract.POSTGRES_DRIVER):
            raise ValueError(f"scheme {scheme!r} not supported, expected sqlite:///path or postgresql://host/db")
        if urlsplit(uri).password:
            raise ValueError("must not contain a password; pass the connection as the database secret instead")
        for prefix in ("postgresql://", "postgres://"):
            if uri.startswith(prefix):
                return contract.POSTGRES_DRIVER + "://" + uri[len(prefix) :]
        return uri

    @model_validator(mode="after")
    def _one_database(self) -> ServerSettings:
        if self.database is not None and self.plain_database_uri is not None:
            raise ValueError(f"{contract.DATABASE_SECRET} and {contract.DATABASE_URI}: set only one of them")
        if self.database is None and self.plain_database_uri is None:
            raise ValueError(_NO_DATABASE)
        if self.database_kind == "sqlite" and self.running_on_ecs:
            raise ValueError(f"{contract.DATABASE_URI}: {_SQLITE_ON_ECS}")
        return self

    # --- what the entrypoint uses -----------------------------------------------------------------------

    @property
    def database_uri(self) -> SecretStr:
        """The SQLAlchemy URI of the tracking (and auth) database, password included."""
        if self.database is not None:
            return SecretStr(self.database.sqlalchemy_uri())
        return SecretStr(self.plain_database_uri or "")

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

        Without it MLflow's CORS guard answers 403 to every state-changing API call whose Origin is not
        localhost, and browsers send an Origin with same-origin POSTs: the UI on the domain could not
        even search runs (POST /ajax-api/2.0/mlflow/runs/search). Only the scheme clients use is an
        origin: behind an HTTPS listener, a page served over plain HTTP is not the UI.
        """
        origins: list[str] = []
        for name in self.allowed_hosts:
            if "*" in name:
                continue
            origins.append(f"{self.public_scheme}://{name}")
            if ":" not in name:
                origins.append(f"{self.public_scheme}://{name}:*")
        return ",".join(origins) or None


def _secret_json(model: type[DatabaseSecret] | type[AdminSecret], value: Any) -> Any:
    """Parse a secret's JSON; report problems by key only, so that no part of the value is echoed."""
    if not isinstance(value, str):
        return value
    try:
        return model.model_validate_json(value)
    except ValidationError as exc:
        problems: list[str] = []
        for error in exc.errors(include_url=False, include_input=False):
            key = ".".join(str(part) for part in error["loc"])
            if error["type"] == "json_invalid":
                problems.append("not valid JSON (the value is a secret and is not shown)")
            elif error["type"] == "model_type":
                problems.append("expected a JSON object")
            elif error["type"] == "missing":
                problems.append(f"key {key!r} missing")
            elif error["type"] == "value_error":
                problems.append(f"{key}: {str(error['msg']).removeprefix('Value error, ')}")
            else:
                problems.append(f"key {key!r} malformed ({error['msg']})")
        raise ValueError(", ".join(problems)) from None


def _problems(exc: ValidationError, environ: Mapping[str, str]) -> list[str]:
    """One `VARIABLE: what was expected` per error; the given value only for variables that are not secret."""
    problems: list[str] = []
    for error in exc.errors(include_url=False, include_input=False):
        message = str(error["msg"]).removeprefix("Value error, ").replace("Input should be ", "expected ")
        if not error["loc"]:  # a check across variables names them itself
            problems.append(message)
            continue
        variable = str(error["loc"][0])
        if error["type"] == "missing":
            expected = _EXPECTED.get(variable)
            problems.append(f"{variable}: required ({expected})" if expected else f"{variable}: required")
        elif variable in contract.SECRET_VARIABLES or variable not in environ:
            problems.append(f"{variable}: {message}")
        else:
            problems.append(f"{variable}: got {environ[variable].strip()!r}, {message}")
    return problems


def _valid_host(host: str) -> bool:
    if host == "*":
        return True
    if any(c.isspace() for c in host) or "/" in host or not host:
        return False
    return all(c.isalnum() or c in ".-:[]*_" for c in host)
