"""`PlatformConfig`: errors that name the key, the value and what was expected, and how a Pulumi config
map is read. (What the secure defaults and each weakening key declare is in the infra security baseline.)"""

from __future__ import annotations

import json
from typing import Any

import pytest

from toolkit.errors import ConfigError
from toolkit.platform_config import PlatformConfig

CERT = "arn:aws:acm:eu-west-1:123456789012:certificate/0b5c9a2e-1f7d-4d6e-9c1a-3f2b8e7d6c5a"


def minimal(**sections: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"region": "eu-west-1", "access": {"allowed_cidrs": ["10.0.0.0/8"], "certificate_arn": CERT}}
    data.update(sections)
    return data


def problems_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        PlatformConfig.parse(data, source="test stack")
    assert "test stack" in str(caught.value)
    return caught.value.problems


@pytest.mark.parametrize(
    ("data", "key", "fragment"),
    [
        (minimal(network={"vpc_cidr": "10.0.0.0/33"}), "network.vpc_cidr", "IPv4"),
        (minimal(network={"vpc_cidr": "8.8.0.0/16"}), "network.vpc_cidr", "private"),
        (minimal(network={"az_count": 1}), "network.az_count", "greater than or equal to 2"),
        (minimal(network={"existing": {"vpc_id": "vpc-1"}}), "network.existing.vpc_id", "vpc-"),
        (minimal(database={"backup_retention_days": 40}), "database.backup_retention_days", "35"),
        (
            minimal(database={"allocated_storage_gb": 200, "max_allocated_storage_gb": 100}),
            "database.max_allocated_storage_gb",
            ">= allocated_storage_gb",
        ),
        (minimal(server={"cpu": 300}), "server.cpu", "256"),
        (minimal(server={"cpu": 256, "memory_mib": 4096}), "server.memory_mib", "Fargate"),
        (minimal(server={"min_count": 3, "max_count": 2, "desired_count": 3}), "server.min_count", "max_count"),
        (minimal(server={"log_retention_days": 10}), "server.log_retention_days", "retention"),
        (minimal(access={"allowed_cidrs": ["10.0.0.0/8"]}), "access.certificate_arn", "allow_insecure_http"),
        (minimal(access={"allowed_cidrs": []}), "access.allowed_cidrs", "at least 1"),
        (
            minimal(access={"allowed_cidrs": ["0.0.0.0/0"], "certificate_arn": "arn:nope"}),
            "access.certificate_arn",
            "ACM",
        ),
        (minimal(artifacts={"bucket_name": "Bad_Bucket"}), "artifacts.bucket_name", "S3 bucket name"),
        (minimal(environment="staging"), "environment", "'dev' or 'prod'"),
        (minimal(region="Europe"), "region", "pattern"),
    ],
)
def test_each_error_names_its_key(data: dict[str, Any], key: str, fragment: str) -> None:
    problems = problems_of(data)
    matching = [p for p in problems if p.startswith(key + ":")]
    assert matching, f"no problem names {key}: {problems}"
    assert fragment in matching[0]


def test_the_value_given_is_quoted_back() -> None:
    (problem,) = problems_of(minimal(server={"cpu": 300}))
    assert "got 300" in problem


def test_unknown_keys_are_errors_at_every_level() -> None:
    problems = problems_of(minimal(netwrk={}, database={"multiaz": True}))
    assert any(p.startswith("netwrk:") and "unknown key" in p for p in problems)
    assert any(p.startswith("database.multiaz:") and "unknown key" in p for p in problems)


def test_missing_required_keys_are_named() -> None:
    problems = problems_of({"environment": "dev"})
    assert "region: required, but not set" in problems
    assert "access: required, but not set" in problems


def test_prod_refuses_every_dev_shortcut_and_names_each() -> None:
    problems = problems_of(
        minimal(
            environment="prod",
            access={"allowed_cidrs": ["10.0.0.0/8"], "allow_insecure_http": True},
            database={
                "deletion_protection": False,
                "skip_final_snapshot": True,
                "backup_retention_days": 3,
                "performance_insights": False,
            },
            artifacts={"force_destroy": True},
            audit={"force_destroy": True},
        )
    )
    keys = {p.split(":")[0] for p in problems}
    assert keys == {
        "alerts.emails",
        "audit.force_destroy",
        "database.performance_insights",
        "access.certificate_arn",
        "access.allow_insecure_http",
        "database.multi_az",
        "database.backup_retention_days",
        "database.deletion_protection",
        "database.skip_final_snapshot",
        "artifacts.force_destroy",
        "server.min_count",
    }


def test_hardened_prod_is_accepted() -> None:
    config = PlatformConfig.parse(
        minimal(
            environment="prod",
            database={"multi_az": True, "backup_retention_days": 14},
            server={"min_count": 2, "desired_count": 2, "max_count": 4},
            alerts={"emails": ["ml-oncall@example.org"]},
        )
    )
    assert config.is_prod


def test_built_from_a_pulumi_style_config_map() -> None:
    """Pulumi hands structured values over as JSON strings, scalars as plain strings."""
    values = {
        "aws:region": "eu-central-1",
        "mlflow-platform:environment": "dev",
        "mlflow-platform:name": "methyl",
        "mlflow-platform:network": json.dumps({"vpc_cidr": "10.20.0.0/16", "az_count": 3, "nat_gateways": "per_az"}),
        "mlflow-platform:database": json.dumps({"engine_version": "17", "multi_az": False}),
        "mlflow-platform:server": json.dumps({"cpu": 512, "memory_mib": 1024, "workers": 4}),
        "mlflow-platform:access": json.dumps({"allowed_cidrs": ["192.168.0.0/24"], "certificate_arn": CERT}),
        "mlflow-platform:tags": json.dumps({"team": "epigenetics"}),
        "other-project:ignored": "x",
    }
    config = PlatformConfig.from_stack_config(values, namespace="mlflow-platform")
    assert config.region == "eu-central-1"  # from aws:region
    assert config.name == "methyl"
    assert str(config.network.vpc_cidr) == "10.20.0.0/16"
    assert config.network.nat_gateways == "per_az"
    assert config.server.workers == 4
    assert config.database.engine_version == "17"
    assert config.tags == {"team": "epigenetics"}


def test_pulumi_number_for_a_text_field_is_accepted() -> None:
    """`engine_version: 17` in YAML arrives as the JSON number 17; it means the string '17'."""
    values = {
        "mlflow-platform:region": "eu-west-1",
        "mlflow-platform:database": '{"engine_version": 17}',
        "mlflow-platform:access": json.dumps({"allowed_cidrs": ["10.0.0.0/8"], "certificate_arn": CERT}),
    }
    assert PlatformConfig.from_stack_config(values, namespace="mlflow-platform").database.engine_version == "17"


def test_a_misspelt_stack_key_fails_naming_it() -> None:
    values = {
        "mlflow-platform:region": "eu-west-1",
        "mlflow-platform:acess": "{}",
        "mlflow-platform:access": json.dumps({"allowed_cidrs": ["10.0.0.0/8"], "certificate_arn": CERT}),
    }
    with pytest.raises(ConfigError) as caught:
        PlatformConfig.from_stack_config(values, namespace="mlflow-platform", source="config of stack 'dev'")
    assert caught.value.problems == ["acess: got {}, unknown key (check its spelling against the documented keys)"]
    assert "config of stack 'dev'" in str(caught.value)
