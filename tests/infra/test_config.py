"""Stack config: both example stacks validate; a wrong one fails before any resource, naming the key;
and the variants a stack may choose (existing VPC, prebuilt image, internal load balancer) build right."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from tests.infra.conftest import (
    PROJECT,
    STACK_NAMES,
    STACKS,
    load_stack_file,
    pulumi_config_values,
    run_failing_program,
    run_program,
)
from tests.infra.helpers import container_definitions, resource_id, role_policy, statements
from toolkit.platform_config import PlatformConfig


def _stack_values(stack: str) -> dict[str, str]:
    return pulumi_config_values(load_stack_file(stack))


def _with(values: dict[str, str], key: str, change: dict[str, Any]) -> dict[str, str]:
    """A copy of `values` whose structured key `key` has `change` merged in."""
    full_key = f"{PROJECT}:{key}"
    section = json.loads(values[full_key]) if full_key in values else {}
    return {**values, full_key: json.dumps({**section, **change})}


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_example_stack_validates(stack: str) -> None:
    data = load_stack_file(stack)
    config = PlatformConfig.from_stack_config(pulumi_config_values(data), namespace=PROJECT)
    assert config.environment == stack
    assert config.region == data["config"]["aws:region"]


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_every_key_of_the_example_stacks_is_commented(stack: str) -> None:
    """Each key line (top level and nested) is preceded by a comment line, or carries one."""
    lines = (STACKS / f"Pulumi.{stack}.yaml").read_text().splitlines()
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "- ")) or stripped == "config:":
            continue
        assert ":" in stripped, line
        previous = lines[index - 1].strip()
        assert previous.startswith("#") or "#" in stripped, f"Pulumi.{stack}.yaml: {stripped!r} has no comment"


def test_prod_stack_is_hardened() -> None:
    config = PlatformConfig.from_stack_config(_stack_values("prod"), namespace=PROJECT)
    assert config.access.certificate_arn is not None
    assert not config.access.allow_insecure_http
    assert config.database.multi_az
    assert config.database.deletion_protection
    assert config.server.min_count >= 2
    assert config.server.desired_count >= 2


# --- errors: each names its key, and nothing is declared first -----------------------------------------


def _prod_without_certificate() -> dict[str, str]:
    values = _stack_values("prod")
    access = json.loads(values[f"{PROJECT}:access"])
    access.pop("certificate_arn")
    access.pop("hosted_zone_id")
    return {**values, f"{PROJECT}:access": json.dumps(access)}


CONFIG_ERRORS: list[tuple[str, dict[str, str], str]] = [
    ("prod without certificate", _prod_without_certificate(), "access.certificate_arn"),
    (
        "unparseable CIDR",
        _with(_stack_values("dev"), "access", {"allowed_cidrs": ["10.0.0.300/24"]}),
        "access.allowed_cidrs.0",
    ),
    (
        "min > max tasks",
        _with(_stack_values("dev"), "server", {"min_count": 3, "max_count": 2, "desired_count": 2}),
        "server.min_count",
    ),
    ("unknown key", {**_stack_values("dev"), f"{PROJECT}:databse": json.dumps({"multi_az": True})}, "databse"),
    ("unknown nested key", _with(_stack_values("dev"), "database", {"multiaz": True}), "database.multiaz"),
    (
        "Fargate size mismatch",
        _with(_stack_values("dev"), "server", {"cpu": 256, "memory_mib": 8192}),
        "server.memory_mib",
    ),
    (
        "invalid log retention",
        _with(_stack_values("dev"), "server", {"log_retention_days": 42}),
        "server.log_retention_days",
    ),
    ("single-AZ prod database", _with(_stack_values("prod"), "database", {"multi_az": False}), "database.multi_az"),
    ("public VPC range", _with(_stack_values("dev"), "network", {"vpc_cidr": "8.8.0.0/16"}), "network.vpc_cidr"),
    (
        "hosted zone without domain",
        _with(_stack_values("dev"), "access", {"hosted_zone_id": "Z123ABC"}),
        "access.domain_name",
    ),
]


@pytest.mark.parametrize(("values", "key"), [(v, k) for _, v, k in CONFIG_ERRORS], ids=[c[0] for c in CONFIG_ERRORS])
def test_invalid_config_fails_before_any_resource_naming_the_key(values: dict[str, str], key: str) -> None:
    error, declared = run_failing_program(values)
    # The program ends with RunError: Pulumi prints its message, one bad key a line, and no traceback.
    assert isinstance(error, pulumi.RunError), repr(error)
    problems = [line.removeprefix("  - ") for line in str(error).splitlines()[1:]]
    assert any(problem.startswith(f"{key}:") or problem.startswith(f"{key}.") for problem in problems), problems
    assert declared == 0


def test_missing_region_names_the_key() -> None:
    values = {k: v for k, v in _stack_values("dev").items() if k != "aws:region"}
    error, declared = run_failing_program(values)
    assert isinstance(error, pulumi.RunError)
    assert "region: required" in str(error)
    assert declared == 0


# --- variants -----------------------------------------------------------------------------------------

EXISTING = {
    "vpc_id": "vpc-0a1b2c3d4e5f60718",
    "public_subnet_ids": ["subnet-0000000000000000a", "subnet-0000000000000000b"],
    "private_subnet_ids": ["subnet-0000000000000001a", "subnet-0000000000000001b"],
    "isolated_subnet_ids": ["subnet-0000000000000002a", "subnet-0000000000000002b"],
}


def test_existing_network_is_used_as_given() -> None:
    values = _with(_stack_values("dev"), "network", {"existing": EXISTING})
    deployment = run_program(values, stack="existing")
    for typ in (
        "aws:ec2/vpc:Vpc",
        "aws:ec2/subnet:Subnet",
        "aws:ec2/natGateway:NatGateway",
        "aws:ec2/vpcEndpoint:VpcEndpoint",
    ):
        assert deployment.of_type(typ) == [], typ
    assert deployment.one("aws:rds/subnetGroup:SubnetGroup").inputs["subnetIds"] == EXISTING["isolated_subnet_ids"]
    assert deployment.one("aws:lb/loadBalancer:LoadBalancer").inputs["subnets"] == EXISTING["public_subnet_ids"]
    service = deployment.one("aws:ecs/service:Service")
    assert service.inputs["networkConfiguration"]["subnets"] == EXISTING["private_subnet_ids"]
    for group in deployment.of_type("aws:ec2/securityGroup:SecurityGroup"):
        assert group.inputs["vpcId"] == EXISTING["vpc_id"]


def test_internal_load_balancer_sits_in_the_private_subnets() -> None:
    deployment = run_program(_with(_stack_values("dev"), "access", {"internal": True}), stack="internal")
    balancer = deployment.one("aws:lb/loadBalancer:LoadBalancer")
    assert balancer.inputs["internal"] is True
    private = [
        resource_id(s)
        for s in deployment.of_type("aws:ec2/subnet:Subnet")
        if s.inputs["tags"]["mlflow-platform:tier"] == "private"
    ]
    assert balancer.inputs["subnets"] == private


@pytest.mark.parametrize(
    ("image", "pull_resource"),
    [
        ("ghcr.io/example/mlflow-server:3.17.2", None),
        (
            "210987654321.dkr.ecr.eu-west-1.amazonaws.com/shared/mlflow@sha256:" + "a" * 64,
            "arn:aws:ecr:eu-west-1:210987654321:repository/shared/mlflow",
        ),
    ],
)
def test_prebuilt_image_skips_the_build(image: str, pull_resource: str | None) -> None:
    deployment = run_program(_with(_stack_values("dev"), "server", {"image": image}), stack="prebuilt")
    assert deployment.of_type("docker-build:index:Image") == []
    assert deployment.of_type("aws:ecr/repository:Repository") == []
    [container] = container_definitions(deployment)
    assert container["image"] == image
    by_sid = {s["Sid"]: s for s in statements(role_policy(deployment, "-execution"))}
    if pull_resource is None:
        assert "PullThisRepository" not in by_sid
        assert "RegistryLoginHasNoResourceScope" not in by_sid
    else:
        assert by_sid["PullThisRepository"]["Resource"] == [pull_resource]


def test_https_listener_without_domain_uses_the_load_balancer_name() -> None:
    values = _with(
        _stack_values("dev"),
        "access",
        {
            "allow_insecure_http": False,
            "certificate_arn": "arn:aws:acm:eu-west-1:123456789012:certificate/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
            "allowed_hosts": ["mlflow.internal.example.org"],
        },
    )
    deployment = run_program(values, stack="tls-dev")
    balancer = deployment.one("aws:lb/loadBalancer:LoadBalancer")
    assert deployment.outputs["tracking_uri"] == f"https://{balancer.state['dnsName']}"
    [container] = container_definitions(deployment)
    hosts = next(e["value"] for e in container["environment"] if e["name"] == "MLFLOW_PLATFORM_ALLOWED_HOSTS")
    assert hosts.split(",") == [balancer.state["dnsName"], "mlflow.internal.example.org"]
    protocols = sorted(listener.inputs["protocol"] for listener in deployment.of_type("aws:lb/listener:Listener"))
    assert protocols == ["HTTP", "HTTPS"]


def test_config_name_prefixes_every_resource_name() -> None:
    values = {**_stack_values("dev"), f"{PROJECT}:name": "mlops"}
    deployment = run_program(values, stack="renamed")
    root = deployment.one("mlflow-platform:index:MlflowPlatform")
    assert root.name == "mlops"
    assert all(r.name.startswith("mlops-") for r in deployment.resources if r is not root)
