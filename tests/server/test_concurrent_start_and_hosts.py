"""Two entrypoints started at once against one empty PostgreSQL database; then the Host header check.

Both servers get the settings an ECS task gets behind a load balancer: `ALLOWED_HOSTS` lists the
domain and the load balancer's DNS name. The Host header tests reuse them (a server start costs ~20 s).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from mlflow_platform.local.platform import DATABASE_SECRET_ID
from mlflow_platform.server import contract as server_env
from tests.conftest import LocalPlatformHandle, free_port
from tests.server.helpers import SEARCH_EXPERIMENTS, get

DOMAIN = "mlflow.example.org"
LOAD_BALANCER = "internal-mlflow-alb-1234567890.eu-west-1.elb.amazonaws.com"
START_TIMEOUT_SECONDS = 240


@dataclass(frozen=True)
class Server:
    base: str
    port: int
    log: Path


@pytest.fixture(scope="module")
def two_servers(
    local_platform: LocalPlatformHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[Server]]:
    platform = local_platform.platform
    database = json.loads(platform.read_secret(DATABASE_SECRET_ID))
    database["dbname"] = f"concurrent_{uuid.uuid4().hex[:8]}"
    assert platform.postgres_cluster().create_database(database["dbname"], database["password"])
    logs = tmp_path_factory.mktemp("two-servers")
    environment = platform.server_environment()
    environment.update(
        {
            server_env.DATABASE_SECRET: json.dumps(database),
            server_env.ALLOWED_HOSTS: f"{DOMAIN},{LOAD_BALANCER}",
            server_env.WORKERS: "1",
            # Behind the load balancer's HTTPS listener, as in prod (the local platform says http).
            server_env.PUBLIC_SCHEME: "https",
        }
    )
    servers: list[Server] = []
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for index in range(2):
            port = free_port()
            server = Server(f"http://127.0.0.1:{port}", port, logs / f"server-{index}.log")
            with server.log.open("wb") as log:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "mlflow_platform.server"],
                        env={
                            **environment,
                            server_env.PORT: str(port),
                            server_env.AUTH_CONFIG_DIR: str(logs / f"auth-{index}"),
                        },
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
            servers.append(server)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        for server, process in zip(servers, processes, strict=True):
            while not _healthy(server.base):
                if process.poll() is not None:
                    pytest.fail(f"server on {server.port} exited: {server.log.read_text()[-2000:]}")
                if time.monotonic() > deadline:
                    pytest.fail(f"server on {server.port} not healthy after {START_TIMEOUT_SECONDS} s")
                time.sleep(0.5)
        yield servers
    finally:
        for process in processes:
            _stop_group(process)


def _healthy(base: str) -> bool:
    try:
        return requests.get(base + "/health", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's process group (the CLI, uvicorn and its workers), SIGKILL after 30 s."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)


def test_two_entrypoints_at_once_on_an_empty_database_both_come_up(
    two_servers: list[Server], local_platform: LocalPlatformHandle
) -> None:
    admin = (local_platform.admin_username, local_platform.admin_password)
    for server in two_servers:
        assert get(server.base, SEARCH_EXPERIMENTS, auth=admin).status_code == 200
    logs = [server.log.read_text() for server in two_servers]
    # The advisory lock let exactly one of them create the tables and the admin user.
    assert sum("empty database: creating the MLflow tracking tables" in log for log in logs) == 1
    assert sum("admin user 'admin': created" in log for log in logs) == 1


def test_host_of_the_domain_and_of_the_load_balancer_are_served(
    two_servers: list[Server], local_platform: LocalPlatformHandle
) -> None:
    admin = (local_platform.admin_username, local_platform.admin_password)
    base = two_servers[0].base
    for host in (DOMAIN, LOAD_BALANCER, f"{DOMAIN}:443"):
        response = get(base, SEARCH_EXPERIMENTS, auth=admin, host=host)
        assert response.status_code == 200, (host, response.text)


def test_unlisted_host_is_refused(two_servers: list[Server], local_platform: LocalPlatformHandle) -> None:
    admin = (local_platform.admin_username, local_platform.admin_password)
    for path in (SEARCH_EXPERIMENTS, "/"):
        response = get(two_servers[0].base, path, auth=admin, host="attacker.example.com")
        assert response.status_code == 403
        assert "Invalid Host header" in response.text


def test_private_ip_and_port_as_the_health_check_sends_is_served(
    two_servers: list[Server], local_platform: LocalPlatformHandle
) -> None:
    """The ALB's health check addresses the task by its private IP and port; keep it (and all of the
    API, for whatever path the target group probes) served with the Host check on."""
    admin = (local_platform.admin_username, local_platform.admin_password)
    base = two_servers[0].base
    for host in ("10.0.3.17:5000", "172.31.7.9:5000", "192.168.1.20:5000"):
        assert get(base, "/health", host=host).status_code == 200
        assert get(base, SEARCH_EXPERIMENTS, auth=admin, host=host).status_code == 200


def test_the_ui_on_the_domain_may_post_but_another_origin_may_not(
    two_servers: list[Server], local_platform: LocalPlatformHandle
) -> None:
    """Browsers send an Origin with same-origin POSTs (the UI searches runs with one): MLflow's CORS
    guard must accept the configured names and still refuse other sites."""
    admin = (local_platform.admin_username, local_platform.admin_password)
    url = two_servers[0].base + "/ajax-api/2.0/mlflow/runs/search"
    body = {"experiment_ids": ["0"], "max_results": 1}
    for origin, expected in (
        (f"https://{DOMAIN}", 200),
        (f"https://{LOAD_BALANCER}", 200),
        ("https://attacker.example.com", 403),
        # Behind HTTPS, a page of the domain served over plain HTTP is not the UI.
        (f"http://{DOMAIN}", 403),
    ):
        response = requests.post(url, json=body, auth=admin, headers={"Host": DOMAIN, "Origin": origin}, timeout=30)
        assert response.status_code == expected, (origin, response.text)
