"""`mlflow-platform whoami` against the local platform: the principal, the MLflow user, admin or not."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from mlflow_platform.cli import app
from tests.conftest import LocalPlatformHandle


def test_whoami_names_the_principal_and_the_mlflow_user(local_platform: LocalPlatformHandle) -> None:
    result = CliRunner().invoke(app, ["whoami"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    lines = {line.split("  ", 1)[0]: line.split("  ", 1)[-1].strip() for line in result.output.splitlines()}
    assert lines["AWS principal"] == f"arn:aws:iam::123456789012:user/{local_platform.identity.username}"
    assert lines["MLflow user"] == local_platform.identity.username
    assert lines["admin"] == "no"
    assert local_platform.identity.secret_access_key not in result.output


def test_whoami_says_why_the_server_refuses(
    local_platform: LocalPlatformHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIA" + "Q" * 16)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-key")
    result = CliRunner().invoke(app, ["whoami", "--stack", "local"], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "arn:aws:sts::123456789012:user/moto matches no principal" in " ".join(result.output.split())


def test_whoami_with_the_break_glass_admin(
    local_platform: LocalPlatformHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", local_platform.admin_username)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", local_platform.admin_password)
    result = CliRunner().invoke(app, ["whoami"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "admin            yes" in result.output
    assert local_platform.admin_password not in result.output
