"""The tracking server's entrypoint: `python -m mlflow_platform.server`, the container's command.

The ECS task, the local platform and the tests all run this module, so what the tests verify is what
runs in AWS. In order:

1. read and validate the settings from the environment (`settings`), before importing MLflow,
   so a wrong task definition fails fast with one line naming the variable;
2. serialize the rest of the start-up across tasks with a PostgreSQL advisory lock (a file lock for
   the local SQLite file): two tasks starting at once against an empty database would otherwise both
   run the migrations and one of them would crash;
3. upgrade the tracking schema and the basic-auth schema (they share the database, with separate
   Alembic version tables);
4. make the admin user's password equal to the secret's: created when missing, updated when the
   secret was rotated (so the old password stops working at the next start). MLflow itself only
   reads the admin password while the user table is empty;
5. write MLflow's basic-auth ini (auth database = the tracking database, never a task-local SQLite
   file) into a private temporary directory, and replace this process with `mlflow server
   --app-name basic-auth`, serving artifacts from the S3 destination.

On SIGTERM (ECS stops the task: a deploy, a scale-in) `mlflow server` forwards the signal to uvicorn,
which stops accepting connections, finishes the requests in flight for up to
`contract.GRACEFUL_SHUTDOWN_SECONDS`, and exits; `mlflow server` then exits with it.

The database URI reaches `mlflow server` through `MLFLOW_BACKEND_STORE_URI` (the variable behind its
`--backend-store-uri` option) rather than the command line, which every user of the host can read.
"""

from __future__ import annotations

import configparser
import contextlib
import fcntl
import importlib
import logging
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NoReturn

from mlflow_platform.server import contract
from mlflow_platform.server.settings import ServerSettings, SettingsError

_logger = logging.getLogger("mlflow_platform.server")

# pg_advisory_lock key: any constant bigint shared by every task of the platform ("mlflowpl" in ASCII).
ADVISORY_LOCK_KEY = 0x6D6C_666C_6F77_706C
LOCK_TIMEOUT_SECONDS = 600.0
DATABASE_CONNECT_TIMEOUT_SECONDS = 120.0
AUTH_CONFIG_NAME = "basic_auth.ini"
AUTHORIZATION_FUNCTION = "mlflow_platform.server.aws_identity:authenticate"
# The variables MLflow reads that our settings replace; removed so a stale value cannot win.
_OVERRIDDEN_MLFLOW_VARIABLES = ("MLFLOW_AUTH_ADMIN_USERNAME", "MLFLOW_AUTH_ADMIN_PASSWORD")


# libpq messages that no retry will cure (wrong password or user, missing database, a server certificate
# that cannot be verified or no CA bundle to verify it with).
_PERMANENT_CONNECT_ERRORS = (
    "password authentication failed",
    "does not exist",
    "no pg_hba.conf entry",
    "certificate verify failed",
    "root certificate file",
    "server certificate for",
)


class StartupError(RuntimeError):
    """Start-up failed for a reason the operator can act on; the message is one line."""


def main() -> NoReturn:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = ServerSettings.from_environ()
    except SettingsError as exc:
        _die(f"invalid settings: {exc}", status=2)
    try:
        prepare_database(settings)
        auth_config = write_auth_config(settings, _auth_config_dir(settings))
    except StartupError as exc:
        _die(str(exc), status=1)
    except Exception as exc:
        # Unexpected (a failed migration, an unwritable directory): the traceback for the log, one line last.
        _logger.exception("start-up failed")
        first_line = (str(exc).strip().splitlines() or [""])[0]
        _die(f"start-up failed: {type(exc).__name__}: {first_line}", status=1)
    command = mlflow_server_command(settings)
    environment = mlflow_server_environment(settings, auth_config, os.environ)
    _logger.info("starting %s", " ".join(command))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, command, environment)  # noqa: S606 - replace this process, no shell involved


def _die(message: str, *, status: int) -> NoReturn:
    print(f"mlflow-platform server: {message}", file=sys.stderr, flush=True)
    raise SystemExit(status)


