"""`mlflow_init`: where the host, the credentials and the experiment come from; what it never prints."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import LocalPlatformHandle


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("mlflow.example.org", "https://mlflow.example.org"),
        ("mlflow.example.org:8443/", "https://mlflow.example.org:8443"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("https://mlflow.example.org/", "https://mlflow.example.org"),
    ],
)
def test_bare_host_means_https(given: str, expected: str) -> None:
    from toolkit.init import normalize_tracking_uri

    assert normalize_tracking_uri(given) == expected


@pytest.mark.parametrize("bad", ["ftp://mlflow.example.org", "https://user:pw@mlflow.example.org", "  "])
def test_bad_hosts_are_refused(bad: str) -> None:
    from toolkit.init import normalize_tracking_uri

    with pytest.raises(ValueError, match="tracking_server_host"):
        normalize_tracking_uri(bad)


def test_import_toolkit_is_fast_and_light() -> None:
    code = (
        "import sys, time; t = time.perf_counter(); import toolkit; elapsed = time.perf_counter() - t; "
        "heavy = [m for m in ('mlflow', 'sklearn', 'pandas', 'pulumi', 'boto3') if m in sys.modules]; "
        "print(elapsed, heavy); "
        "assert {'mlflow_init', 'mlflow_track_regressor', 'mlflow_track_classifier', 'get_model_s3_path', "
        "'load_model_schema', 'check_schema'} <= set(dir(toolkit))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    elapsed, heavy = result.stdout.split(" ", 1)
    assert heavy.strip() == "[]"
    assert float(elapsed) < 0.5


def _mlflow_user(tracking_uri: str) -> str:
    """Who MLflow's own client is signed in as, asked the way MLflow asks (its host creds and auth)."""
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    creds = get_default_host_creds(tracking_uri)  # type: ignore[no-untyped-call]
    response = http_request(creds, "/api/2.0/mlflow/users/current", "GET")  # type: ignore[no-untyped-call]
    assert response.status_code == 200, response.text
    return str(response.json()["user"]["username"])


def test_the_local_platform_signs_in_with_the_aws_identity_and_reads_no_secret(
    tracking: Callable[..., Any],
    local_platform: LocalPlatformHandle,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging
    import os

    import mlflow

    # Ours and MLflow's loggers at DEBUG. (botocore's own DEBUG logging prints request headers by
    # design; it is off unless someone turns it on.)
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="toolkit")
    caplog.set_level(logging.DEBUG, logger="mlflow")
    secrets = local_platform.aws_client("secretsmanager")
    admin_secret = secrets.get_secret_value(SecretId=local_platform.admin_secret_id)["SecretString"]
    # No scientist path reads the admin secret: with it gone, signing in works all the same.
    secrets.delete_secret(SecretId=local_platform.admin_secret_id, ForceDeleteWithoutRecovery=True)
    try:
        session = tracking(tracking_server_host=local_platform.tracking_uri, big_schema=True)
        assert _mlflow_user(local_platform.tracking_uri) == local_platform.identity.username
    finally:
        secrets.create_secret(Name=local_platform.admin_secret_id, SecretString=admin_secret)
    assert session.tracking_uri == local_platform.tracking_uri
    assert mlflow.get_tracking_uri() == local_platform.tracking_uri
    assert session.credentials_source == "AWS identity (env AWS_ACCESS_KEY_ID)"
    assert os.environ["MLFLOW_TRACKING_AUTH"] == "aws-iam"
    assert "MLFLOW_TRACKING_USERNAME" not in os.environ
    assert os.environ["MLFLOW_S3_ENDPOINT_URL"] == local_platform.moto_endpoint
    experiment = mlflow.get_experiment_by_name(session.experiment_name)
    assert experiment is not None
    assert experiment.experiment_id == session.experiment_id

    secret_key = local_platform.identity.secret_access_key
    captured = capfd.readouterr()
    assert secret_key not in captured.out + captured.err
    assert secret_key not in caplog.text
    assert secret_key not in repr(session)


def test_switching_the_aws_key_between_calls_switches_the_mlflow_user(
    tracking: Callable[..., Any], local_platform: LocalPlatformHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uuid

    from mlflow_platform.local.identity import create_iam_user

    iam = local_platform.aws_client("iam")
    for name in ("alice", "bob"):
        key = create_iam_user(iam, f"{name}-{uuid.uuid4().hex[:8]}")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key.access_key_id)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key.secret_access_key)
        tracking(experiment_name=f"switch-{key.username}")
        assert _mlflow_user(local_platform.tracking_uri) == key.username


def test_mlflow_credentials_in_the_environment_win(
    tracking: Callable[..., Any], local_platform: LocalPlatformHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Break-glass and service accounts: MLflow's own variables beat the stack's identity sign-in."""
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", local_platform.admin_username)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", local_platform.admin_password)
    session = tracking()
    assert session.credentials_source == "env MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD"
    assert _mlflow_user(local_platform.tracking_uri) == local_platform.admin_username


def test_wrong_password_is_a_clear_error(
    tracking: Callable[..., Any], local_platform: LocalPlatformHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    from toolkit import TrackingServerError

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", local_platform.admin_username)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "not-the-password")
    with pytest.raises(TrackingServerError, match=r"refused the credentials from env MLFLOW_TRACKING_USERNAME"):
        tracking()


def test_big_schema_configures_autolog_without_per_column_records(tracking: Callable[..., Any]) -> None:
    from mlflow.utils.autologging_utils import get_autologging_config

    tracking(big_schema=True)
    for key in ("log_model_signatures", "log_input_examples", "log_datasets"):
        assert get_autologging_config("sklearn", key) is False, key  # type: ignore[no-untyped-call]
    tracking(big_schema=False)
    assert get_autologging_config("sklearn", "log_datasets") is True  # type: ignore[no-untyped-call]


def test_local_platform_s3_reads_work_without_any_aws_key(
    tracking: Callable[..., Any], local_platform: LocalPlatformHandle, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    import os

    from mlflow.store.artifact.s3_artifact_repo import S3ArtifactRepository

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    session = tracking()
    # The profile's emulator key: the same identity signs in to the server and reads S3.
    assert session.credentials_source == "AWS identity (the emulator key of profile local)"
    assert os.environ["AWS_ACCESS_KEY_ID"] == local_platform.identity.access_key_id
    assert _mlflow_user(local_platform.tracking_uri) == local_platform.identity.username
    S3ArtifactRepository(f"s3://{local_platform.bucket}").list_artifacts()  # type: ignore[no-untyped-call]
