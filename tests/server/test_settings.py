"""The entrypoint's settings: a missing or malformed variable gives one line naming it, never a secret."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from mlflow_platform.server import contract as server_env
from mlflow_platform.server.entrypoint import write_auth_config
from mlflow_platform.server.settings import ServerSettings, SettingsError

ADMIN_PASSWORD = "admin-password-value-42"
DB_PASSWORD = "db-pass%word-value-77"
GOOD = {
    server_env.DATABASE_SECRET: json.dumps(
        {
            "engine": "postgres",
            "host": "db.internal",
            "port": 5432,
            "dbname": "mlflow",
            "username": "mlflow",
            "password": DB_PASSWORD,
        }
    ),
    server_env.ADMIN_SECRET: json.dumps({"username": "admin", "password": ADMIN_PASSWORD}),
    server_env.FLASK_SECRET_KEY: "f" * 32,
    server_env.ARTIFACTS_DESTINATION: "s3://my-bucket/",
    server_env.ALLOWED_HOSTS: "mlflow.example.org, my-alb-123.eu-west-1.elb.amazonaws.com",
    server_env.WORKERS: "3",
    server_env.PORT: "5000",
}


def _without(name: str) -> dict[str, str]:
    return {k: v for k, v in GOOD.items() if k != name}


def test_good_settings() -> None:
    settings = ServerSettings.from_environ(GOOD)
    assert settings.database_uri.get_secret_value().startswith("postgresql+psycopg2://mlflow:db-pass%25word")
    assert settings.artifacts_destination == "s3://my-bucket"
    assert settings.workers == 3
    assert settings.allowed_hosts == ("mlflow.example.org", "my-alb-123.eu-west-1.elb.amazonaws.com")
    hosts = settings.mlflow_allowed_hosts().split(",")
    assert {"mlflow.example.org", "mlflow.example.org:*", "10.*", "localhost:*"} <= set(hosts)
    origins = (settings.mlflow_cors_allowed_origins() or "").split(",")
    assert {"https://mlflow.example.org", "https://mlflow.example.org:*"} <= set(origins)
    # Behind an HTTPS listener (the default) a page served over plain HTTP is not the UI.
    assert not [origin for origin in origins if origin.startswith("http://")]
    plain = ServerSettings.from_environ({**GOOD, server_env.PUBLIC_SCHEME: "http"}).mlflow_cors_allowed_origins()
    assert "http://mlflow.example.org" in (plain or "").split(",")
    assert "https://" not in (plain or "")
    assert ServerSettings.from_environ(_without(server_env.ALLOWED_HOSTS)).mlflow_cors_allowed_origins() is None
    assert DB_PASSWORD not in repr(settings)
    assert ADMIN_PASSWORD not in repr(settings)


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        (_without(server_env.ADMIN_SECRET), server_env.ADMIN_SECRET),
        (_without(server_env.DATABASE_SECRET), server_env.DATABASE_SECRET),
        (_without(server_env.FLASK_SECRET_KEY), server_env.FLASK_SECRET_KEY),
        (_without(server_env.ARTIFACTS_DESTINATION), server_env.ARTIFACTS_DESTINATION),
        ({**GOOD, server_env.ARTIFACTS_DESTINATION: "/var/mlruns"}, server_env.ARTIFACTS_DESTINATION),
        ({**GOOD, server_env.ADMIN_SECRET: "{not json " + ADMIN_PASSWORD}, server_env.ADMIN_SECRET),
        ({**GOOD, server_env.ADMIN_SECRET: json.dumps({"username": "admin"})}, server_env.ADMIN_SECRET),
        (
            {**GOOD, server_env.ADMIN_SECRET: json.dumps({"username": "admin", "password": "short"})},
            server_env.ADMIN_SECRET,
        ),
        (
            {**GOOD, server_env.DATABASE_SECRET: json.dumps({"host": "x", "password": DB_PASSWORD})},
            server_env.DATABASE_SECRET,
        ),
        ({**GOOD, server_env.DATABASE_URI: "sqlite:////tmp/x.db"}, server_env.DATABASE_URI),
        ({**GOOD, server_env.WORKERS: "many"}, server_env.WORKERS),
        ({**GOOD, server_env.PORT: "70000"}, server_env.PORT),
        ({**GOOD, server_env.AUTH_CACHE_SECONDS: "-1"}, server_env.AUTH_CACHE_SECONDS),
        ({**GOOD, server_env.ALLOWED_HOSTS: "https://mlflow.example.org/"}, server_env.ALLOWED_HOSTS),
        ({**GOOD, server_env.PUBLIC_SCHEME: "ftp"}, server_env.PUBLIC_SCHEME),
    ],
)
def test_bad_settings_name_the_variable_on_one_line_without_secrets(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError) as caught:
        ServerSettings.from_environ(environ)
    message = str(caught.value)
    assert variable in message
    assert "\n" not in message
    assert ADMIN_PASSWORD not in message
    assert DB_PASSWORD not in message
    assert "f" * 32 not in message


def test_sqlite_refused_inside_an_ecs_task() -> None:
    environ = {**_without(server_env.DATABASE_SECRET), server_env.DATABASE_URI: "sqlite:////tmp/mlflow.db"}
    assert ServerSettings.from_environ(environ).database_kind == "sqlite"
    with pytest.raises(SettingsError, match=server_env.DATABASE_URI):
        ServerSettings.from_environ({**environ, "ECS_CONTAINER_METADATA_URI_V4": "http://169.254.170.2/v4/x"})


def test_auth_config_points_at_the_same_database_and_is_private(tmp_path: os.PathLike[str]) -> None:
    """The database password holds a '%': MLflow's interpolating reader must get the URI back unchanged."""
    import configparser
    from pathlib import Path

    settings = ServerSettings.from_environ(GOOD)
    path = write_auth_config(settings, Path(tmp_path) / "auth")
    assert path.stat().st_mode & 0o777 == 0o600
    parser = configparser.ConfigParser()  # MLflow reads it with the default interpolation
    parser.read(path)
    assert parser["mlflow"]["database_uri"] == settings.database_uri.get_secret_value()
    assert parser["mlflow"]["admin_username"] == "admin"
    assert "admin_password" not in parser["mlflow"]


def test_password_cache_is_what_mlflow_reads(tmp_path: os.PathLike[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow's own config reader sees the cache lifetime we set (default 30 s, 0 switches it off)."""
    from pathlib import Path

    from mlflow.server.auth.config import read_auth_config

    for value, expected in ((None, 30), ("0", 0), ("120", 120)):
        environ = GOOD if value is None else {**GOOD, server_env.AUTH_CACHE_SECONDS: value}
        path = write_auth_config(ServerSettings.from_environ(environ), Path(tmp_path) / f"auth-{value}")
        monkeypatch.setenv("MLFLOW_AUTH_CONFIG_PATH", str(path))
        assert read_auth_config().auth_cache_ttl_seconds == expected


@pytest.mark.parametrize("broken", [server_env.ADMIN_SECRET, server_env.ARTIFACTS_DESTINATION])
def test_entrypoint_exits_non_zero_with_one_line(broken: str) -> None:
    """The real process: fails before importing MLflow, status 2, one line on stderr, no secret in it."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    environ.update({k: v for k, v in GOOD.items() if k != broken})
    result = subprocess.run(
        [sys.executable, "-m", "mlflow_platform.server"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert broken in lines[0]
    assert lines[0].startswith("mlflow-platform server: invalid settings:")
    assert ADMIN_PASSWORD not in result.stderr + result.stdout
    assert DB_PASSWORD not in result.stderr + result.stdout
