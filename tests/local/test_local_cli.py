"""`mlflow-platform demo` and `local up|status|down` as a user runs them (SQLite, the default).

One test, because each `up` costs a server start: the demo brings a fresh platform up; a second `up`
says it already runs; `status` names the running processes; a run, an artifact and a user are
created; `down` then `up` again, and all of them are still there. `up` and `status` run in an
80-column terminal, with a data dir whose path is longer than a line: the path, the tracking URI
and the secret id each come out whole on a line of their own.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

from mlflow_platform.local.platform import ADMIN_SECRET_ID, LocalPlatform
from tests.conftest import free_port
from tests.server.helpers import GET_USER, SEARCH_EXPERIMENTS, create_user, get, mlflow_client

CLI = str(Path(sys.executable).with_name("mlflow-platform"))


def _cli(
    *args: str, environ: dict[str, str], columns: int = 80, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """The command in a terminal `columns` wide (rich lays its output out for the width in COLUMNS)."""
    return subprocess.run(
        [CLI, *args],
        env={**environ, "COLUMNS": str(columns)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _lines(output: str) -> list[str]:
    return [line.strip() for line in output.splitlines()]


def test_demo_then_down_and_up_keeps_runs_users_and_artifacts(tmp_path: Path) -> None:
    data_dir = tmp_path / "a-data-directory-whose-path-is-longer-than-an-eighty-column-terminal" / "data"
    config_dir = tmp_path / "config"
    assert len(str(data_dir)) > 80
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AWS_"))}
    environ.update({"MLFLOW_PLATFORM_DATA_DIR": str(data_dir), "MLFLOW_PLATFORM_CONFIG_DIR": str(config_dir)})
    port, moto_port = free_port(), free_port()
    tracking_uri, moto_endpoint = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{moto_port}"
    platform = LocalPlatform(data_dir)
    try:
        demo = _cli(
            "demo",
            "--samples",
            "20",
            "--features",
            "100",
            "--port",
            str(port),
            "--moto-port",
            str(moto_port),
            environ=environ,
            columns=200,  # the demo's own report prints S3 paths inside sentences
        )
        assert demo.returncode == 0, demo.stdout + demo.stderr
        assert "The local platform is up." in demo.stdout
        assert tracking_uri in _lines(demo.stdout)
        # The whole path a notebook and a scoring pipeline take: tracked fit, evaluation, S3 path, scoring.
        assert "r2_score" in demo.stdout
        assert "Model S3 path (get_model_s3_path): s3://mlflow-platform-local-artifacts/" in demo.stdout
        assert "Scored 4 held-out samples from s3://mlflow-platform-local-artifacts/" in demo.stdout
        profile = json.loads((config_dir / "profiles" / "local.json").read_text())
        assert profile["tracking_uri"] == f"http://127.0.0.1:{port}"
        assert profile["aws_endpoint_url"] == f"http://127.0.0.1:{moto_port}"
        assert (config_dir / "active").read_text().strip() == "local"

        again = _cli("local", "up", environ=environ)
        assert again.returncode == 0, again.stderr
        assert "The local platform was already running." in again.stdout
        lines = _lines(again.stdout)
        for value in (tracking_uri, str(data_dir), ADMIN_SECRET_ID, moto_endpoint):
            assert value in lines, f"{value} is not whole on a line of its own:\n{again.stdout}"

        running = _cli("local", "status", environ=environ)
        assert running.returncode == 0, running.stderr
        lines = _lines(running.stdout)
        assert str(data_dir) in lines, running.stdout
        assert lines[lines.index(tracking_uri) - 1] == "tracking URI (healthy):", running.stdout
        rows = {line.split()[0]: line.split() for line in lines if line.startswith(("moto ", "server "))}
        assert rows["server"][2:] == [str(port), "running"], running.stdout
        assert rows["moto"][2:] == [str(moto_port), "running"], running.stdout
        # The pid shown is the live tracking server's.
        assert b"mlflow" in Path(f"/proc/{rows['server'][1]}/cmdline").read_bytes()
        assert "database: sqlite" in lines
        assert all(len(line) <= 80 for line in running.stdout.splitlines() if line.strip() != str(data_dir))

        admin_secret = json.loads(platform.read_secret(ADMIN_SECRET_ID))
        admin = (admin_secret["username"], admin_secret["password"])
        base = tracking_uri
        artifact = tmp_path / "model-card.md"
        artifact.write_text("# a model")
        with mlflow_client(base, *admin) as client:
            experiment_id = client.create_experiment("local-cli")
            run = client.create_run(experiment_id)
            client.log_param(run.info.run_id, "alpha", "0.5")
            client.log_artifact(run.info.run_id, str(artifact))
        user_password = secrets.token_urlsafe(16)
        create_user(base, admin, "analyst", user_password)

        down = _cli("local", "down", environ=environ)
        assert down.returncode == 0, down.stderr
        assert not _listening(port)
        assert not _listening(moto_port)
        status = _cli("local", "status", environ=environ)
        assert "Not running" in status.stdout
        lines = _lines(status.stdout)
        assert str(data_dir) in lines, status.stdout
        assert lines[lines.index(tracking_uri) - 1] == "tracking URI (not healthy):", status.stdout

        up = _cli("local", "up", environ=environ)
        assert up.returncode == 0, up.stdout + up.stderr
        assert "The local platform is up." in up.stdout
        assert tracking_uri in _lines(up.stdout)  # the ports are remembered in the data dir
        with mlflow_client(base, *admin) as client:
            runs = client.search_runs([experiment_id])
            assert [r.info.run_id for r in runs] == [run.info.run_id]
            assert runs[0].data.params == {"alpha": "0.5"}
            downloaded = client.download_artifacts(run.info.run_id, "model-card.md", str(tmp_path / "dl"))
            assert Path(downloaded).read_text() == "# a model"
        assert get(base, f"{GET_USER}?username=analyst", auth=admin).status_code == 200
        assert get(base, SEARCH_EXPERIMENTS, auth=("analyst", user_password)).status_code == 200
    finally:
        final = _cli("local", "down", environ=environ)
        platform.down()  # a safety net should the CLI have failed
    assert final.returncode == 0


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
