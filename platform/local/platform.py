"""The local platform: the AWS stack's moving parts on 127.0.0.1, run by the same server entrypoint.

`LocalPlatform(data_dir).up()` starts, each only if it is not already running:

1. moto in server mode (S3, Secrets Manager, SSM, IAM, STS), its state mirrored into `<data>/moto/`
   (`moto_server`), so artifacts, secrets and the SSM parameter survive `down`/`up`;
2. the metadata database: the SQLite file `<data>/mlflow.db`, or with `postgres=True` a PostgreSQL
   cluster in `<data>/postgres/` owned by an unprivileged user (`postgres`);
3. what the AWS stack creates: the artifact bucket, the admin, Flask-key and database secrets, and
   the `ClientConfig` in the SSM parameter `/mlflow-platform/local/client-config`; and an IAM user for
   the person running it, whose emulator key the profile carries (`mlflow_platform.local.identity`);
4. the server: `python -m mlflow_platform.server`, given the secrets as environment variables the way
   the ECS task definition gives them (read here from the emulated Secrets Manager, so a rotated
   secret takes effect at the next server start exactly as in AWS);

then writes the `local` profile (the toolkit's defaults) and returns once `/health` answers. Every
process is started in its own session with its pid in `<data>/run/`, logs in `<data>/logs/`; `down`
stops them by those pids. The data directory's first `up` generates the secrets' values and keeps
them in `<data>/platform.json` (mode 0600) as the seed from which missing secrets are recreated.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal

from mlflow_platform.local.identity import EmulatorKey, ensure_iam_user, local_username, server_identity
from mlflow_platform.local.postgres import SUPERUSER as POSTGRES_SUPERUSER
from mlflow_platform.local.postgres import PostgresCluster, PostgresError
from mlflow_platform.server import contract
from mlflow_platform.server.contract import ADMIN_USERNAME, AdminSecret, DatabaseSecret
from toolkit.aws import LOCAL_EMULATOR_KEY, aws_client
from toolkit.client_config import ClientConfig, ssm_parameter_name

DATA_DIR_ENV = "MLFLOW_PLATFORM_DATA_DIR"
STACK = "local"
REGION = "us-east-1"
BUCKET = "mlflow-platform-local-artifacts"
ADMIN_SECRET_ID = "mlflow-platform/local/admin"  # noqa: S105 - a secret's name
FLASK_SECRET_ID = "mlflow-platform/local/flask-secret-key"  # noqa: S105 - a secret's name
DATABASE_SECRET_ID = "mlflow-platform/local/database"  # noqa: S105 - a secret's name
DATABASE_NAME = "mlflow"
SERVER_START_TIMEOUT_SECONDS = 240.0
MOTO_START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 30.0

Reporter = Callable[[str], None]


class LocalPlatformError(RuntimeError):
    """The local platform could not start or stop; the message is one line naming the fix."""


def default_data_dir() -> Path:
    """`$MLFLOW_PLATFORM_DATA_DIR`, else the user's data directory (platformdirs) + `/local`."""
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        return Path(override).expanduser()
    from platformdirs import user_data_path

    return user_data_path("mlflow-platform") / "local"


@dataclass(frozen=True)
class LocalPorts:
    """Ports on 127.0.0.1. 5000 is avoided: macOS uses it for AirPlay."""

    server: int = 5050
    moto: int = 5051
    postgres: int = 5052


@dataclass(frozen=True)
class ProcessState:
    name: str
    pid: int | None
    running: bool


@dataclass(frozen=True)
class LocalStatus:
    data_dir: Path
    database: Literal["sqlite", "postgresql"] | None
    ports: LocalPorts
    processes: tuple[ProcessState, ...]
    healthy: bool

    @property
    def tracking_uri(self) -> str:
        return f"http://127.0.0.1:{self.ports.server}"

    @property
    def running(self) -> bool:
        return any(p.running for p in self.processes)


@dataclass
class _Seed:
    """The first values of the secrets, kept so a lost moto state can be rebuilt consistently."""

    admin_password: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    flask_secret_key: str = field(default_factory=lambda: secrets.token_hex(32))
    database_password: str = field(default_factory=lambda: secrets.token_urlsafe(24))


