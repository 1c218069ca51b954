"""`mlflow-platform demo` and `local up|status|down` as a user runs them (SQLite, the default).

One test, because each `up` costs a server start: the demo brings a fresh platform up; a second `up`
says it already runs; a run, an artifact and a user are created; `down` then `up` again, and all of
them are still there.
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


def _cli(*args: str, environ: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([CLI, *args], env=environ, capture_output=True, text=True, timeout=timeout, check=False)
    return result


def test_demo_then_down_and_up_keeps_runs_users_and_artifacts(tmp_path: Path) -> None:
    data_dir, config_dir = tmp_path / "data", tmp_path / "config"
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AWS_"))}
    environ.update({"MLFLOW_PLATFORM_DATA_DIR": str(data_dir), "MLFLOW_PLATFORM_CONFIG_DIR": str(config_dir)})
    environ["COLUMNS"] = "200"  # rich wraps at the terminal width; keep lines whole for the asserts
    port, moto_port = free_port(), free_port()
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
        )
        assert demo.returncode == 0, demo.stdout + demo.stderr
        assert f"The local platform is up: http://127.0.0.1:{port}" in demo.stdout
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
        assert "already running" in again.stdout

        admin_secret = json.loads(platform.read_secret(ADMIN_SECRET_ID))
        admin = (admin_secret["username"], admin_secret["password"])
        base = f"http://127.0.0.1:{port}"
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

        up = _cli("local", "up", environ=environ)
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"http://127.0.0.1:{port}" in up.stdout  # the ports are remembered in the data dir
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
