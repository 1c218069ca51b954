"""The server of the local platform (PostgreSQL, moto S3, the real entrypoint): auth, artifacts, restarts.

The restart tests come last in this module: each costs a server start (~20 s on 2 cores).
"""

from __future__ import annotations

import json
import secrets
import uuid
from pathlib import Path

from tests.conftest import LocalPlatformHandle
from tests.server.helpers import GET_USER, SEARCH_EXPERIMENTS, create_user, get, mlflow_client


def test_no_credentials_gets_401(local_platform: LocalPlatformHandle) -> None:
    assert get(local_platform.tracking_uri, SEARCH_EXPERIMENTS).status_code == 401


def test_wrong_password_gets_401(local_platform: LocalPlatformHandle) -> None:
    response = get(
        local_platform.tracking_uri, SEARCH_EXPERIMENTS, auth=(local_platform.admin_username, "wrong-password-123")
    )
    assert response.status_code == 401


def test_the_secrets_credentials_get_200(local_platform: LocalPlatformHandle) -> None:
    auth = (local_platform.admin_username, local_platform.admin_password)
    response = get(local_platform.tracking_uri, SEARCH_EXPERIMENTS, auth=auth)
    assert response.status_code == 200, response.text
    assert "experiments" in response.json()


def test_the_published_client_config_leads_a_client_to_this_server(local_platform: LocalPlatformHandle) -> None:
    """What a notebook does with the SSM parameter alone: sign in to the tracking URI it names with the
    identity it says (no secret read: it names none), and reach the bucket it names. The active profile
    is the same."""
    import requests

    from toolkit.aws import client_for
    from toolkit.aws_auth import AwsKey, sign, target_for
    from toolkit.client_config import ClientConfig, ssm_parameter_name
    from toolkit.profiles import active_profile_name, load_profile

    raw = local_platform.aws_client("ssm").get_parameter(Name=ssm_parameter_name("local"))["Parameter"]["Value"]
    published = ClientConfig.parse(raw)
    assert published.auth == "aws-iam"
    assert published.credentials_secret_id is None
    assert published.emulator_access_key_id
    assert published.emulator_secret_access_key
    key = AwsKey(published.emulator_access_key_id, published.emulator_secret_access_key.get_secret_value())
    for token, expected in (
        (sign(key, target_for(published)), 200),
        (sign(AwsKey("AKIANOTAKEY", "x"), target_for(published)), 401),
    ):
        headers = {"Authorization": f"Bearer {token}"}
        response = requests.get(published.tracking_uri + SEARCH_EXPERIMENTS, headers=headers, timeout=30)
        assert response.status_code == expected, response.text
    client_for("s3", published).head_bucket(Bucket=published.artifact_bucket)
    assert active_profile_name() == "local"
    assert load_profile("local") == published


def test_run_artifacts_land_in_the_bucket_under_the_expected_key(
    local_platform: LocalPlatformHandle, tmp_path: Path
) -> None:
    artifact = tmp_path / "hello.txt"
    artifact.write_text("hello from the test")
    with mlflow_client(
        local_platform.tracking_uri, local_platform.admin_username, local_platform.admin_password
    ) as client:
        experiment_id = client.create_experiment(f"artifacts-{uuid.uuid4().hex[:8]}")
        run = client.create_run(experiment_id)
        client.log_artifact(run.info.run_id, str(artifact), artifact_path="notes")
        assert run.info.artifact_uri == f"mlflow-artifacts:/{experiment_id}/{run.info.run_id}/artifacts"
    key = f"{experiment_id}/{run.info.run_id}/artifacts/notes/hello.txt"
    body = local_platform.aws_client("s3").get_object(Bucket=local_platform.bucket, Key=key)["Body"].read()
    assert body == b"hello from the test"


