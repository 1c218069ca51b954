"""Each component's resources and the properties that matter, and the wiring between components."""

from __future__ import annotations

import json
import shutil
from ipaddress import IPv4Network
from pathlib import Path

import pytest

from mlflow_platform.infra.network import subnet_cidrs, zone_picker
from mlflow_platform.infra.tracking_server import CONTAINER_USER, source_fingerprint
from mlflow_platform.server import contract as server_env
from tests.infra.conftest import REPO, Deployment
from tests.infra.helpers import (
    arn,
    artifact_bucket,
    below,
    children,
    component,
    container_definitions,
    descendants,
    plain,
    resource_id,
)

COMPONENT_TYPES = {
    "mlflow-platform:index:MlflowPlatform",
    "mlflow-platform:network:Network",
    "mlflow-platform:network:SecurityGroups",
    "mlflow-platform:network:LoadBalancer",
    "mlflow-platform:security:EncryptionKey",
    "mlflow-platform:security:Credentials",
    "mlflow-platform:storage:ArtifactStore",
    "mlflow-platform:storage:MetadataStore",
    "mlflow-platform:server:TrackingServer",
    "mlflow-platform:client:ClientConfigPublication",
    "mlflow-platform:security:ModelReaderPolicy",
    "mlflow-platform:storage:UpgradeSnapshot",
    "mlflow-platform:operations:Alerting",
    "mlflow-platform:operations:AuditLogs",
    "mlflow-platform:network:EdgeProtection",
    "mlflow-platform:network:StsEndpoint",
    "mlflow-platform:security:AdminSecretPolicy",
}

SERVER_DIR = REPO / "platform" / "server"


def _tier(deployment: Deployment, tier: str) -> list[str]:
    return [
        resource_id(s)
        for s in deployment.of_type("aws:ec2/subnet:Subnet")
        if s.inputs["tags"]["mlflow-platform:tier"] == tier
    ]


# --- structure ----------------------------------------------------------------------------------------


def test_every_resource_is_parented_to_one_of_our_components(deployment: Deployment) -> None:
    by_urn = {r.urn: r for r in deployment.resources}
    root = deployment.one("mlflow-platform:index:MlflowPlatform")
    assert "::pulumi:pulumi:Stack::" in root.parent_urn
    for record in deployment.resources:
        if record is root:
            continue
        parent = by_urn.get(record.parent_urn)
        assert parent is not None, f"{record.type} {record.name} has no parent among our resources"
        assert parent.type in COMPONENT_TYPES, f"{record.name} is parented to {parent.type}"
    assert {r.type for r in deployment.resources if not r.custom} == COMPONENT_TYPES


def test_resource_names_derive_from_the_component_name(deployment: Deployment) -> None:
    for record in deployment.resources:
        if record.parent_urn and record.parent_urn in {r.urn for r in deployment.resources}:
            parent = deployment.by_urn(record.parent_urn)
            if parent.type != "mlflow-platform:index:MlflowPlatform":
                assert record.name.startswith(parent.name), f"{record.name} not named after {parent.name}"


def test_every_aws_resource_uses_the_platform_provider_with_default_tags(deployment: Deployment) -> None:
    provider = deployment.one("pulumi:providers:aws")
    assert provider.inputs["region"] == deployment.config.region
    tags = json.loads(provider.inputs["defaultTags"])["tags"]
    assert tags == {
        **deployment.config.tags,
        "mlflow-platform:stack": deployment.stack,
        "mlflow-platform:environment": deployment.config.environment,
        "mlflow-platform:name": deployment.config.name,
    }
    for record in deployment.resources:
        if record.custom and record.type.startswith("aws:"):
            assert record.provider.startswith(provider.urn + "::"), f"{record.name} uses {record.provider}"


# --- network ------------------------------------------------------------------------------------------


