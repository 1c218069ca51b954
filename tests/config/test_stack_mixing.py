"""A tracking URI of one server never takes another stack's artifact store, region, secret or endpoint.

The case: `MLFLOW_TRACKING_URI` names one server (set by a notebook template, a CI job, a colleague's
shell), while the active profile is another stack's. The profile describes its own server only, so
none of its stack-bound values are used; what is then missing fails, naming the profile, the URI in
use and what provides the values. Without this, `get_model_s3_path` returned paths in the profile's
bucket for models tracked on the other server.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from toolkit.client_config import ClientConfig, ssm_parameter_name
from toolkit.errors import ConfigError
from toolkit.models import mlflow_artifacts_to_s3
from toolkit.profiles import save_profile
from toolkit.resolve import STACK_BOUND_FIELDS, resolve_client_config, same_server

STAGING: dict[str, Any] = {
    "stack": "staging",
    "tracking_uri": "https://mlflow-staging.example.org",
    "artifact_store_uri": "s3://mlflow-staging-artifacts",
    "region": "eu-west-1",
    "credentials_secret_id": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:mlflow-staging-admin-AbCdEf",
    "mlflow_version": "3.17.2",
}
PROD_URI = "https://mlflow.example.org"


def test_env_tracking_uri_of_one_server_takes_nothing_from_the_active_profile_of_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    save_profile(ClientConfig.parse(STAGING))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", PROD_URI)
    with pytest.raises(ConfigError) as caught:
        resolve_client_config()
    problems = caught.value.problems
    missing = {problem.split(":")[0] for problem in problems[:-1]}
    assert missing == {"artifact_store_uri", "region", "mlflow_version", "stack"}
    for problem in problems[:-1]:
        assert "profile staging (tracking URI https://mlflow-staging.example.org)" in problem
        assert f"the tracking URI in use, {PROD_URI} (env MLFLOW_TRACKING_URI)" in problem
    hint = problems[-1]
    assert "mlflow-platform config pull --stack NAME" in hint
    assert "MLFLOW_PLATFORM_ARTIFACT_STORE_URI" in hint
    # No staging value leaks into any message as if it were prod's.
    assert "mlflow-staging-artifacts" not in str(caught.value)


def test_the_s3_path_then_needs_the_store_of_the_server_in_use(monkeypatch: pytest.MonkeyPatch) -> None:
    """What `get_model_s3_path` does with proxied artifacts when no store was resolved: it refuses,
    naming the argument, instead of joining the path onto the active profile's bucket."""
    save_profile(ClientConfig.parse(STAGING))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", PROD_URI)
    with pytest.raises(ConfigError):
        resolve_client_config()
    with pytest.raises(ConfigError, match="artifact_store_uri: not set") as caught:
        mlflow_artifacts_to_s3("mlflow-artifacts:/1/models/m-0123/artifacts", None)
    assert "artifact_store_uri='s3://<bucket>'" in str(caught.value)
    # Given the right store explicitly (argument or variable), the path is in it.
    monkeypatch.setenv("MLFLOW_PLATFORM_ARTIFACT_STORE_URI", "s3://mlflow-prod-artifacts")
    monkeypatch.setenv("MLFLOW_PLATFORM_REGION", "eu-west-1")
    monkeypatch.setenv("MLFLOW_PLATFORM_STACK", "prod")
    monkeypatch.setenv("MLFLOW_PLATFORM_MLFLOW_VERSION", "3.17.2")
    monkeypatch.setenv("MLFLOW_PLATFORM_CREDENTIALS_SECRET_ID", "mlflow-prod-admin")
    resolved = resolve_client_config()
    assert resolved.config.artifact_store_uri == "s3://mlflow-prod-artifacts"
    assert resolved.sources["artifact_store_uri"] == "env MLFLOW_PLATFORM_ARTIFACT_STORE_URI"
    assert mlflow_artifacts_to_s3(
        "mlflow-artifacts:/1/models/m-0123/artifacts", resolved.config.artifact_store_uri
    ) == ("s3://mlflow-prod-artifacts/1/models/m-0123/artifacts")


def test_an_argument_tracking_uri_is_held_to_the_same_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    """`mlflow_init(tracking_server_host=...)` passes the URI as an argument."""
    save_profile(ClientConfig.parse(STAGING))
    with pytest.raises(ConfigError) as caught:
        resolve_client_config({"tracking_uri": PROD_URI})
    assert "(argument)" in str(caught.value)
    assert "artifact_store_uri:" in str(caught.value)


def test_the_profile_of_the_server_in_use_still_supplies_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    save_profile(ClientConfig.parse(STAGING))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://MLFLOW-staging.example.org:443/")
    resolved = resolve_client_config()
    assert resolved.config.artifact_store_uri == STAGING["artifact_store_uri"]
    assert {resolved.sources[field] for field in STACK_BOUND_FIELDS if field in resolved.sources} == {"profile staging"}
    assert resolved.skipped == ()


def test_a_published_ssm_parameter_of_another_server_is_skipped_too(
    aws_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    boto3.client("ssm").put_parameter(
        Name=ssm_parameter_name("staging"), Value=json.dumps(STAGING), Type="String", Overwrite=True
    )
    monkeypatch.setenv("MLFLOW_TRACKING_URI", PROD_URI)
    with pytest.raises(ConfigError) as caught:
        resolve_client_config({"region": "eu-west-1"}, stack="staging")
    assert "SSM /mlflow-platform/staging/client-config (tracking URI https://mlflow-staging.example.org)" in str(
        caught.value
    )
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    resolved = resolve_client_config({"region": "eu-west-1"}, stack="staging")
    assert resolved.config.artifact_store_uri == STAGING["artifact_store_uri"]


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        ("https://mlflow.example.org", "https://MLflow.example.org:443/", True),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000/", True),
        ("https://mlflow.example.org", "http://mlflow.example.org", False),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5001", False),
        ("https://host.example.org/team-a", "https://host.example.org/team-b", False),
    ],
)
def test_same_server(first: str, second: str, same: bool) -> None:
    assert same_server(first, second) is same
