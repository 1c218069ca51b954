"""`ClientConfig`, profiles and the resolution order: argument > environment > profile > SSM."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from toolkit.client_config import ClientConfig, ssm_parameter_name
from toolkit.credentials import resolve_credentials
from toolkit.errors import ConfigError
from toolkit.profiles import active_profile_name, load_profile, save_profile, use_profile
from toolkit.resolve import resolve_client_config

CLIENT: dict[str, Any] = {
    "stack": "dev",
    "tracking_uri": "https://mlflow.example.org",
    "artifact_store_uri": "s3://mlflow-dev-artifacts",
    "region": "eu-west-1",
    "credentials_secret_id": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:mlflow-dev-admin-AbCdEf",
    "mlflow_version": "3.17.2",
}


def test_parse_rejects_secrets_and_wrong_schemes() -> None:
    with pytest.raises(ConfigError) as caught:
        ClientConfig.parse({**CLIENT, "tracking_uri": "https://admin:hunter2@mlflow.example.org"})
    assert caught.value.problems[0].startswith("tracking_uri:")
    assert "without user:password" in caught.value.problems[0]
    with pytest.raises(ConfigError) as caught:
        ClientConfig.parse({**CLIENT, "artifact_store_uri": "/tmp/artifacts", "password": "x"})
    keys = sorted(p.split(":")[0] for p in caught.value.problems)
    assert keys == ["artifact_store_uri", "password"]


def test_round_trip_stack_outputs_to_profile_to_toolkit_defaults() -> None:
    """What `pulumi stack output --json` prints becomes, through a profile file, what the toolkit uses."""
    outputs = json.loads(json.dumps({"client_config": CLIENT, "alb_dns_name": "internal-x.elb.amazonaws.com"}))
    config = ClientConfig.from_stack_outputs(outputs)
    path = save_profile(config)
    assert path.name == "dev.json"
    assert json.loads(path.read_text()) == {
        **CLIENT,
        "aws_endpoint_url": None,
        "model_reader_policy_arn": None,
        "auth": "basic",
        "emulator_access_key_id": None,
        "emulator_secret_access_key": None,
    }
    assert active_profile_name() == "dev"
    resolved = resolve_client_config()
    assert resolved.config == config
    assert set(resolved.sources.values()) == {"profile dev"}


def test_outputs_without_client_config_say_so() -> None:
    with pytest.raises(ConfigError, match="client_config: not among the outputs"):
        ClientConfig.from_stack_outputs({"url": "x"})


def test_argument_beats_env_beats_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    save_profile(ClientConfig.parse(CLIENT))
    # The profile's own server, spelled otherwise: the profile still describes it.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "HTTPS://MLflow.example.org:443/")
    monkeypatch.setenv("MLFLOW_PLATFORM_REGION", "us-east-1")
    resolved = resolve_client_config({"region": "ap-southeast-2"})
    assert resolved.config.region == "ap-southeast-2"
    assert resolved.sources["region"] == "argument"
    assert resolved.sources["tracking_uri"] == "env MLFLOW_TRACKING_URI"
    assert resolved.config.artifact_store_uri == CLIENT["artifact_store_uri"]
    assert resolved.sources["artifact_store_uri"] == "profile dev"
    # Our own variable is more specific than MLflow's and wins over it.
    monkeypatch.setenv("MLFLOW_PLATFORM_TRACKING_URI", "https://mlflow.example.org/")
    assert resolve_client_config().sources["tracking_uri"] == "env MLFLOW_PLATFORM_TRACKING_URI"


def test_profile_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    save_profile(ClientConfig.parse(CLIENT))
    save_profile(
        ClientConfig.parse({**CLIENT, "stack": "prod", "tracking_uri": "https://prod.example.org"}), activate=False
    )
    assert resolve_client_config().config.stack == "dev"
    assert resolve_client_config(stack="prod").config.tracking_uri == "https://prod.example.org"
    monkeypatch.setenv("MLFLOW_PLATFORM_PROFILE", "prod")
    assert resolve_client_config().config.stack == "prod"
    monkeypatch.delenv("MLFLOW_PLATFORM_PROFILE")
    use_profile("prod")
    assert resolve_client_config().config.stack == "prod"


def test_nothing_configured_says_which_command_fixes_it() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_client_config()
    message = str(caught.value)
    assert "tracking_uri: not set" in message
    assert "mlflow-platform config pull --stack NAME" in message


def test_unknown_profile_lists_the_known_ones(isolated_config_dir: Path) -> None:
    save_profile(ClientConfig.parse(CLIENT))
    with pytest.raises(ConfigError, match=r"staging: no such profile \(known: dev\)"):
        load_profile("staging")
    with pytest.raises(ConfigError, match="no such profile"):
        use_profile("staging")
    assert active_profile_name() == "dev"


def test_ssm_is_the_last_resort_for_a_named_stack(aws_env: str) -> None:
    published = {**CLIENT, "stack": "ssm-only", "tracking_uri": "https://published.example.org"}
    boto3.client("ssm").put_parameter(
        Name=ssm_parameter_name("ssm-only"), Value=json.dumps(published), Type="String", Overwrite=True
    )
    resolved = resolve_client_config({"region": "eu-west-1"}, stack="ssm-only")
    assert resolved.config.tracking_uri == "https://published.example.org"
    assert resolved.sources["region"] == "argument"
    assert resolved.sources["tracking_uri"] == "SSM /mlflow-platform/ssm-only/client-config"


def test_credentials_env_first_then_the_stacks_secret(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = boto3.client("secretsmanager").create_secret(
        Name="creds-test-admin", SecretString=json.dumps({"username": "admin", "password": "s3cr3t-password"})
    )
    config = ClientConfig.parse({**CLIENT, "credentials_secret_id": secret["ARN"], "aws_endpoint_url": aws_env})
    credentials = resolve_credentials(config)
    assert (credentials.username, credentials.password) == ("admin", "s3cr3t-password")
    assert "s3cr3t-password" not in repr(credentials)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "from-env")
    assert resolve_credentials(config).username == "alice"