def test_network_spans_the_configured_zones_with_three_tiers(deployment: Deployment) -> None:
    network = deployment.config.network
    vpc = deployment.one("aws:ec2/vpc:Vpc")
    assert vpc.inputs["cidrBlock"] == str(network.vpc_cidr)
    assert vpc.inputs["enableDnsHostnames"] is True
    subnets = deployment.of_type("aws:ec2/subnet:Subnet")
    assert len(subnets) == 3 * network.az_count
    for tier in ("public", "private", "isolated"):
        zones = [s.inputs["availabilityZone"] for s in subnets if s.inputs["tags"]["mlflow-platform:tier"] == tier]
        assert len(set(zones)) == network.az_count >= 2
    cidrs = [IPv4Network(s.inputs["cidrBlock"]) for s in subnets]
    assert all(c.subnet_of(network.vpc_cidr) for c in cidrs)
    assert not any(a.overlaps(b) for i, a in enumerate(cidrs) for b in cidrs[i + 1 :])


def test_default_security_group_of_the_vpc_is_emptied(deployment: Deployment) -> None:
    default = deployment.one("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert not default.inputs.get("ingress")
    assert not default.inputs.get("egress")


def test_nat_gateways_single_in_dev_per_zone_in_prod(dev: Deployment, prod: Deployment) -> None:
    assert len(dev.of_type("aws:ec2/natGateway:NatGateway")) == 1
    assert len(prod.of_type("aws:ec2/natGateway:NatGateway")) == prod.config.network.az_count == 3
    for deployment in (dev, prod):
        public = set(_tier(deployment, "public"))
        for nat in deployment.of_type("aws:ec2/natGateway:NatGateway"):
            assert nat.inputs["subnetId"] in public


def test_routes_public_to_internet_gateway_private_to_nat(deployment: Deployment) -> None:
    gateway = resource_id(deployment.one("aws:ec2/internetGateway:InternetGateway"))
    nats = {resource_id(n) for n in deployment.of_type("aws:ec2/natGateway:NatGateway")}
    routes = deployment.of_type("aws:ec2/route:Route")
    public = [r for r in routes if "gatewayId" in r.inputs]
    assert [r.inputs["gatewayId"] for r in public] == [gateway]
    private = [r for r in routes if "natGatewayId" in r.inputs]
    assert len(private) == deployment.config.network.az_count
    assert {r.inputs["natGatewayId"] for r in private} == nats
    assert all(r.inputs["destinationCidrBlock"] == "0.0.0.0/0" for r in routes)


def test_s3_gateway_endpoint_serves_private_and_isolated_tiers(deployment: Deployment) -> None:
    [endpoint] = [
        e for e in deployment.of_type("aws:ec2/vpcEndpoint:VpcEndpoint") if e.inputs["vpcEndpointType"] == "Gateway"
    ]
    assert endpoint.inputs["serviceName"] == f"com.amazonaws.{deployment.config.region}.s3"
    tables = {resource_id(t): t.name for t in deployment.of_type("aws:ec2/routeTable:RouteTable")}
    served = [tables[t] for t in endpoint.inputs["routeTableIds"]]
    assert not any("public" in name for name in served)
    assert len(served) == deployment.config.network.az_count + 1


def test_subnet_cidrs_are_stable_and_disjoint() -> None:
    cidrs = subnet_cidrs(IPv4Network("10.0.0.0/20"), 6)
    flat = [IPv4Network(c) for tier in cidrs.values() for c in tier]
    assert len(flat) == 18
    assert not any(a.overlaps(b) for i, a in enumerate(flat) for b in flat[i + 1 :])
    assert cidrs == subnet_cidrs(IPv4Network("10.0.0.0/20"), 6)


# --- artifact store -----------------------------------------------------------------------------------


def test_artifact_bucket_controls(deployment: Deployment) -> None:
    store = component(deployment, "mlflow-platform:storage:ArtifactStore")
    bucket = artifact_bucket(deployment)
    assert bucket.parent_urn == store.urn
    bucket_id = resource_id(bucket)
    assert bucket.inputs["forceDestroy"] is deployment.config.artifacts.force_destroy
    block = below(deployment, store.type, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert block.inputs == {
        "bucket": bucket_id,
        "blockPublicAcls": True,
        "blockPublicPolicy": True,
        "ignorePublicAcls": True,
        "restrictPublicBuckets": True,
    }
    ownership = below(deployment, store.type, "aws:s3/bucketOwnershipControls:BucketOwnershipControls")
    assert ownership.inputs["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    versioning = below(deployment, store.type, "aws:s3/bucketVersioning:BucketVersioning")
    assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"
    lifecycle = below(deployment, store.type, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    [rule] = lifecycle.inputs["rules"]
    assert rule["status"] == "Enabled"
    assert rule["noncurrentVersionExpiration"]["noncurrentDays"] == (
        deployment.config.artifacts.noncurrent_version_retention_days
    )
    assert rule["abortIncompleteMultipartUpload"]["daysAfterInitiation"] == 7
    for record in (block, ownership, versioning, lifecycle):
        assert record.inputs["bucket"] == bucket_id
        assert record.parent_urn == store.urn
    # The bucket's key is a child of the store, not shared with the secrets.
    [key] = descendants(deployment, store, "aws:kms/key:Key")
    assert key.name == "mlflow-artifacts-key"


# --- metadata store -----------------------------------------------------------------------------------


def test_database_settings_come_from_config(deployment: Deployment) -> None:
    config = deployment.config.database
    database = deployment.one("aws:rds/instance:Instance")
    assert database.inputs["engine"] == "postgres"
    assert database.inputs["engineVersion"] == config.engine_version
    assert database.inputs["instanceClass"] == config.instance_class
    assert database.inputs["allocatedStorage"] == config.allocated_storage_gb
    assert database.inputs["maxAllocatedStorage"] == config.max_allocated_storage_gb
    assert database.inputs["multiAz"] is config.multi_az
    assert database.inputs["backupRetentionPeriod"] == config.backup_retention_days
    assert database.inputs["deletionProtection"] is config.deletion_protection
    assert database.inputs["skipFinalSnapshot"] is config.skip_final_snapshot
    parameters = deployment.one("aws:rds/parameterGroup:ParameterGroup")
    assert parameters.inputs["family"] == f"postgres{config.engine_version.split('.')[0]}"


def test_database_security_group_admits_only_the_server_group(deployment: Deployment) -> None:
    store = component(deployment, "mlflow-platform:storage:MetadataStore")
    [group] = children(deployment, store, "aws:ec2/securityGroup:SecurityGroup")
    group_id = resource_id(group)
    server_group = next(
        g for g in deployment.of_type("aws:ec2/securityGroup:SecurityGroup") if g.name.endswith("-sg-server")
    )
    service = deployment.one("aws:ecs/service:Service")
    assert service.inputs["networkConfiguration"]["securityGroups"] == [resource_id(server_group)]
    rules = [
        r
        for typ in (
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
            "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
        )
        for r in deployment.of_type(typ)
        if group_id in (r.inputs["securityGroupId"], r.inputs.get("referencedSecurityGroupId"))
    ]
    # One way in (from the server group) and the server group's matching way out; the database has no egress.
    described = sorted(
        (r.type.split(":")[-1], r.inputs["securityGroupId"], r.inputs["referencedSecurityGroupId"]) for r in rules
    )
    assert described == sorted(
        [
            ("SecurityGroupIngressRule", group_id, resource_id(server_group)),
            ("SecurityGroupEgressRule", resource_id(server_group), group_id),
        ]
    )
    assert all(r.inputs["fromPort"] == r.inputs["toPort"] == 5432 for r in rules)


def test_database_secret_holds_the_connection_of_this_instance(deployment: Deployment) -> None:
    database = deployment.one("aws:rds/instance:Instance")
    store = component(deployment, "mlflow-platform:storage:MetadataStore")
    [password] = descendants(deployment, store, "random:index/randomPassword:RandomPassword")
    [version] = descendants(deployment, store, "aws:secretsmanager/secretVersion:SecretVersion")
    [secret] = descendants(deployment, store, "aws:secretsmanager/secret:Secret")
    assert version.inputs["secretId"] == arn(secret)
    connection = json.loads(plain(version.inputs["secretString"]))
    assert connection == {
        "engine": "postgres",
        "host": database.state["address"],
        "port": 5432,
        "dbname": database.inputs["dbName"],
        "username": database.inputs["username"],
        "password": password.state["result"],
        "sslmode": "verify-full",
    }
    assert plain(database.inputs["password"]) == password.state["result"]
    assert password.inputs["length"] >= 32


# --- credentials --------------------------------------------------------------------------------------


def test_admin_and_flask_secrets_are_generated(deployment: Deployment) -> None:
    credentials = component(deployment, "mlflow-platform:security:Credentials")
    secrets = {s.name: s for s in children(deployment, credentials, "aws:secretsmanager/secret:Secret")}
    versions = {v.name: v for v in children(deployment, credentials, "aws:secretsmanager/secretVersion:SecretVersion")}
    passwords = {p.name: p for p in children(deployment, credentials, "random:index/randomPassword:RandomPassword")}
    admin = json.loads(plain(versions["mlflow-credentials-admin-value"].inputs["secretString"]))
    assert admin == {"username": "admin", "password": passwords["mlflow-credentials-admin-random"].state["result"]}
    flask_key = plain(versions["mlflow-credentials-flask-secret-key-value"].inputs["secretString"])
    assert flask_key == passwords["mlflow-credentials-flask-secret-key-random"].state["result"]
    assert len(flask_key) >= 64
    assert versions["mlflow-credentials-admin-value"].inputs["secretId"] == arn(secrets["mlflow-credentials-admin"])
    for secret in secrets.values():
        assert secret.inputs["namePrefix"].startswith(f"mlflow-platform/{deployment.stack}/")


# --- load balancer ------------------------------------------------------------------------------------


def test_load_balancer_placement_and_health_check(deployment: Deployment) -> None:
    balancer = deployment.one("aws:lb/loadBalancer:LoadBalancer")
    assert balancer.inputs["loadBalancerType"] == "application"
    assert balancer.inputs["internal"] is deployment.config.access.internal
    assert balancer.inputs["subnets"] == _tier(deployment, "public")
    assert balancer.inputs["dropInvalidHeaderFields"] is True
    target_group = deployment.one("aws:lb/targetGroup:TargetGroup")
    assert target_group.inputs["targetType"] == "ip"
    assert target_group.inputs["port"] == 5000
    assert target_group.inputs["healthCheck"]["path"] == "/health"
    assert target_group.inputs["healthCheck"]["matcher"] == "200"
    forwards = [
        action
        for listener in deployment.of_type("aws:lb/listener:Listener")
        for action in listener.inputs["defaultActions"]
        if action["type"] == "forward"
    ]
    assert [a["targetGroupArn"] for a in forwards] == [arn(target_group)]


def test_route53_alias_only_with_a_hosted_zone(dev: Deployment, prod: Deployment) -> None:
    assert dev.of_type("aws:route53/record:Record") == []
    record = prod.one("aws:route53/record:Record")
    balancer = prod.one("aws:lb/loadBalancer:LoadBalancer")
    assert record.inputs["zoneId"] == prod.config.access.hosted_zone_id
    assert record.inputs["name"] == prod.config.access.domain_name
    assert record.inputs["type"] == "A"
    assert record.inputs["aliases"] == [
        {"name": balancer.state["dnsName"], "zoneId": balancer.state["zoneId"], "evaluateTargetHealth": True}
    ]


# --- tracking server ----------------------------------------------------------------------------------


def test_image_repository_and_build(deployment: Deployment) -> None:
    repository = deployment.one("aws:ecr/repository:Repository")
    assert repository.inputs["imageTagMutability"] == "IMMUTABLE"
    assert repository.inputs["imageScanningConfiguration"] == {"scanOnPush": True}
    image = deployment.one("docker-build:index:Image")
    assert image.inputs["context"] == {"location": str(SERVER_DIR)}
    assert image.inputs["dockerfile"] == {"location": str(SERVER_DIR / "Dockerfile")}
    assert image.inputs["push"] is True
    assert image.inputs["platforms"] == ["linux/amd64"]
    [tag] = image.inputs["tags"]
    assert tag == (
        f"{repository.state['repositoryUrl']}:{deployment.config.server.mlflow_version}-{source_fingerprint(SERVER_DIR)}"
    )
    assert image.inputs["registries"][0]["address"] == repository.state["repositoryUrl"]
    [container] = container_definitions(deployment)
    assert container["image"] == image.state["ref"]
    assert "@sha256:" in container["image"]


def _copy_of_the_repository(tmp_path: Path) -> Path:
    copy = tmp_path / "repo"
    shutil.copytree(REPO / "platform", copy / "platform", ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def test_image_tag_ignores_edits_outside_the_server_folder(tmp_path: Path) -> None:
    """Editing the CLI, the demo or a component must not rebuild and push a new server image."""
    copy = _copy_of_the_repository(tmp_path)
    before = source_fingerprint(copy / "platform" / "server")
    with (copy / "platform" / "cli.py").open("a") as handle:
        handle.write("# an edit\n")
    with (copy / "platform" / "infra" / "network.py").open("a") as handle:
        handle.write("# an edit\n")
    assert source_fingerprint(copy / "platform" / "server") == before


@pytest.mark.parametrize("edited", ["entrypoint.py", "Dockerfile", "requirements.txt"])
def test_image_tag_changes_with_what_goes_into_the_image(tmp_path: Path, edited: str) -> None:
    copy = _copy_of_the_repository(tmp_path)
    before = source_fingerprint(copy / "platform" / "server")
    with (copy / "platform" / "server" / edited).open("a") as handle:
        handle.write("# an edit\n")
    assert source_fingerprint(copy / "platform" / "server") != before


def test_cluster_has_container_insights(deployment: Deployment) -> None:
    cluster = deployment.one("aws:ecs/cluster:Cluster")
    assert {"name": "containerInsights", "value": "enabled"} in cluster.inputs["settings"]


def test_task_definition_environment_and_secrets(deployment: Deployment) -> None:
    config = deployment.config
    task = deployment.one("aws:ecs/taskDefinition:TaskDefinition")
    assert task.inputs["requiresCompatibilities"] == ["FARGATE"]
    assert task.inputs["networkMode"] == "awsvpc"
    assert task.inputs["cpu"] == str(config.server.cpu)
    assert task.inputs["memory"] == str(config.server.memory_mib)
    roles = {r.name: arn(r) for r in deployment.of_type("aws:iam/role:Role")}
    assert task.inputs["executionRoleArn"] == roles["mlflow-server-execution"]
    assert task.inputs["taskRoleArn"] == roles["mlflow-server-task"]

    [container] = container_definitions(deployment)
    assert container["user"] == CONTAINER_USER
    environment = {item["name"]: item["value"] for item in container["environment"]}
    bucket = artifact_bucket(deployment)
    balancer = deployment.one("aws:lb/loadBalancer:LoadBalancer")
    expected_hosts = [balancer.state["dnsName"]]
    if config.access.domain_name:
        expected_hosts.append(config.access.domain_name)
    identity = server_env.ServerIdentity.model_validate_json(environment.pop(server_env.IDENTITY))
    assert identity.principals == config.identity.principals
    assert identity.default_permission == config.identity.default_permission
    assert server_env.audience_of(deployment.outputs["tracking_uri"]) in identity.audiences
    assert environment == {
        server_env.ARTIFACTS_DESTINATION: f"s3://{bucket.state['bucket']}",
        server_env.ALLOWED_HOSTS: ",".join(expected_hosts + config.access.allowed_hosts),
        server_env.WORKERS: str(config.server.workers),
        server_env.HOST: "0.0.0.0",  # noqa: S104 - asserting the value the task is given
        server_env.PORT: "5000",
        server_env.PUBLIC_SCHEME: "https" if config.access.certificate_arn else "http",
        "AWS_DEFAULT_REGION": config.region,
        "HOME": "/tmp",
    }
    secrets = {item["name"]: item["valueFrom"] for item in container["secrets"]}
    by_name = {s.name: arn(s) for s in deployment.of_type("aws:secretsmanager/secret:Secret")}
    assert secrets == {
        server_env.DATABASE_SECRET: by_name["mlflow-db-connection"],
        server_env.ADMIN_SECRET: by_name["mlflow-credentials-admin"],
        server_env.FLASK_SECRET_KEY: by_name["mlflow-credentials-flask-secret-key"],
    }


def test_service_deployment_and_autoscaling(deployment: Deployment) -> None:
    config = deployment.config.server
    service = deployment.one("aws:ecs/service:Service")
    assert service.inputs["launchType"] == "FARGATE"
    assert service.inputs["desiredCount"] == config.desired_count
    assert service.inputs["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    assert service.inputs["taskDefinition"] == arn(deployment.one("aws:ecs/taskDefinition:TaskDefinition"))
    assert service.inputs["loadBalancers"] == [
        {
            "targetGroupArn": arn(deployment.one("aws:lb/targetGroup:TargetGroup")),
            "containerName": "mlflow",
            "containerPort": 5000,
        }
    ]
    target = deployment.one("aws:appautoscaling/target:Target")
    cluster = deployment.one("aws:ecs/cluster:Cluster")
    assert target.inputs["resourceId"] == f"service/{cluster.state['name']}/{service.state['name']}"
    assert (target.inputs["minCapacity"], target.inputs["maxCapacity"]) == (config.min_count, config.max_count)
    assert target.inputs["scalableDimension"] == "ecs:service:DesiredCount"
    policy = deployment.one("aws:appautoscaling/policy:Policy")
    assert policy.inputs["policyType"] == "TargetTrackingScaling"
    tracking = policy.inputs["targetTrackingScalingPolicyConfiguration"]
    assert tracking["targetValue"] == config.cpu_target_percent
    assert tracking["predefinedMetricSpecification"] == {"predefinedMetricType": "ECSServiceAverageCPUUtilization"}


@pytest.mark.parametrize(
    ("typ", "component_type"),
    [
        ("aws:ecs/taskDefinition:TaskDefinition", "mlflow-platform:server:TrackingServer"),
        ("aws:rds/instance:Instance", "mlflow-platform:storage:MetadataStore"),
        ("aws:rds/snapshot:Snapshot", "mlflow-platform:storage:UpgradeSnapshot"),
        ("aws:sns/topic:Topic", "mlflow-platform:operations:Alerting"),
        ("aws:wafv2/webAcl:WebAcl", "mlflow-platform:network:EdgeProtection"),
        ("aws:lb/loadBalancer:LoadBalancer", "mlflow-platform:network:LoadBalancer"),
        ("aws:ec2/vpc:Vpc", "mlflow-platform:network:Network"),
        ("aws:ssm/parameter:Parameter", "mlflow-platform:client:ClientConfigPublication"),
    ],
)
def test_children_are_parented_to_their_component(dev: Deployment, typ: str, component_type: str) -> None:
    assert dev.one(typ).parent_urn == dev.one(component_type).urn


def test_more_zones_than_the_region_has_is_refused_naming_the_key() -> None:
    with pytest.raises(ValueError, match=r"network\.az_count"):
        zone_picker(3)(["eu-west-1a", "eu-west-1b", "eu-west-1c"])
    assert zone_picker(2)(["eu-west-1a", "eu-west-1b", "eu-west-1c"]) == "eu-west-1c"


def test_every_aws_lookup_goes_through_the_platform_provider(deployment: Deployment) -> None:
    """Zones, account and partition are looked up in the configured region, not the shell's."""
    provider = deployment.one("pulumi:providers:aws")
    aws_calls = [c for c in deployment.calls if c.token.startswith("aws:")]
    assert {c.token.split(":")[-1] for c in aws_calls} >= {"getCallerIdentity", "getPartition", "getAvailabilityZones"}
    for call in aws_calls:
        assert call.provider.startswith(provider.urn + "::"), f"{call.token} via {call.provider!r}"
