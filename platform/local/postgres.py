"""A throwaway PostgreSQL cluster for the local platform (`local up --postgres`) and the tests.

PostgreSQL refuses to run as root. When we are root the cluster belongs to the unprivileged
`postgres` user and every server binary runs through `runuser -u postgres --`; otherwise it runs as
the current user. It listens on 127.0.0.1 only, with no Unix socket (nothing to clean up in /run),
and password (SCRAM) authentication.
"""

from __future__ import annotations

import importlib
import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BIN_DIR_ENV = "MLFLOW_PLATFORM_POSTGRES_BIN"
SUPERUSER = "mlflow"
START_TIMEOUT_SECONDS = 60


class PostgresError(RuntimeError):
    """The cluster could not be created, started or stopped; one line saying why and what to do."""


def find_bin_dir() -> Path:
    """`$MLFLOW_PLATFORM_POSTGRES_BIN`, else `pg_ctl` on PATH, else the newest /usr/lib/postgresql/*/bin."""
    override = os.environ.get(BIN_DIR_ENV)
    if override:
        return Path(override)
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).parent
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if candidates:
        return candidates[-1].parent
    raise PostgresError(
        f"PostgreSQL binaries not found: install PostgreSQL 15 or set {BIN_DIR_ENV} to its bin directory"
    )


@dataclass(frozen=True)
class PostgresCluster:
    """A cluster in `root/cluster`, logging to `root/postgres.log`; `root` is owned by the server's user."""

    root: Path
    port: int

    @property
    def cluster_dir(self) -> Path:
        return self.root / "cluster"

    @property
    def log_file(self) -> Path:
        return self.root / "postgres.log"

    @property
    def initialized(self) -> bool:
        return (self.cluster_dir / "PG_VERSION").is_file()

    def _as_owner(self) -> list[str]:
        if os.geteuid() != 0:
            return []
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise PostgresError("PostgreSQL refuses to run as root and there is no `postgres` user to run it") from None
        return ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str, timeout: float = START_TIMEOUT_SECONDS + 30) -> subprocess.CompletedProcess[str]:
        command = [*self._as_owner(), str(find_bin_dir() / args[0]), *args[1:]]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)

    def _prepare_root(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)
        if os.geteuid() == 0:
            self._as_owner()
            entry = pwd.getpwnam("postgres")
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
            check = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-w", str(self.root)], check=False)
            if check.returncode != 0:
                raise PostgresError(
                    f"the `postgres` user cannot reach {self.root}: a parent directory is private to root; "
                    "choose a --data-dir it can traverse (e.g. under /srv or /tmp)"
                )

    def init(self, password: str) -> None:
        """initdb with the superuser `mlflow` and the given password (SCRAM over TCP)."""
        self._prepare_root()
        pwfile = self.root / "initdb-password"
        descriptor = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(password + "\n")
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        try:
            result = self._run(
                "initdb",
                "-D",
                str(self.cluster_dir),
                "-U",
                SUPERUSER,
                f"--pwfile={pwfile}",
                "--auth-host=scram-sha-256",
                "--auth-local=reject",
                "-E",
                "UTF8",
                "--no-instructions",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise PostgresError(f"initdb failed: {_last_line(result)}")

    def start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories=''"
        result = self._run(
            "pg_ctl",
            "-D",
            str(self.cluster_dir),
            "-l",
            str(self.log_file),
            "-o",
            options,
            "-w",
            "-t",
            str(START_TIMEOUT_SECONDS),
            "start",
        )
        if result.returncode != 0:
            tail = self.log_file.read_text(errors="replace").strip().splitlines()[-1:] if self.log_file.exists() else []
            raise PostgresError(f"PostgreSQL did not start on port {self.port}: {(tail or [_last_line(result)])[0]}")

    def is_running(self) -> bool:
        if not self.initialized:
            return False
        return self._run("pg_ctl", "-D", str(self.cluster_dir), "status", timeout=30).returncode == 0

    def pid(self) -> int | None:
        pid_file = self.cluster_dir / "postmaster.pid"
        try:
            return int(pid_file.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        if not self.is_running():
            return
        result = self._run("pg_ctl", "-D", str(self.cluster_dir), "-m", "fast", "-w", "-t", "60", "stop")
        if result.returncode != 0:
            raise PostgresError(f"pg_ctl stop failed: {_last_line(result)}")

    def create_database(self, name: str, password: str) -> bool:
        """Create `name` unless it exists; returns whether it was created."""
        # Typed as Any: psycopg2 ships no type information (and no stubs are installed).
        psycopg2: Any = importlib.import_module("psycopg2")
        sql: Any = importlib.import_module("psycopg2.sql")

        deadline = time.monotonic() + 30
        while True:
            try:
                connection = psycopg2.connect(
                    host="127.0.0.1", port=self.port, user=SUPERUSER, password=password, dbname="postgres"
                )
                break
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cursor.fetchone():
                    return False
                cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                return True
        finally:
            connection.close()


def _last_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = (result.stderr or result.stdout or "").strip().splitlines()
    return lines[-1] if lines else f"exit status {result.returncode}"
