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


def test_credentials_from_the_secret_reach_mlflow_and_are_never_printed(
    tracking: Callable[..., Any],
    local_platform: LocalPlatformHandle,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging
    import os

    import mlflow

    # Ours and MLflow's loggers at DEBUG. (botocore's own DEBUG logging prints response bodies, secrets
    # included, by design; it is off unless someone turns it on.)
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="toolkit")
    caplog.set_level(logging.DEBUG, logger="mlflow")
    session = tracking(tracking_server_host=local_platform.tracking_uri, big_schema=True)
    assert session.tracking_uri == local_platform.tracking_uri
    assert mlflow.get_tracking_uri() == local_platform.tracking_uri
    assert session.credentials_source == f"Secrets Manager {local_platform.admin_secret_id}"
    assert os.environ["MLFLOW_TRACKING_USERNAME"] == local_platform.admin_username
    assert os.environ["MLFLOW_S3_ENDPOINT_URL"] == local_platform.moto_endpoint
    experiment = mlflow.get_experiment_by_name(session.experiment_name)
    assert experiment is not None
    assert experiment.experiment_id == session.experiment_id
    assert "Secrets Manager" in repr(session)

    password = local_platform.admin_password
    captured = capfd.readouterr()
    assert password not in captured.out + captured.err
    assert password not in caplog.text
    assert password not in repr(session)


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
    tracking()
    assert os.environ["AWS_ACCESS_KEY_ID"] == "local"
    S3ArtifactRepository(f"s3://{local_platform.bucket}").list_artifacts()  # type: ignore[no-untyped-call]