def mlflow_server_command(settings: ServerSettings) -> list[str]:
    """`mlflow server` with basic auth, proxied S3 artifacts, the Host allow-list and the UI's origins."""
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--app-name",
        "basic-auth",
        "--artifacts-destination",
        settings.artifacts_destination,
        "--host",
        settings.host,
        "--port",
        str(settings.port),
        "--workers",
        str(settings.workers),
        "--allowed-hosts",
        settings.mlflow_allowed_hosts(),
        # On SIGTERM uvicorn stops accepting connections and lets in-flight requests (a large upload)
        # finish; this bounds the wait so that the server exits by itself before ECS's SIGKILL.
        "--uvicorn-opts",
        f"--timeout-graceful-shutdown {contract.GRACEFUL_SHUTDOWN_SECONDS}",
    ]
    origins = settings.mlflow_cors_allowed_origins()
    if origins:
        command += ["--cors-allowed-origins", origins]
    return command


def mlflow_server_environment(
    settings: ServerSettings, auth_config: Path, environ: Mapping[str, str]
) -> dict[str, str]:
    """The environment of `mlflow server`: ours minus the raw secrets, plus what MLflow reads."""
    environment = {
        name: value
        for name, value in environ.items()
        if name not in (contract.DATABASE_SECRET, contract.ADMIN_SECRET, contract.DATABASE_URI)
        and name not in _OVERRIDDEN_MLFLOW_VARIABLES
    }
    environment["MLFLOW_BACKEND_STORE_URI"] = settings.database_uri.get_secret_value()
    environment["MLFLOW_AUTH_CONFIG_PATH"] = str(auth_config)
    environment[contract.FLASK_SECRET_KEY] = settings.flask_secret_key.get_secret_value()
    # MLflow's job runner (GenAI scorers, a huey consumer per task) is not used by this platform;
    # an explicit value in the task definition still wins.
    environment.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    # A server in a private subnet does not report usage to MLflow's telemetry service.
    environment.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    return environment


def _auth_config_dir(settings: ServerSettings) -> Path:
    if settings.auth_config_dir is not None:
        return settings.auth_config_dir
    return Path(tempfile.mkdtemp(prefix="mlflow-platform-auth-"))


def write_auth_config(settings: ServerSettings, folder: Path) -> Path:
    """MLflow's basic-auth ini, readable by this user only (it holds the database password)."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    parser = configparser.ConfigParser(interpolation=None)
    parser["mlflow"] = {
        "default_permission": settings.identity.default_permission if settings.identity else "READ",
        "database_uri": _escape_interpolation(settings.database_uri.get_secret_value()),
        "admin_username": settings.admin.username,
        # AWS identities and MLflow's Basic auth, never a 5xx for a malformed credential, and one log
        # line per request (mlflow_platform/server/aws_identity.py).
        "authorization_function": AUTHORIZATION_FUNCTION,
        "auth_cache_ttl_seconds": str(settings.auth_cache_seconds),
    }
    path = folder / AUTH_CONFIG_NAME
    # Written aside and renamed: a uvicorn worker (re)starting meanwhile never reads half a file.
    tmp = folder / f".{AUTH_CONFIG_NAME}.{os.getpid()}"
    descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        parser.write(handle)
    tmp.replace(path)
    return path


def _escape_interpolation(value: str) -> str:
    """MLflow reads the ini with ConfigParser's default interpolation: a URL-encoded `%` must be doubled."""
    return value.replace("%", "%%")


def prepare_database(settings: ServerSettings) -> None:
    """Migrations and the admin user, under a lock that every task of the platform shares."""
    uri = settings.database_uri.get_secret_value()
    with _startup_lock(settings, uri):
        _upgrade_tracking_schema(uri)
        sync_admin_user(uri, settings.admin.username, settings.admin.password.get_secret_value())


