"""The `identity` section of a stack, the `auth` of a client config, and the mapping they lead to: a
wrong value fails naming its key; the mapping picks the first matching principal."""

from __future__ import annotations

import pytest

from mlflow_platform.server.contract import IdentityMapping, Principal
from mlflow_platform.server.identity_mapping import UnmappedPrincipal, map_principal
from toolkit.client_config import ClientConfig
from toolkit.errors import ConfigError
from toolkit.platform_config import PlatformConfig

BASE = {"region": "eu-west-1", "access": {"allowed_cidrs": ["10.0.0.0/8"], "allow_insecure_http": True}}
SSO = "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_DataScientist_0123abcd/alice@example.org"


@pytest.mark.parametrize(
    ("identity", "key", "expected"),
    [
        ({"default_permission": "ALL"}, "identity.default_permission", "expected 'READ', 'USE', 'EDIT'"),
        ({"principals": [{"arn": "alice", "username": "name"}]}, "identity.principals.0.arn", "an IAM or STS ARN"),
        (
            {"principals": [{"arn": "arn:aws:iam::123456789012:user/*", "username": "admin"}]},
            "identity.principals.0.username",
            "break-glass admin",
        ),
        (
            {"principals": [{"arn": "arn:aws:iam::123456789012:user/*", "username": "two words"}]},
            "identity.principals.0.username",
            '"session", "name" or a fixed MLflow user name',
        ),
        ({"principals": [{"arn": "arn:aws:iam::123456789012:user/*"}]}, "identity.principals.0.username", "required"),
        ({"principal": []}, "identity.principal", "unknown key"),
    ],
)
def test_a_wrong_identity_section_names_its_key(identity: dict[str, object], key: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        PlatformConfig.parse({**BASE, "identity": identity})
    [problem] = caught.value.problems
    assert problem.startswith(f"{key}:")
    assert expected in problem


def test_without_a_section_nobody_maps_and_read_is_the_default() -> None:
    identity = PlatformConfig.parse(BASE).identity
    assert identity == IdentityMapping(default_permission="READ", principals=[])
    with pytest.raises(UnmappedPrincipal, match="matches no principal"):
        map_principal(identity, SSO)


MAPPING = IdentityMapping(
    principals=[
        Principal(arn="arn:aws:sts::123456789012:assumed-role/mlflow-scoring-pipeline/*", username="scoring-pipeline"),
        Principal(
            arn="arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_PlatformAdmin_*/*",
            username="session",
            admin=True,
        ),
        Principal(arn="arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_DataScientist_*/*", username="session"),
        Principal(arn="arn:aws:iam::123456789012:user/platform/*", username="name", admin=True),
        Principal(arn="arn:aws:sts::123456789012:assumed-role/ci-*/*", username="name"),
    ]
)


@pytest.mark.parametrize(
    ("arn", "username", "admin"),
    [
        (SSO, "alice@example.org", False),
        (
            "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_PlatformAdmin_9f/bob@example.org",
            "bob@example.org",
            True,
        ),
        ("arn:aws:sts::123456789012:assumed-role/mlflow-scoring-pipeline/ecs-task-1234", "scoring-pipeline", False),
        ("arn:aws:iam::123456789012:user/platform/carol", "carol", True),
        ("arn:aws:sts::123456789012:assumed-role/ci-nightly/run-42", "ci-nightly", False),
    ],
)
def test_the_first_matching_principal_decides_the_user(arn: str, username: str, admin: bool) -> None:
    user = map_principal(MAPPING, arn)
    assert (user.username, user.admin, user.arn) == (username, admin, arn)


@pytest.mark.parametrize(
    ("arn", "reason"),
    [
        ("arn:aws:sts::999999999999:assumed-role/AWSReservedSSO_DataScientist_0123abcd/eve", "matches no principal"),
        ("arn:aws:iam::123456789012:user/eve", "matches no principal"),
        # A pattern is not a prefix: the role name must match whole.
        ("arn:aws:sts::123456789012:assumed-role/mlflow-scoring-pipeline-evil/x", "matches no principal"),
        ("arn:aws:iam::123456789012:user/platform/admin", "break-glass admin"),
    ],
)
def test_unmapped_or_reserved_principals_are_refused(arn: str, reason: str) -> None:
    with pytest.raises(UnmappedPrincipal, match=reason):
        map_principal(MAPPING, arn)


def test_session_names_exist_only_for_assumed_roles() -> None:
    mapping = IdentityMapping(principals=[Principal(arn="arn:aws:iam::123456789012:user/*", username="session")])
    with pytest.raises(UnmappedPrincipal, match="not an assumed role"):
        map_principal(mapping, "arn:aws:iam::123456789012:user/alice")


CLIENT = {
    "stack": "dev",
    "tracking_uri": "https://mlflow.example.org",
    "artifact_store_uri": "s3://bucket",
    "region": "eu-west-1",
    "mlflow_version": "3.17.2",
}


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ({}, "credentials_secret_id"),
        ({"auth": "kerberos"}, "auth"),
        ({"auth": "aws-iam", "emulator_access_key_id": "AKIA0000000000000000"}, "emulator_access_key_id"),
        (
            {"auth": "aws-iam", "emulator_access_key_id": "AKIA0", "emulator_secret_access_key": "x"},
            "emulator_access_key_id",
        ),
    ],
)
def test_a_client_config_that_cannot_sign_in_names_its_key(extra: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        ClientConfig.parse({**CLIENT, **extra})
    assert any(problem.startswith(key) for problem in caught.value.problems), caught.value.problems


def test_the_emulator_key_is_written_to_profiles_but_never_shown() -> None:
    config = ClientConfig.parse(
        {
            **CLIENT,
            "auth": "aws-iam",
            "aws_endpoint_url": "http://127.0.0.1:5051",
            "emulator_access_key_id": "AKIA0000000000000000",
            "emulator_secret_access_key": "emulator-secret-value",
        }
    )
    assert "emulator-secret-value" not in repr(config)
    assert "emulator-secret-value" not in str(config.model_dump())
    assert ClientConfig.parse(config.model_dump_json()) == config
