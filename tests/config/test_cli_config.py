"""`mlflow-platform config ...` as a user runs it."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import boto3
import pytest
from typer.testing import CliRunner

from mlflow_platform.cli import app
from toolkit.client_config import ClientConfig, ssm_parameter_name
from toolkit.profiles import active_profile_name, load_profile, save_profile

from .test_client_config import CLIENT

runner = CliRunner()


def test_pull_from_ssm_writes_and_activates_a_profile(aws_env: str) -> None:
    boto3.client("ssm").put_parameter(
        Name=ssm_parameter_name("dev"), Value=json.dumps(CLIENT), Type="String", Overwrite=True
    )
    result = runner.invoke(app, ["config", "pull", "--stack", "dev", "--from-ssm"])
    assert result.exit_code == 0, result.output
    assert "Saved profile dev" in result.output
    assert load_profile("dev").tracking_uri == CLIENT["tracking_uri"]
    assert active_profile_name() == "dev"


def test_pull_without_aws_credentials_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    result = runner.invoke(app, ["config", "pull", "--stack", "dev", "--from-ssm", "--region", "eu-west-1"])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "no AWS credentials found; set AWS_PROFILE" in result.output
    assert "Traceback" not in result.output


def test_pull_without_the_pulumi_cli_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    result = runner.invoke(app, ["config", "pull", "--stack", "dev"])
    assert result.exit_code == 1
    assert "Pulumi CLI is not on PATH" in result.output
    assert "--from-ssm" in result.output


def _fake_pulumi(folder: Path, stdout: str, exit_code: int = 0) -> None:
    """Stands in for the Pulumi CLI, which cannot be installed here: prints what `stack output` would."""
    script = folder / "pulumi"
    (folder / "out.json").write_text(stdout)
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$@" > "{folder}/args"\n'
        f'cat "{folder}/out.json"\n'
        f"[ {exit_code} -eq 0 ] || echo 'error: no stack named dev found' >&2\n"
        f"exit {exit_code}\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def test_pull_from_pulumi_stack_outputs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _fake_pulumi(tmp_path, json.dumps({"client_config": CLIENT, "other": 1}))
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    result = runner.invoke(app, ["config", "pull", "--stack", "dev"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "args").read_text().split() == ["stack", "output", "--json", "--stack", "dev"]
    assert load_profile("dev").artifact_store_uri == CLIENT["artifact_store_uri"]


def test_pull_reports_pulumis_own_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _fake_pulumi(tmp_path, "", exit_code=255)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    result = runner.invoke(app, ["config", "pull", "--stack", "dev"])
    assert result.exit_code == 1
    assert "error: no stack named dev found" in result.output


def _lines(output: str) -> list[str]:
    return [line.strip() for line in output.splitlines()]


def test_show_never_prints_a_secret(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    boto3.client("ssm").put_parameter(
        Name=ssm_parameter_name("dev"), Value=json.dumps(CLIENT), Type="String", Overwrite=True
    )
    assert runner.invoke(app, ["config", "pull", "--stack", "dev", "--from-ssm"]).exit_code == 0
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "very-secret-password")
    result = runner.invoke(app, ["config", "show"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert "very-secret-password" not in result.output
    assert "alice" not in result.output
    assert "credentials: (hidden), from env MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD" in _lines(
        result.output
    )


# What a deployed stack publishes: its ids are longer than an 80-column line.
LONG = {
    **CLIENT,
    "tracking_uri": "https://internal-mlflow-lb-alb-1234567890.eu-west-1.elb.amazonaws.com",
    "artifact_store_uri": "s3://mlflow-storage-artifacts-0a1b2c3d4e5f60718293a4b5c6d7e8f9",
    "credentials_secret_id": (
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:mlflow-platform/dev/mlflow-credentials-admin-"
        "20250101000000000000000001-AbCdEf"
    ),
}


def test_show_at_80_columns_prints_each_long_value_whole_on_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    save_profile(ClientConfig.parse(LONG))
    monkeypatch.setenv("MLFLOW_PLATFORM_REGION", "us-east-1")
    result = runner.invoke(app, ["config", "show"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = _lines(result.output)
    for field in ("tracking_uri", "artifact_store_uri", "credentials_secret_id"):
        assert LONG[field] in lines, f"{field} is not whole on a line of its own:\n{result.output}"
        # ... under a line naming the field and where its value comes from.
        assert lines[lines.index(LONG[field]) - 1] == f"{field} (from profile dev):"
    # The short fields stay in the table, one row each: field, value, source.
    rows = {cells[0]: cells[1:] for cells in (re.split(r"\s{2,}", line) for line in lines)}
    assert rows["stack"] == ["dev", "profile dev"]
    assert rows["mlflow_version"] == [LONG["mlflow_version"], "profile dev"]
    assert rows["aws_endpoint_url"] == ["(not set)", "default"]
    # A long source moves its field out of the table too, the value still whole.
    assert lines[lines.index("us-east-1") - 1] == "region (from env MLFLOW_PLATFORM_REGION):"
    assert "credentials: (hidden), from the Secrets Manager secret credentials_secret_id" in lines
    assert all(len(line) <= 80 for line in result.output.splitlines() if line.strip() not in LONG.values())


def test_list_at_80_columns_marks_the_active_profile_and_prints_the_folder_whole(
    isolated_config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = isolated_config_dir / "a-config-directory-whose-path-is-longer-than-an-eighty-column-terminal"
    assert len(str(folder / "profiles")) > 80
    monkeypatch.setenv("MLFLOW_PLATFORM_CONFIG_DIR", str(folder))
    empty = runner.invoke(app, ["config", "list"], env={"COLUMNS": "80"})
    assert empty.exit_code == 0, empty.output
    assert str(folder / "profiles") in _lines(empty.output), empty.output
    assert "`mlflow-platform config pull --stack NAME`" in empty.output

    save_profile(ClientConfig.parse(LONG))
    save_profile(ClientConfig.parse({**LONG, "stack": "prod"}), activate=False)
    result = runner.invoke(app, ["config", "list"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert str(folder / "profiles") in _lines(result.output), result.output
    assert [line for line in lines if line.endswith((" dev", " prod"))] == ["* dev", "  prod"]


def test_use_switches_and_refuses_unknown_profiles(aws_env: str) -> None:
    for stack in ("dev", "prod"):
        boto3.client("ssm").put_parameter(
            Name=ssm_parameter_name(stack), Value=json.dumps({**CLIENT, "stack": stack}), Type="String", Overwrite=True
        )
        assert runner.invoke(app, ["config", "pull", "--stack", stack, "--from-ssm"]).exit_code == 0
    assert active_profile_name() == "prod"
    assert runner.invoke(app, ["config", "use", "dev"]).exit_code == 0
    assert active_profile_name() == "dev"
    result = runner.invoke(app, ["config", "use", "staging"])
    assert result.exit_code == 1
    assert "staging: no such profile (known: dev, prod)" in result.output