@contextlib.contextmanager
def _startup_lock(settings: ServerSettings, uri: str) -> Iterator[None]:
    if settings.database_kind == "sqlite":
        with _file_lock(Path(_sqlite_path(uri) + ".startup-lock")):
            yield
    else:
        with _advisory_lock(uri):
            yield


def _sqlite_path(uri: str) -> str:
    path = uri.split(":///", 1)[-1].split("?", 1)[0]
    if not path or path == ":memory:":
        raise StartupError(f"{contract.DATABASE_URI}: expected a SQLite file, sqlite:////absolute/path.db")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        deadline = time.monotonic() + LOCK_TIMEOUT_SECONDS
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StartupError(f"another server held the start-up lock {path} too long") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _advisory_lock(uri: str) -> Iterator[None]:
    """A session-level PostgreSQL advisory lock on a dedicated connection, polled with a deadline."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(uri, poolclass=sqlalchemy.pool.NullPool)
    try:
        connection = _connect_with_retry(engine)
        with connection:
            deadline = time.monotonic() + LOCK_TIMEOUT_SECONDS
            announced = False
            while not connection.execute(
                sqlalchemy.text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
            ).scalar():
                connection.commit()
                if not announced:
                    _logger.info("another task is migrating the database; waiting for its lock")
                    announced = True
                if time.monotonic() > deadline:
                    raise StartupError(f"waited {LOCK_TIMEOUT_SECONDS:.0f} s for another task's start-up lock")
                time.sleep(0.5)
            connection.commit()
            try:
                yield
            finally:
                connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY})
                connection.commit()
    finally:
        engine.dispose()


def _connect_with_retry(engine: Any) -> Any:
    """The database may still be starting (a fresh RDS instance, the local cluster): retry, bounded."""
    import sqlalchemy.exc

    deadline = time.monotonic() + DATABASE_CONNECT_TIMEOUT_SECONDS
    delay = 0.5
    while True:
        try:
            return engine.connect()
        except sqlalchemy.exc.OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
            if any(permanent in str(exc.orig) for permanent in _PERMANENT_CONNECT_ERRORS):
                raise StartupError(
                    f"the database at {engine.url.host}:{engine.url.port} refused us: {reason}"
                ) from None
            if time.monotonic() > deadline:
                raise StartupError(
                    f"cannot connect to the database at {engine.url.host}:{engine.url.port} "
                    f"after {DATABASE_CONNECT_TIMEOUT_SECONDS:.0f} s: {reason}"
                ) from None
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def _upgrade_tracking_schema(uri: str) -> None:
    """What `mlflow db upgrade` does (mlflow/db.py, 3.17): create the tables on an empty database,
    else run the pending Alembic migrations. Done in-process to keep the URI off the command line."""
    # Typed as Any: MLflow's functions carry no annotations (mypy strict would refuse the calls).
    db_utils: Any = importlib.import_module("mlflow.store.db.utils")
    engine = db_utils.create_sqlalchemy_engine_with_retry(uri)
    try:
        if db_utils._is_empty_database(engine):
            _logger.info("empty database: creating the MLflow tracking tables")
            db_utils._initialize_tables(engine)
        else:
            db_utils._upgrade_db(engine)
    finally:
        engine.dispose()


def sync_admin_user(uri: str, username: str, password: str) -> str:
    """Create the admin user, or reset its password to the secret's; returns what was done.

    `init_db` also upgrades the auth schema (its own Alembic version table in the same database).
    """
    auth_store: Any = importlib.import_module("mlflow.server.auth.sqlalchemy_store")
    store = auth_store.SqlAlchemyStore()
    store.init_db(uri)
    try:
        if not store.has_user(username, use_primary=True):
            store.create_user(username, password, is_admin=True)
            action = "created"
        elif not store.authenticate_user(username, password, use_primary=True):
            store.update_user(username, password=password, is_admin=True)
            action = "password updated from the secret"
        else:
            if not store.get_user(username).is_admin:
                store.update_user(username, is_admin=True)
            action = "unchanged"
    finally:
        store.engine.dispose()
    _logger.info("admin user %r: %s", username, action)
    return action
