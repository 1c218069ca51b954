"""Stack config as the program sees it: a wrong one fails before any resource, naming the key; the
example stacks document every key; and the variants a stack may choose (existing VPC, prebuilt image,
internal load balancer, another name) change what is declared."""

from __future__ import annotations

import json

import pulumi
import pytest

from tests.infra.conftest import (
    PROJECT,
    STACK_NAMES,
    STACKS,
    Deployment,
    deployment_of,
    run_failing_program,
    run_program,
)
from tests.infra.helpers import (
    container_definitions,
    resource_id,
    role_policy,
    stack_values,
    statements,
    with_section,
)


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


# --- errors: each names its key, and nothing is declared first -----------------------------------------
# (A prod stack's refusals of each dev shortcut are part of the security baseline.)

CONFIG_ERRORS: list[tuple[str, dict[str, str], str]] = [
    (
        "unparseable CIDR",
        with_section(stack_values("dev"), "access", {"allowed_cidrs": ["10.0.0.300/24"]}),
        "access.allowed_cidrs.0",
    ),
    (
        "min > max tasks",
        with_section(stack_values("dev"), "server", {"min_count": 3, "max_count": 2, "desired_count": 2}),
        "server.min_count",
    ),
    ("unknown key", {**stack_values("dev"), f"{PROJECT}:databse": json.dumps({"multi_az": True})}, "databse"),
    ("unknown nested key", with_section(stack_values("dev"), "database", {"multiaz": True}), "database.multiaz"),
    (
        "Fargate size mismatch",
        with_section(stack_values("dev"), "server", {"cpu": 256, "memory_mib": 8192}),
        "server.memory_mib",
    ),
    (
        "invalid log retention",
        with_section(stack_values("dev"), "server", {"log_retention_days": 42}),
        "server.log_retention_days",
    ),
    ("public VPC range", with_section(stack_values("dev"), "network", {"vpc_cidr": "8.8.0.0/16"}), "network.vpc_cidr"),
    (
        "hosted zone without domain",
        with_section(stack_values("dev"), "access", {"hosted_zone_id": "Z123ABC"}),
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
    values = {k: v for k, v in stack_values("dev").items() if k != "aws:region"}
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


def test_existing_network_is_used_as_given(dev: Deployment) -> None:
    values = with_section(stack_values("dev"), "network", {"existing": EXISTING})
    deployment = run_program(values, stack="existing")
    for typ in (
        "aws:ec2/vpc:Vpc",
        "aws:ec2/subnet:Subnet",
        "aws:ec2/natGateway:NatGateway",
        "aws:ec2/vpcEndpoint:VpcEndpoint",
    ):
        assert dev.of_type(typ), f"the dev stack declares no {typ}: this check would prove nothing"
        assert deployment.of_type(typ) == [], typ
    assert deployment.one("aws:rds/subnetGroup:SubnetGroup").inputs["subnetIds"] == EXISTING["isolated_subnet_ids"]
    assert deployment.one("aws:lb/loadBalancer:LoadBalancer").inputs["subnets"] == EXISTING["public_subnet_ids"]
    service = deployment.one("aws:ecs/service:Service")
    assert service.inputs["networkConfiguration"]["subnets"] == EXISTING["private_subnet_ids"]
    # The load balancer's, the server's and the database's groups, all in the given VPC.
    groups = deployment.of_type("aws:ec2/securityGroup:SecurityGroup")
    assert len(groups) == 3
    assert {group.inputs["vpcId"] for group in groups} == {EXISTING["vpc_id"]}


def test_internal_load_balancer_sits_in_the_private_subnets() -> None:
    deployment = run_program(with_section(stack_values("dev"), "access", {"internal": True}), stack="internal")
    balancer = deployment.one("aws:lb/loadBalancer:LoadBalancer")
    assert balancer.inputs["internal"] is True
    private = [
        resource_id(s)
        for s in deployment.of_type("aws:ec2/subnet:Subnet")
        if s.inputs["tags"]["mlflow-platform:tier"] == "private"
    ]
    assert len(private) == deployment.config.network.az_count
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
def test_prebuilt_image_skips_the_build(dev: Deployment, image: str, pull_resource: str | None) -> None:
    deployment = run_program(with_section(stack_values("dev"), "server", {"image": image}), stack="prebuilt")
    for typ in ("docker-build:index:Image", "aws:ecr/repository:Repository"):
        assert dev.of_type(typ), f"the dev stack declares no {typ}: this check would prove nothing"
        assert deployment.of_type(typ) == [], typ
    [container] = container_definitions(deployment)
    assert container["image"] == image
    by_sid = {s["Sid"]: s for s in statements(role_policy(deployment, "-execution"))}
    if pull_resource is None:
        assert "PullThisRepository" not in by_sid
        assert "RegistryLoginHasNoResourceScope" not in by_sid
    else:
        assert by_sid["PullThisRepository"]["Resource"] == [pull_resource]


def test_https_listener_without_domain_uses_the_load_balancer_name() -> None:
    values = with_section(
        stack_values("dev"),
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
    values = {**stack_values("dev"), f"{PROJECT}:name": "mlops"}
    deployment = run_program(values, stack="renamed")
    root = deployment.one("mlflow-platform:index:MlflowPlatform")
    assert root.name == "mlops"
    others = [r.name for r in deployment.resources if r is not root]
    assert len(others) == len(deployment_of("dev").resources) - 1
    assert [name for name in others if not name.startswith("mlops-")] == []