def _port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _pid_alive(pid: int | None, marker: str) -> bool:
    """Alive and still ours: the command line contains `marker` (guards against a reused pid)."""
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    proc = Path(f"/proc/{pid}")
    if not proc.exists():
        return True  # no procfs (macOS): trust the signal check
    try:
        stat = (proc / "stat").read_text()
        if stat[stat.rindex(")") + 2 :].startswith(("Z", "X")):
            return False  # exited, not yet reaped
        cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (OSError, ValueError):
        return False
    # An empty command line is a process between fork and exec: ours, just starting.
    return not cmdline.strip() or marker in cmdline


def _http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - our own http URL
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


class LocalPlatform:
    """One local platform, identified by its data directory. See the module docstring."""

    def __init__(self, data_dir: Path | None = None) -> None:
        self.data_dir = (data_dir or default_data_dir()).expanduser().resolve()

    # --- paths and persisted settings ------------------------------------------------------------
    @property
    def settings_file(self) -> Path:
        return self.data_dir / "platform.json"

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "mlflow.db"

    @property
    def auth_config_dir(self) -> Path:
        """Where the server writes MLflow's auth ini (with the database password); removed by `down`."""
        return self.run_dir / "auth"

    def _pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def _read_pid(self, name: str) -> int | None:
        try:
            return int(self._pid_file(name).read_text().strip())
        except (OSError, ValueError):
            return None

    def _load_settings(self) -> dict[str, Any]:
        if not self.settings_file.is_file():
            return {}
        loaded: dict[str, Any] = json.loads(self.settings_file.read_text(encoding="utf-8"))
        return loaded

    def _save_settings(self, settings: dict[str, Any]) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.settings_file.with_suffix(".tmp")
        descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(settings, handle, indent=2)
        tmp.replace(self.settings_file)

    def ports(self) -> LocalPorts:
        stored = self._load_settings().get("ports")
        return LocalPorts(**stored) if stored else LocalPorts()

    def database(self) -> Literal["sqlite", "postgresql"] | None:
        value = self._load_settings().get("database")
        return "postgresql" if value == "postgresql" else "sqlite" if value == "sqlite" else None

    def postgres_cluster(self) -> PostgresCluster:
        return PostgresCluster(self.data_dir / "postgres", self.ports().postgres)

    @property
    def moto_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports().moto}"

    @property
    def tracking_uri(self) -> str:
        return f"http://127.0.0.1:{self.ports().server}"

    # --- status ----------------------------------------------------------------------------------
    def status(self) -> LocalStatus:
        processes = [
            ProcessState(
                "moto", self._read_pid("moto"), _pid_alive(self._read_pid("moto"), "mlflow_platform.local.moto_server")
            ),
            ProcessState("server", self._read_pid("server"), _pid_alive(self._read_pid("server"), "mlflow")),
        ]
        if self.database() == "postgresql":
            cluster = self.postgres_cluster()
            processes.insert(1, ProcessState("postgres", cluster.pid(), cluster.is_running()))
        ports = self.ports()
        server_running = processes[-1].running
        healthy = server_running and _http_ok(f"http://127.0.0.1:{ports.server}/health")
        return LocalStatus(self.data_dir, self.database(), ports, tuple(processes), healthy)

    # --- up --------------------------------------------------------------------------------------
    def up(
        self,
        *,
        postgres: bool | None = None,
        ports: LocalPorts | None = None,
        allowed_hosts: tuple[str, ...] = (),
        workers: int = 1,
        report: Reporter = lambda _message: None,
    ) -> bool:
        """Start whatever is not running; returns False when everything already was (nothing done)."""
        before = self.status()
        if before.healthy and all(p.running for p in before.processes):
            return False
        settings = self._load_settings()
        stored_database = settings.get("database")
        wanted_database = "postgresql" if postgres else "sqlite" if postgres is False else stored_database or "sqlite"
        if stored_database and stored_database != wanted_database:
            raise LocalPlatformError(
                f"{self.data_dir} holds a {stored_database} platform; use it without "
                f"{'--postgres' if postgres else '--no-postgres'} or choose another --data-dir"
            )
        if before.running and ports is not None and ports != before.ports:
            raise LocalPlatformError(
                f"the platform in {self.data_dir} is partly running on other ports; "
                "run `mlflow-platform local down` first"
            )
        settings["database"] = wanted_database
        settings["ports"] = (ports or self.ports()).__dict__
        settings.setdefault("seed", _Seed().__dict__)
        settings["allowed_hosts"] = list(allowed_hosts)
        settings["workers"] = workers
        self._save_settings(settings)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)

        try:
            self._start_moto(report)
            if wanted_database == "postgresql":
                self._start_postgres(report)
            report("creating the bucket, the secrets and the SSM client config")
            self._provision()
            self.start_server(report)
        except BaseException:
            if not before.running:
                # Nothing ran before this call: leave nothing running (the logs stay in the data dir).
                self.down()
            raise
        report("writing the `local` profile")
        from toolkit.profiles import save_profile

        save_profile(self.client_config(), STACK)
        return True

    def _check_port_free(self, port: int, what: str, option: str) -> None:
        if _port_in_use(port):
            raise LocalPlatformError(
                f"port {port} ({what}) is already in use by another program; pass {option} PORT or stop that program"
            )

    def _start_moto(self, report: Reporter) -> None:
        ports = self.ports()
        if _pid_alive(self._read_pid("moto"), "mlflow_platform.local.moto_server"):
            report("moto already running")
        else:
            self._check_port_free(ports.moto, "moto", "--moto-port")
            report(f"starting moto (S3, Secrets Manager, SSM, IAM, STS) on 127.0.0.1:{ports.moto}")
            command = [
                sys.executable,
                "-m",
                "mlflow_platform.local.moto_server",
                "--port",
                str(ports.moto),
                "--state-dir",
                str(self.data_dir / "moto"),
                "--region",
                REGION,
            ]
            self._spawn("moto", command, os.environ.copy())
        deadline = time.monotonic() + MOTO_START_TIMEOUT_SECONDS
        from mlflow_platform.local.moto_server import READY_PATH

        while not _http_ok(f"{self.moto_endpoint}{READY_PATH}"):
            if not _pid_alive(self._read_pid("moto"), "mlflow_platform.local.moto_server"):
                raise LocalPlatformError(f"moto exited at start: {self._log_tail('moto')}")
            if time.monotonic() > deadline:
                raise LocalPlatformError(f"moto did not become ready in {MOTO_START_TIMEOUT_SECONDS:.0f} s")
            time.sleep(0.3)

    def _start_postgres(self, report: Reporter) -> None:
        cluster = self.postgres_cluster()
        seed = self._load_settings()["seed"]
        try:
            if cluster.is_running():
                report("PostgreSQL already running")
                return
            self._check_port_free(cluster.port, "PostgreSQL", "--postgres-port")
            if not cluster.initialized:
                report("creating the PostgreSQL cluster")
                cluster.init(seed["database_password"])
            report(f"starting PostgreSQL on 127.0.0.1:{cluster.port}")
            cluster.start()
            cluster.create_database(DATABASE_NAME, seed["database_password"])
        except PostgresError as exc:
            raise LocalPlatformError(str(exc)) from None

    def aws_client(self, service: str) -> Any:
        return aws_client(service, region=REGION, endpoint_url=self.moto_endpoint)

    def _provision(self) -> None:
        """What the AWS stack creates, created only when missing (moto restores earlier state)."""
        settings = self._load_settings()
        seed = settings["seed"]
        s3 = self.aws_client("s3")
        existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
        if BUCKET not in existing:
            s3.create_bucket(Bucket=BUCKET)
        wanted = {
            ADMIN_SECRET_ID: AdminSecret(username=ADMIN_USERNAME, password=seed["admin_password"]).secret_string(),
            FLASK_SECRET_ID: seed["flask_secret_key"],
        }
        if settings["database"] == "postgresql":
            wanted[DATABASE_SECRET_ID] = DatabaseSecret(
                host="127.0.0.1",
                port=self.ports().postgres,
                dbname=DATABASE_NAME,
                username=POSTGRES_SUPERUSER,
                password=seed["database_password"],
            ).secret_string()
        client = self.aws_client("secretsmanager")
        for secret_id, value in wanted.items():
            try:
                current = client.get_secret_value(SecretId=secret_id)["SecretString"]
            except client.exceptions.ResourceNotFoundException:
                client.create_secret(Name=secret_id, SecretString=value)
                continue
            if secret_id == DATABASE_SECRET_ID:
                stored = DatabaseSecret.model_validate_json(current)
                if stored.port != self.ports().postgres:
                    # Only the port may move between runs (`--postgres-port`); keep the rest as it is.
                    moved = stored.model_copy(update={"port": self.ports().postgres})
                    client.put_secret_value(SecretId=secret_id, SecretString=moved.secret_string())
        self._ensure_identity()
        self.aws_client("ssm").put_parameter(
            Name=ssm_parameter_name(STACK),
            Value=self.client_config().model_dump_json(),
            Type="String",
            Overwrite=True,
        )

    def _ensure_identity(self) -> EmulatorKey:
        """The IAM user of the person running the platform, and its key, valid in this moto (see
        `mlflow_platform.local.identity`); saved with the settings and carried by the `local` profile."""
        import boto3

        settings = self._load_settings()
        saved = EmulatorKey(**settings["identity"]) if settings.get("identity") else None

        def sts_for(key: EmulatorKey) -> Any:
            session = boto3.session.Session(
                aws_access_key_id=key.access_key_id, aws_secret_access_key=key.secret_access_key, region_name=REGION
            )
            return session.client("sts", endpoint_url=self.moto_endpoint)

        key = ensure_iam_user(self.aws_client("iam"), sts_for, local_username(), saved)
        if key != saved:
            settings["identity"] = key.__dict__
            self._save_settings(settings)
        return key

    def identity(self) -> EmulatorKey | None:
        """The IAM user `up` created for the person running the platform, with its emulator key."""
        saved = self._load_settings().get("identity")
        return EmulatorKey(**saved) if saved else None

    def client_config(self) -> ClientConfig:
        """The `ClientConfig` the AWS stack would output, pointing at 127.0.0.1 and moto, plus the
        emulator key of the person's IAM user: clients sign in with that identity, never a password."""
        key = self.identity()
        return ClientConfig(
            stack=STACK,
            tracking_uri=self.tracking_uri,
            artifact_store_uri=f"s3://{BUCKET}",
            region=REGION,
            mlflow_version=version("mlflow"),
            aws_endpoint_url=self.moto_endpoint,
            auth="aws-iam",
            emulator_access_key_id=key.access_key_id if key else None,
            emulator_secret_access_key=key.secret_access_key if key else None,
        )

    def read_secret(self, secret_id: str) -> str:
        value: str = self.aws_client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"]
        return value

    def server_environment(self) -> dict[str, str]:
        """What the ECS task definition gives the container, with the secrets read from (emulated) Secrets Manager."""
        settings = self._load_settings()
        environment = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AWS_"))}
        environment.update(
            {
                contract.ADMIN_SECRET: self.read_secret(ADMIN_SECRET_ID),
                contract.FLASK_SECRET_KEY: self.read_secret(FLASK_SECRET_ID),
                contract.ARTIFACTS_DESTINATION: f"s3://{BUCKET}",
                contract.ALLOWED_HOSTS: ",".join(settings.get("allowed_hosts", [])),
                contract.WORKERS: str(settings.get("workers", 1)),
                contract.HOST: "127.0.0.1",
                contract.PORT: str(self.ports().server),
                # The local server is reached over plain HTTP on 127.0.0.1.
                contract.PUBLIC_SCHEME: "http",
                contract.AUTH_CONFIG_DIR: str(self.auth_config_dir),
                # Sign-in with (emulated) AWS identities; the server verifies them with moto's STS.
                contract.IDENTITY: server_identity(self.tracking_uri, REGION).model_dump_json(),
                contract.STS_ENDPOINT: self.moto_endpoint,
                "AWS_ENDPOINT_URL": self.moto_endpoint,
                "MLFLOW_S3_ENDPOINT_URL": self.moto_endpoint,
                "AWS_ACCESS_KEY_ID": LOCAL_EMULATOR_KEY,
                "AWS_SECRET_ACCESS_KEY": LOCAL_EMULATOR_KEY,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
            }
        )
        if settings.get("database") == "postgresql":
            environment[contract.DATABASE_SECRET] = self.read_secret(DATABASE_SECRET_ID)
        else:
            environment[contract.DATABASE_URI] = f"sqlite:///{self.sqlite_path}"
        return environment

    # --- the server ------------------------------------------------------------------------------
    def start_server(self, report: Reporter = lambda _message: None) -> None:
        ports = self.ports()
        if not _pid_alive(self._read_pid("server"), "mlflow"):
            self._check_port_free(ports.server, "tracking server", "--port")
            report(f"starting the tracking server on 127.0.0.1:{ports.server} (migrations, then MLflow; ~20-40 s)")
            self._spawn("server", [sys.executable, "-m", "mlflow_platform.server"], self.server_environment())
        report("waiting for the tracking server's /health")
        deadline = time.monotonic() + SERVER_START_TIMEOUT_SECONDS
        while not _http_ok(f"http://127.0.0.1:{ports.server}/health"):
            if not _pid_alive(self._read_pid("server"), "mlflow"):
                raise LocalPlatformError(f"the tracking server exited at start: {self._log_tail('server')}")
            if time.monotonic() > deadline:
                raise LocalPlatformError(
                    f"the tracking server was not healthy after {SERVER_START_TIMEOUT_SECONDS:.0f} s; "
                    f"see {self.log_dir / 'server.log'}"
                )
            time.sleep(0.5)

    def stop_server(self) -> None:
        self._stop("server", "mlflow")

    def restart_server(self, report: Reporter = lambda _message: None) -> None:
        """Stop and start the server only (secrets are re-read, as a new ECS task would)."""
        self.stop_server()
        self.start_server(report)

    # --- down ------------------------------------------------------------------------------------
    def down(self, report: Reporter = lambda _message: None) -> list[str]:
        """Stop the server, PostgreSQL and moto (moto saves its state first); returns what was stopped."""
        stopped: list[str] = []
        if self._stop("server", "mlflow"):
            stopped.append("server")
            report("stopped the tracking server")
        shutil.rmtree(self.auth_config_dir, ignore_errors=True)
        cluster = self.postgres_cluster()
        if self.database() == "postgresql" and cluster.is_running():
            try:
                cluster.stop()
            except PostgresError as exc:
                raise LocalPlatformError(str(exc)) from None
            stopped.append("postgres")
            report("stopped PostgreSQL")
        if self._stop("moto", "mlflow_platform.local.moto_server", whole_group=False):
            stopped.append("moto")
            report("stopped moto (state saved)")
        return stopped

    # --- processes -------------------------------------------------------------------------------
    def _spawn(self, name: str, command: list[str], environment: dict[str, str]) -> int:
        log = (self.log_dir / f"{name}.log").open("ab")
        try:
            process = subprocess.Popen(
                command,
                cwd=self.data_dir,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # survives the CLI; `down` signals its whole group
            )
        finally:
            log.close()
        self._pid_file(name).write_text(f"{process.pid}\n")
        return process.pid

    def _stop(self, name: str, marker: str, *, whole_group: bool = True) -> bool:
        """SIGTERM, then SIGKILL after a bounded wait; the group = the process and its workers."""
        pid = self._read_pid(name)
        if not _pid_alive(pid, marker):
            self._pid_file(name).unlink(missing_ok=True)
            return False
        assert pid is not None

        def send(sig: signal.Signals) -> None:
            try:
                if whole_group:
                    os.killpg(pid, sig)
                else:
                    os.kill(pid, sig)
            except ProcessLookupError:
                pass

        send(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while _pid_alive(pid, marker) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.2)
        if _pid_alive(pid, marker):
            send(signal.SIGKILL)
            time.sleep(0.5)
            _reap(pid)
        if whole_group:
            _wait_group_gone(pid)
        self._pid_file(name).unlink(missing_ok=True)
        return True

    def _log_tail(self, name: str) -> str:
        """The most telling line of a log: the entrypoint's own error if there is one, else the last line."""
        path = self.log_dir / f"{name}.log"
        lines = path.read_text(errors="replace").strip().splitlines() if path.exists() else []
        ours = [line for line in lines if line.startswith("mlflow-platform server:")]
        tail = (ours or lines or ["no output"])[-1]
        return f"{tail} (log: {path})"


def _reap(pid: int) -> None:
    """Collect the exit status when the process is our child (the fixture's case), so it is not a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _wait_group_gone(pgid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pgid)  # an unreaped leader (our child) would keep the group "alive"
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
