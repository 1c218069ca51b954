"""Request rate of the tracking server under concurrent clients: stock MLflow basic auth vs the platform.

Both servers run on 127.0.0.1 with one worker and a SQLite file, and get the same load: `--clients`
threads, each logging metrics to its own run as fast as the server answers, for `--seconds`.

- stock: `mlflow server --app-name basic-auth` with MLflow's own ini, so every request's password is
  checked against its PBKDF2 hash (MLflow's credential cache is off unless configured); each client
  signs in as its own user with a password;
- platform: the local platform (`mlflow_platform.local.platform.LocalPlatform`, the real entrypoint),
  each client an IAM user of its emulator signing in with its AWS identity: one identity token per
  client, verified with STS once per server process and then served from the server's cache.

Prints both rates side by side and their ratio. Run: `uv run python benchmarks/server_load.py`.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests

START_TIMEOUT_SECONDS = 240.0
LOG_METRIC = "/api/2.0/mlflow/runs/log-metric"
CREATE_USER = "/api/2.0/mlflow/users/create"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server at {url} exited at start (status {process.returncode})")
        try:
            if requests.get(url + "/health", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the server at {url} was not healthy after {START_TIMEOUT_SECONDS:.0f} s")


@dataclass(frozen=True)
class Client:
    """What one load thread sends: its run and how it signs in."""

    run_id: str
    sign: Callable[[requests.Session], None]


def run_load(url: str, clients: list[Client], seconds: float) -> tuple[float, int]:
    """Requests per second over all clients, and the number of failed requests."""
    stop = threading.Event()
    counts = [0] * len(clients)
    failures = [0] * len(clients)

    def work(index: int, client: Client) -> None:
        with requests.Session() as session:
            client.sign(session)
            step = 0
            while not stop.is_set():
                body = {"run_id": client.run_id, "key": "loss", "value": 1.0 / (step + 1), "timestamp": 0, "step": step}
                response = session.post(url + LOG_METRIC, json=body, timeout=60)
                if response.status_code == 200:
                    counts[index] += 1
                else:
                    failures[index] += 1
                step += 1

    threads = [threading.Thread(target=work, args=(i, c), daemon=True) for i, c in enumerate(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(timeout=120)
    elapsed = time.perf_counter() - started
    return sum(counts) / elapsed, sum(failures)


def create_run(url: str, sign: Callable[[requests.Session], None], experiment: str) -> str:
    with requests.Session() as session:
        sign(session)
        response = session.post(url + "/api/2.0/mlflow/experiments/create", json={"name": experiment}, timeout=60)
        response.raise_for_status()
        experiment_id = response.json()["experiment_id"]
        response = session.post(url + "/api/2.0/mlflow/runs/create", json={"experiment_id": experiment_id}, timeout=60)
        response.raise_for_status()
        return str(response.json()["run"]["info"]["run_id"])


def basic(username: str, password: str) -> Callable[[requests.Session], None]:
    def sign(session: requests.Session) -> None:
        session.auth = (username, password)

    return sign


def stock_rate(workdir: Path, clients: int, seconds: float) -> tuple[float, int]:
    """Stock `mlflow server --app-name basic-auth`, MLflow's default auth settings."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    admin_password = secrets.token_urlsafe(18)
    ini = workdir / "basic_auth.ini"
    ini.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{workdir / 'stock-auth.db'}\n"
        "admin_username = admin\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    environment = {
        **os.environ,
        "MLFLOW_AUTH_CONFIG_PATH": str(ini),
        "MLFLOW_AUTH_ADMIN_PASSWORD": admin_password,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(32),
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    command = [
        sys.executable, "-m", "mlflow", "server", "--app-name", "basic-auth",
        "--backend-store-uri", f"sqlite:///{workdir / 'stock.db'}",
        "--artifacts-destination", str(workdir / "stock-artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    with (workdir / "stock.log").open("wb") as log:
        process = subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_healthy(url, process)
        load: list[Client] = []
        for index in range(clients):
            username, password = f"scientist-{index}", secrets.token_urlsafe(18)
            response = requests.post(
                url + CREATE_USER,
                json={"username": username, "password": password},
                auth=("admin", admin_password),
                timeout=60,
            )
            response.raise_for_status()
            sign = basic(username, password)
            load.append(Client(create_run(url, sign, f"stock-{index}"), sign))
        return run_load(url, load, seconds)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def platform_rate(workdir: Path, clients: int, seconds: float) -> tuple[float, int]:
    """The local platform's server, each client an IAM user signing in with its AWS identity."""
    os.environ["MLFLOW_PLATFORM_CONFIG_DIR"] = str(workdir / "config")
    from mlflow_platform.local.identity import create_iam_user
    from mlflow_platform.local.platform import LocalPlatform, LocalPorts
    from toolkit.aws_auth import AwsKey, sign, target_for

    platform = LocalPlatform(workdir / "platform")
    platform.up(postgres=False, ports=LocalPorts(free_port(), free_port(), free_port()))
    try:
        config = platform.client_config()
        target = target_for(config)
        iam = platform.aws_client("iam")
        load: list[Client] = []
        for index in range(clients):
            user = create_iam_user(iam, f"scientist-{index}-{secrets.token_hex(3)}")
            token = sign(AwsKey(user.access_key_id, user.secret_access_key), target)

            def bearer(session: requests.Session, token: str = token) -> None:
                session.headers["Authorization"] = f"Bearer {token}"

            load.append(Client(create_run(platform.tracking_uri, bearer, f"platform-{index}"), bearer))
        return run_load(platform.tracking_uri, load, seconds)
    finally:
        platform.down()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (threads)")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long each server is loaded")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mlflow-server-load-") as folder:
        workdir = Path(folder)
        print(f"{args.clients} clients logging metrics for {args.seconds:.0f} s per server, one worker, SQLite")
        stock, stock_failures = stock_rate(workdir, args.clients, args.seconds)
        ours, our_failures = platform_rate(workdir, args.clients, args.seconds)
    print()
    print(f"{'server':<44} {'requests/s':>11} {'failed':>7}")
    print(f"{'stock MLflow basic auth (password hash each)':<44} {stock:>11.1f} {stock_failures:>7}")
    print(f"{'platform, AWS identity (cached per token)':<44} {ours:>11.1f} {our_failures:>7}")
    print(f"ratio: {ours / stock:.1f}x" if stock > 0 else "ratio: stock served nothing")
    return 0


if __name__ == "__main__":
    sys.exit(main())