def test_experiments_runs_users_and_artifacts_survive_a_server_restart(
    local_platform: LocalPlatformHandle, tmp_path: Path
) -> None:
    base = local_platform.tracking_uri
    admin = (local_platform.admin_username, local_platform.admin_password)
    name = f"restart-{uuid.uuid4().hex[:8]}"
    user, user_password = f"scientist-{uuid.uuid4().hex[:6]}", secrets.token_urlsafe(16)
    artifact = tmp_path / "weights.txt"
    artifact.write_text("0.1 0.2 0.3")
    with mlflow_client(base, *admin) as client:
        experiment_id = client.create_experiment(name)
        run = client.create_run(experiment_id)
        client.log_metric(run.info.run_id, "rmse", 4.2)
        client.log_artifact(run.info.run_id, str(artifact))
        client.set_terminated(run.info.run_id)
    create_user(base, admin, user, user_password)

    local_platform.restart_server()

    with mlflow_client(base, *admin) as client:
        experiment = client.get_experiment_by_name(name)
        assert experiment is not None
        assert experiment.experiment_id == experiment_id
        runs = client.search_runs([experiment_id])
        assert [r.info.run_id for r in runs] == [run.info.run_id]
        assert runs[0].data.metrics["rmse"] == 4.2
        downloaded = client.download_artifacts(run.info.run_id, "weights.txt", str(tmp_path / "download"))
        assert Path(downloaded).read_text() == "0.1 0.2 0.3"
    assert get(base, f"{GET_USER}?username={user}", auth=admin).json()["user"]["username"] == user
    assert get(base, SEARCH_EXPERIMENTS, auth=(user, user_password)).status_code == 200


def test_rotated_admin_password_takes_effect_at_the_next_start(local_platform: LocalPlatformHandle) -> None:
    base = local_platform.tracking_uri
    username, old_password = local_platform.admin_username, local_platform.admin_password
    new_password = "rotated-" + secrets.token_urlsafe(16)
    local_platform.aws_client("secretsmanager").put_secret_value(
        SecretId=local_platform.admin_secret_id,
        SecretString=json.dumps({"username": username, "password": new_password}),
    )
    # Until the restart the running server still knows the old password only (as an ECS task would).
    assert get(base, SEARCH_EXPERIMENTS, auth=(username, old_password)).status_code == 200
    assert get(base, SEARCH_EXPERIMENTS, auth=(username, new_password)).status_code == 401

    local_platform.restart_server()

    assert get(base, SEARCH_EXPERIMENTS, auth=(username, new_password)).status_code == 200
    assert get(base, SEARCH_EXPERIMENTS, auth=(username, old_password)).status_code == 401


def test_secrets_stay_off_the_command_line_and_out_of_mlflows_environment(local_platform: LocalPlatformHandle) -> None:
    """`ps` shows every user the command lines: the database password must not be there; and the raw
    JSON secrets are dropped before `mlflow server` replaces the entrypoint."""
    from mlflow_platform.local.platform import DATABASE_SECRET_ID
    from mlflow_platform.server import contract as server_env

    pid = int((local_platform.data_dir / "run" / "server.pid").read_text())
    database_password = json.loads(local_platform.platform.read_secret(DATABASE_SECRET_ID))["password"]
    command_line = Path(f"/proc/{pid}/cmdline").read_bytes().decode()
    assert "mlflow\0server\0--app-name\0basic-auth" in command_line
    assert database_password not in command_line
    assert local_platform.admin_password not in command_line
    environment = dict(
        entry.split("=", 1) for entry in Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0") if "=" in entry
    )
    assert server_env.DATABASE_SECRET not in environment
    assert server_env.ADMIN_SECRET not in environment
    auth_ini = Path(environment["MLFLOW_AUTH_CONFIG_PATH"])
    assert auth_ini.parent == local_platform.platform.auth_config_dir
    assert auth_ini.stat().st_mode & 0o777 == 0o600


def test_wrong_database_password_fails_fast_with_one_line(local_platform: LocalPlatformHandle) -> None:
    import subprocess
    import sys

    from mlflow_platform.local.platform import DATABASE_SECRET_ID
    from mlflow_platform.server import contract as server_env

    wrong = "not-the-database-password-" + secrets.token_hex(4)
    database = {**json.loads(local_platform.platform.read_secret(DATABASE_SECRET_ID)), "password": wrong}
    environment = {**local_platform.platform.server_environment(), server_env.DATABASE_SECRET: json.dumps(database)}
    result = subprocess.run(
        [sys.executable, "-m", "mlflow_platform.server"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("mlflow-platform server: the database at 127.0.0.1:")
    assert "password authentication failed" in last
    assert wrong not in result.stderr + result.stdout
