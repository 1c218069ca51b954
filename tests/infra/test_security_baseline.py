"""The security baseline: what the real program declares under the mocks, and which configs it refuses.

Each test names one property a security review asks about. The declared resources are checked for
both example stacks and for a stack that writes down only what it must (region, client networks, a
certificate): the secure settings are the defaults. Every weakening takes a key of its own in a dev
stack, and a prod stack is refused with any of them, naming the key.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from typing import Any

import botocore.session
import pulumi
import pytest
from botocore.validate import ParamValidator

from mlflow_platform.server import contract as server_env
from tests.infra.conftest import PROJECT, REPO, STACK_NAMES, Deployment, deployment_of, run_failing_program, run_program
from tests.infra.helpers import (
    arn,
    artifact_bucket,
    as_list,
    below,
    container_definitions,
    generated_secret_values,
    is_secret,
    plain,
    policy_documents,
    resource_id,
    role_policy,
    server_log_group,
    stack_values,
    statements,
    with_section,
    without,
)

CERTIFICATE = "arn:aws:acm:eu-west-1:123456789012:certificate/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
CLIENTS = "192.0.2.0/24"
LISTENER = "aws:lb/listener:Listener"
DATABASE = "aws:rds/instance:Instance"
ARTIFACT_STORE = "mlflow-platform:storage:ArtifactStore"
AUDIT_LOGS = "mlflow-platform:operations:AuditLogs"


def minimal_values(**sections: dict[str, Any]) -> dict[str, str]:
    """A stack config that sets only what has no default; `sections` replace (not merge) whole keys."""
    config: dict[str, Any] = {"access": {"allowed_cidrs": [CLIENTS], "certificate_arn": CERTIFICATE}, **sections}
    return {"aws:region": "eu-west-1", **{f"{PROJECT}:{key}": json.dumps(value) for key, value in config.items()}}


@cache
def _minimal() -> Deployment:
    return run_program(minimal_values(), stack="minimal")


def _deployment_of(stack: str) -> Deployment:
    return _minimal() if stack == "minimal" else deployment_of(stack)


@pytest.fixture(params=[*STACK_NAMES, "minimal"])
def deployment(request: pytest.FixtureRequest) -> Deployment:
    """Here: the program run against each example stack, and against the minimal stack config."""
    stack = request.param
    assert isinstance(stack, str)
    return _deployment_of(stack)


def _kms_key_arns(deployment: Deployment) -> set[str]:
    return {arn(key) for key in deployment.of_type("aws:kms/key:Key")}


def _platform_key_arn(deployment: Deployment) -> str:
    return arn(next(k for k in deployment.of_type("aws:kms/key:Key") if k.name.endswith("-platform-key")))


def _artifact_key_arn(deployment: Deployment) -> str:
    return arn(next(k for k in deployment.of_type("aws:kms/key:Key") if k.name.endswith("-artifacts-key")))


def _without_secrets(value: Any) -> Any:
    """The value with every secret-marked part dropped: what would be stored or shown in plain text."""
    if is_secret(value):
        return "<secret>"
    if isinstance(value, dict):
        return {key: _without_secrets(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_secrets(item) for item in value]
    return value


# --- encryption at rest -------------------------------------------------------------------------------


def test_encryption_at_rest_keys_are_customer_managed_and_rotate(deployment: Deployment) -> None:
    keys = deployment.of_type("aws:kms/key:Key")
    assert len(keys) == 3  # the artifact bucket's, the platform key (secrets, database, logs), the alarm topic's
    for key in keys:
        assert key.inputs["enableKeyRotation"] is True, key.name
        assert key.inputs["deletionWindowInDays"] == 30


def test_encryption_at_rest_s3_uses_the_bucket_key(deployment: Deployment) -> None:
    encryption = below(
        deployment,
        ARTIFACT_STORE,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    )
    bucket = artifact_bucket(deployment)
    assert encryption.inputs["bucket"] == resource_id(bucket)
    [rule] = encryption.inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {
        "sseAlgorithm": "aws:kms",
        "kmsMasterKeyId": _artifact_key_arn(deployment),
    }
    assert rule["bucketKeyEnabled"] is True


def test_encryption_at_rest_rds_storage(deployment: Deployment) -> None:
    database = deployment.one("aws:rds/instance:Instance")
    assert database.inputs["storageEncrypted"] is True
    assert database.inputs["kmsKeyId"] == _platform_key_arn(deployment)


def test_encryption_at_rest_secrets(deployment: Deployment) -> None:
    secrets = deployment.of_type("aws:secretsmanager/secret:Secret")
    assert len(secrets) == 3  # database connection, admin user, Flask key
    for secret in secrets:
        assert secret.inputs["kmsKeyId"] == _platform_key_arn(deployment), secret.name


def test_encryption_at_rest_logs(deployment: Deployment) -> None:
    """The server's, the VPC flow logs, the database's two exported logs and the WAF's (internet-facing
    load balancers): each encrypted with the platform key, which CloudWatch Logs may use for exactly
    these name prefixes (the platform's, the database instance's, the stack's WAF log group)."""
    log_groups = deployment.of_type("aws:cloudwatch/logGroup:LogGroup")
    identifier = deployment.one(DATABASE).state["identifier"]
    waf = f"aws-waf-logs-mlflow-{deployment.stack}"
    prefixes = [f"/mlflow-platform/{deployment.stack}/", f"/aws/rds/instance/{identifier}/"]
    if not deployment.config.access.internal:
        prefixes.append(waf)
    assert len(log_groups) == 2 + 2 + (0 if deployment.config.access.internal else 1)
    for log_group in log_groups:
        assert log_group.inputs["kmsKeyId"] == _platform_key_arn(deployment)
        assert any(log_group.inputs["name"].startswith(prefix) for prefix in prefixes), log_group.inputs["name"]
    key = next(k for k in deployment.of_type("aws:kms/key:Key") if k.name.endswith("-platform-key"))
    logs_statement = next(s for s in statements(json.loads(key.inputs["policy"])) if "Service" in s["Principal"])
    assert logs_statement["Principal"] == {"Service": f"logs.{deployment.config.region}.amazonaws.com"}
    patterns = logs_statement["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    region = deployment.config.region
    assert patterns == [f"arn:aws:logs:{region}:123456789012:log-group:{prefix}*" for prefix in prefixes]


# --- TLS in transit -----------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["prod", "minimal"])
def test_tls_in_transit_load_balancer(stack: str) -> None:
    """With a certificate: HTTPS on 443 with a TLS 1.3 policy; port 80 only redirects to it. (The one
    way to plain HTTP is the explicit key tested with the other weakenings below.)"""
    deployment = _deployment_of(stack)
    certificate = deployment.config.access.certificate_arn
    listeners = {listener.inputs["protocol"]: listener for listener in deployment.of_type(LISTENER)}
    assert set(listeners) == {"HTTPS", "HTTP"}
    https = listeners["HTTPS"].inputs
    assert (https["port"], https["certificateArn"]) == (443, certificate)
    assert https["sslPolicy"].startswith("ELBSecurityPolicy-TLS13-")
    [forward] = https["defaultActions"]
    assert forward["type"] == "forward"
    [redirect] = listeners["HTTP"].inputs["defaultActions"]
    assert redirect["type"] == "redirect"
    assert redirect["redirect"] == {"protocol": "HTTPS", "port": "443", "statusCode": "HTTP_301"}
    assert deployment.outputs["tracking_uri"].startswith("https://")


def test_tls_in_transit_database(deployment: Deployment) -> None:
    parameters = deployment.one("aws:rds/parameterGroup:ParameterGroup")
    assert {(p["name"], p["value"]) for p in parameters.inputs["parameters"]} == {("rds.force_ssl", "1")}
    database = deployment.one("aws:rds/instance:Instance")
    assert database.inputs["parameterGroupName"] == parameters.state["name"]
    connection = next(
        v
        for v in deployment.of_type("aws:secretsmanager/secretVersion:SecretVersion")
        if v.name.startswith("mlflow-db")
    )
    # The server checks the instance's certificate and host name (the RDS CA bundle is in the image).
    assert json.loads(plain(connection.inputs["secretString"]))["sslmode"] == "verify-full"


def test_tls_in_transit_s3(deployment: Deployment) -> None:
    """Both buckets (artifacts, audit logs) refuse any request that is not over TLS."""
    for component_type in (ARTIFACT_STORE, AUDIT_LOGS):
        policy = below(deployment, component_type, "aws:s3/bucketPolicy:BucketPolicy")
        document = json.loads(policy.inputs["policy"])
        bucket = below(deployment, component_type, "aws:s3/bucket:Bucket")
        assert policy.inputs["bucket"] == resource_id(bucket)
        bucket_arn = arn(bucket)
        insecure = next(s for s in statements(document) if s["Sid"] == "DenyInsecureTransport")
        assert insecure["Effect"] == "Deny"
        assert insecure["Principal"] == "*"
        assert insecure["Action"] == "s3:*"
        assert insecure["Resource"] == [bucket_arn, f"{bucket_arn}/*"]
        assert insecure["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


# --- network exposure ---------------------------------------------------------------------------------


def test_no_public_database(deployment: Deployment) -> None:
    database = deployment.one("aws:rds/instance:Instance")
    assert database.inputs["publiclyAccessible"] is False
    subnet_group = deployment.one("aws:rds/subnetGroup:SubnetGroup")
    assert database.inputs["dbSubnetGroupName"] == subnet_group.state["name"]
    isolated = [
        s for s in deployment.of_type("aws:ec2/subnet:Subnet") if s.inputs["tags"]["mlflow-platform:tier"] == "isolated"
    ]
    assert subnet_group.inputs["subnetIds"] == [resource_id(s) for s in isolated]
    # The route tables of the database's subnets have no route beyond the implicit local one, while
    # the other tiers' tables do (to the internet gateway or a NAT gateway).
    table_of = {
        a.inputs["subnetId"]: a.inputs["routeTableId"]
        for a in deployment.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation")
    }
    database_tables = {table_of[subnet] for subnet in subnet_group.inputs["subnetIds"]}
    routed_tables = {r.inputs["routeTableId"] for r in deployment.of_type("aws:ec2/route:Route")}
    assert database_tables.isdisjoint(routed_tables)
    assert set(table_of.values()) - database_tables <= routed_tables
    # Reachable from the server tasks' security group and from nothing else.
    [database_group_id] = database.inputs["vpcSecurityGroupIds"]
    ingress = [
        r
        for r in deployment.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r.inputs["securityGroupId"] == database_group_id
    ]
    server_group = next(
        g for g in deployment.of_type("aws:ec2/securityGroup:SecurityGroup") if g.name.endswith("-sg-server")
    )
    assert [(r.inputs["referencedSecurityGroupId"], r.inputs["fromPort"], r.inputs["toPort"]) for r in ingress] == [
        (resource_id(server_group), 5432, 5432)
    ]
    assert "cidrIpv4" not in ingress[0].inputs


def test_no_public_task_ip(deployment: Deployment) -> None:
    service = deployment.one("aws:ecs/service:Service")
    network = service.inputs["networkConfiguration"]
    assert network["assignPublicIp"] is False
    private = [
        s for s in deployment.of_type("aws:ec2/subnet:Subnet") if s.inputs["tags"]["mlflow-platform:tier"] == "private"
    ]
    assert network["subnets"] == [resource_id(s) for s in private]
    for subnet in deployment.of_type("aws:ec2/subnet:Subnet"):
        assert subnet.inputs["mapPublicIpOnLaunch"] is False, subnet.name


def test_load_balancer_reachable_only_from_configured_cidrs(deployment: Deployment) -> None:
    """Exactly one rule per listener port and configured client network; nothing else gets in."""
    balancer = deployment.one("aws:lb/loadBalancer:LoadBalancer")
    [group_id] = balancer.inputs["securityGroups"]
    ingress = [
        r
        for r in deployment.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r.inputs["securityGroupId"] == group_id
    ]
    ports = {listener.inputs["port"] for listener in deployment.of_type(LISTENER)}
    allowed = {str(cidr) for cidr in deployment.config.access.allowed_cidrs}
    opened = sorted((r.inputs["fromPort"], r.inputs["toPort"], r.inputs["cidrIpv4"]) for r in ingress)
    assert opened == sorted((port, port, cidr) for port in ports for cidr in allowed)
    assert all("referencedSecurityGroupId" not in r.inputs for r in ingress)


# --- secrets never in plain text ----------------------------------------------------------------------


def test_no_plaintext_secret_in_container_definitions(deployment: Deployment) -> None:
    [container] = container_definitions(deployment)
    rendered = json.dumps(container)
    for value in generated_secret_values(deployment):
        assert value not in rendered
    environment_names = {item["name"] for item in container["environment"]}
    assert environment_names.isdisjoint(server_env.SECRET_VARIABLES)
    assert {item["name"] for item in container["secrets"]} == set(server_env.SECRET_VARIABLES)
    for item in container["secrets"]:
        assert item["valueFrom"].startswith("arn:aws:secretsmanager:")


def test_no_plaintext_secret_in_outputs(deployment: Deployment) -> None:
    rendered = json.dumps(deployment.outputs)
    for value in generated_secret_values(deployment):
        assert value not in rendered
    parameter = deployment.one("aws:ssm/parameter:Parameter")
    for value in generated_secret_values(deployment):
        assert value not in parameter.inputs["insecureValue"]


def test_generated_secrets_travel_only_as_pulumi_secrets(deployment: Deployment) -> None:
    """Outside the values marked secret (encrypted in Pulumi's state), no resource input holds a generated value."""
    for record in deployment.resources:
        rendered = json.dumps(_without_secrets(record.inputs), default=str)
        for value in generated_secret_values(deployment):
            assert value not in rendered, f"{record.type} {record.name} holds a generated secret in plain text"
    for version in deployment.of_type("aws:secretsmanager/secretVersion:SecretVersion"):
        assert is_secret(version.inputs["secretString"]), version.name
    assert is_secret(deployment.one("aws:rds/instance:Instance").inputs["password"])


# --- least privilege ----------------------------------------------------------------------------------


def test_no_policy_allows_wildcard_actions_on_everything(deployment: Deployment) -> None:
    documents = policy_documents(deployment)
    # 3 role trust policies and 3 role policies (execution, task, flow logs), 3 key policies, 2 bucket
    # policies, the model reader's managed policy, the alarm topic's policy, the admin secret's policy: a
    # new one must be seen here.
    assert len(documents) == 14
    for record, document in documents:
        assert document["Version"] == "2012-10-17"
        for statement in statements(document):
            if statement["Effect"] != "Allow":
                continue
            actions = as_list(statement.get("Action"))
            assert "NotAction" not in statement, record.name
            assert "NotResource" not in statement, record.name
            assert actions, record.name
            assert all("*" not in action for action in actions), f"{record.name}: wildcard action in {actions}"


def test_least_privilege_resource_star_only_where_aws_requires_it(deployment: Deployment) -> None:
    """The one action granted on every resource is the ECR login, which has no resource-level scope;
    a new one must be reviewed here."""
    unscoped = {
        action
        for record, document in policy_documents(deployment)
        # A key policy's "*" means the key itself; trust policies have no Resource.
        if record.type in ("aws:iam/rolePolicy:RolePolicy", "aws:iam/policy:Policy")
        for statement in statements(document)
        if "*" in as_list(statement["Resource"])
        for action in as_list(statement["Action"])
    }
    assert unscoped == {"ecr:GetAuthorizationToken"}


def test_least_privilege_task_role(deployment: Deployment) -> None:
    document = role_policy(deployment, "-task")
    bucket_arn = arn(artifact_bucket(deployment))
    resources = {resource for s in statements(document) for resource in as_list(s["Resource"])}
    assert resources == {bucket_arn, f"{bucket_arn}/*", _artifact_key_arn(deployment)}
    actions = {action for s in statements(document) for action in as_list(s["Action"])}
    assert not any(a.startswith(("secretsmanager:", "iam:", "ecs:", "ssm:")) for a in actions)


def test_least_privilege_execution_role(deployment: Deployment) -> None:
    document = role_policy(deployment, "-execution")
    by_sid = {s["Sid"]: s for s in statements(document)}
    secret_arns = {arn(s) for s in deployment.of_type("aws:secretsmanager/secret:Secret")}
    assert set(by_sid["ReadTheseSecrets"]["Resource"]) == secret_arns
    assert by_sid["ReadTheseSecrets"]["Action"] == ["secretsmanager:GetSecretValue"]
    assert by_sid["DecryptTheseSecrets"]["Resource"] == [_platform_key_arn(deployment)]
    log_group = server_log_group(deployment)
    assert by_sid["WriteThisLogGroup"]["Resource"] == f"{arn(log_group)}:log-stream:*"
    repository = deployment.one("aws:ecr/repository:Repository")
    assert by_sid["PullThisRepository"]["Resource"] == [arn(repository)]
    assert by_sid["RegistryLoginHasNoResourceScope"]["Action"] == ["ecr:GetAuthorizationToken"]


def test_least_privilege_roles_have_no_managed_policies_and_trust_one_service(deployment: Deployment) -> None:
    trusted = {}
    for role in deployment.of_type("aws:iam/role:Role"):
        assert not role.inputs.get("managedPolicyArns"), role.name
        [trust] = statements(json.loads(role.inputs["assumeRolePolicy"]))
        assert trust["Action"] == "sts:AssumeRole"
        assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
        trusted[role.name] = trust["Principal"]
    assert trusted == {
        "mlflow-server-execution": {"Service": "ecs-tasks.amazonaws.com"},
        "mlflow-server-task": {"Service": "ecs-tasks.amazonaws.com"},
        "mlflow-network-flow-logs": {"Service": "vpc-flow-logs.amazonaws.com"},
    }


def test_least_privilege_flow_logs_role(deployment: Deployment) -> None:
    document = role_policy(deployment, "-flow-logs")
    log_group = next(g for g in deployment.of_type("aws:cloudwatch/logGroup:LogGroup") if g.name.endswith("-flow-logs"))
    [statement] = statements(document)
    assert statement["Resource"] == [arn(log_group), f"{arn(log_group)}:log-stream:*"]
    flow_log = deployment.one("aws:ec2/flowLog:FlowLog")
    assert flow_log.inputs["logDestination"] == arn(log_group)
    assert flow_log.inputs["trafficType"] == "ALL"
    assert flow_log.inputs["vpcId"] == resource_id(deployment.one("aws:ec2/vpc:Vpc"))


# --- logs, deletion protection ------------------------------------------------------------------------


def test_log_retention(deployment: Deployment) -> None:
    """The platform's own log groups (server, flow logs) keep `server.log_retention_days`; the audit
    trail's (the database's exported logs, the WAF's) keep `audit.log_retention_days`."""
    config = deployment.config
    for group in deployment.of_type("aws:cloudwatch/logGroup:LogGroup"):
        own = group.inputs["name"].startswith(f"/mlflow-platform/{deployment.stack}/")
        expected = config.server.log_retention_days if own else config.audit.log_retention_days
        assert group.inputs["retentionInDays"] == expected, group.name
    log_group = server_log_group(deployment)
    [container] = container_definitions(deployment)
    options = container["logConfiguration"]["options"]
    assert container["logConfiguration"]["logDriver"] == "awslogs"
    assert options["awslogs-group"] == log_group.inputs["name"]
    assert options["awslogs-region"] == deployment.config.region


def test_deletion_protection_in_prod(prod: Deployment) -> None:
    database = prod.one("aws:rds/instance:Instance")
    assert database.inputs["deletionProtection"] is True
    assert database.inputs["skipFinalSnapshot"] is False
    assert database.inputs["finalSnapshotIdentifier"] == "mlflow-db-prod-final"
    assert database.inputs["multiAz"] is True
    assert database.inputs["backupRetentionPeriod"] >= 7
    assert prod.one("aws:lb/loadBalancer:LoadBalancer").inputs["enableDeletionProtection"] is True
    assert artifact_bucket(prod).inputs["forceDestroy"] is False
    assert below(prod, AUDIT_LOGS, "aws:s3/bucket:Bucket").inputs["forceDestroy"] is False
    assert prod.one("aws:ecr/repository:Repository").inputs["forceDelete"] is False


# --- secure unless a key says otherwise ---------------------------------------------------------------


def _deletion_protection(deployment: Deployment) -> bool:
    return bool(deployment.one(DATABASE).inputs["deletionProtection"])


def _final_snapshot(deployment: Deployment) -> tuple[bool, str | None]:
    database = deployment.one(DATABASE).inputs
    return database["skipFinalSnapshot"], database.get("finalSnapshotIdentifier")


def _destroy_logs_with_content(deployment: Deployment) -> bool:
    return bool(below(deployment, AUDIT_LOGS, "aws:s3/bucket:Bucket").inputs["forceDestroy"])


def _performance_insights(deployment: Deployment) -> tuple[bool, bool]:
    """On, and encrypted with the platform key."""
    database = deployment.one(DATABASE).inputs
    encrypted = database.get("performanceInsightsKmsKeyId") == _platform_key_arn(deployment)
    return database["performanceInsightsEnabled"], encrypted


def _destroy_with_content(deployment: Deployment) -> tuple[bool, bool]:
    bucket = artifact_bucket(deployment).inputs["forceDestroy"]
    images = deployment.one("aws:ecr/repository:Repository").inputs["forceDelete"]
    return bucket, images


def _listeners(deployment: Deployment) -> list[tuple[str, str]]:
    return sorted(
        (listener.inputs["protocol"], action["type"])
        for listener in deployment.of_type(LISTENER)
        for action in listener.inputs["defaultActions"]
    )


# The key a dev stack writes down, what it reads on the declared resources without the key, and with it.
WEAKENINGS: list[tuple[str, dict[str, Any], Callable[[Deployment], Any], Any, Any]] = [
    (
        "database.deletion_protection",
        {"database": {"deletion_protection": False}},
        _deletion_protection,
        True,
        False,
    ),
    (
        "database.skip_final_snapshot",
        {"database": {"skip_final_snapshot": True}},
        _final_snapshot,
        (False, "mlflow-db-minimal-final"),
        (True, None),
    ),
    (
        "artifacts.force_destroy",
        {"artifacts": {"force_destroy": True}},
        _destroy_with_content,
        (False, False),
        (True, True),
    ),
    (
        "audit.force_destroy",
        {"audit": {"force_destroy": True}},
        _destroy_logs_with_content,
        False,
        True,
    ),
    (
        "database.performance_insights",
        {"database": {"performance_insights": False}},
        _performance_insights,
        (True, True),
        (False, False),
    ),
    (
        "access.allow_insecure_http",
        {"access": {"allowed_cidrs": [CLIENTS], "allow_insecure_http": True}},
        _listeners,
        [("HTTP", "redirect"), ("HTTPS", "forward")],
        [("HTTP", "forward")],
    ),
]


@pytest.mark.parametrize(
    ("change", "read", "secure", "weakened"),
    [case[1:] for case in WEAKENINGS],
    ids=[case[0] for case in WEAKENINGS],
)
def test_each_weakening_needs_its_own_key(
    change: dict[str, Any], read: Callable[[Deployment], Any], secure: Any, weakened: Any
) -> None:
    assert read(_minimal()) == secure
    assert read(run_program(minimal_values(**change), stack="minimal")) == weakened


def test_no_certificate_without_the_explicit_key_is_refused() -> None:
    error, declared = run_failing_program(minimal_values(access={"allowed_cidrs": [CLIENTS]}))
    assert isinstance(error, pulumi.RunError), repr(error)
    assert "access.certificate_arn: not set, so the load balancer would serve plain HTTP" in str(error)
    assert "allow_insecure_http: true" in str(error)
    assert declared == 0


PROD_REFUSALS: list[tuple[str, dict[str, str]]] = [
    ("access.certificate_arn", without(stack_values("prod"), "access", "certificate_arn")),
    ("access.allow_insecure_http", with_section(stack_values("prod"), "access", {"allow_insecure_http": True})),
    ("database.multi_az", with_section(stack_values("prod"), "database", {"multi_az": False})),
    ("database.backup_retention_days", with_section(stack_values("prod"), "database", {"backup_retention_days": 3})),
    ("database.deletion_protection", with_section(stack_values("prod"), "database", {"deletion_protection": False})),
    ("database.skip_final_snapshot", with_section(stack_values("prod"), "database", {"skip_final_snapshot": True})),
    ("artifacts.force_destroy", with_section(stack_values("prod"), "artifacts", {"force_destroy": True})),
    ("server.min_count", with_section(stack_values("prod"), "server", {"min_count": 1})),
    ("alerts.emails", with_section(stack_values("prod"), "alerts", {"emails": []})),
    ("database.performance_insights", with_section(stack_values("prod"), "database", {"performance_insights": False})),
    ("audit.force_destroy", with_section(stack_values("prod"), "audit", {"force_destroy": True})),
    ("access.allowed_cidrs", with_section(stack_values("prod"), "access", {"allowed_cidrs": ["0.0.0.0/0"]})),
]


@pytest.mark.parametrize(("key", "values"), PROD_REFUSALS, ids=[key for key, _ in PROD_REFUSALS])
def test_prod_refuses_each_weakening_naming_its_key(key: str, values: dict[str, str]) -> None:
    error, declared = run_failing_program(values, stack="prod")
    assert isinstance(error, pulumi.RunError), repr(error)
    problems = [line.removeprefix("  - ") for line in str(error).splitlines()[1:]]
    assert [problem.split(":")[0] for problem in problems] == [key], problems
    assert declared == 0


# --- container definition shape -----------------------------------------------------------------------


def test_task_definition_is_valid_for_register_task_definition(deployment: Deployment) -> None:
    task = deployment.one("aws:ecs/taskDefinition:TaskDefinition")
    request = {
        "family": task.inputs["family"],
        "taskRoleArn": task.inputs["taskRoleArn"],
        "executionRoleArn": task.inputs["executionRoleArn"],
        "networkMode": task.inputs["networkMode"],
        "requiresCompatibilities": task.inputs["requiresCompatibilities"],
        "cpu": task.inputs["cpu"],
        "memory": task.inputs["memory"],
        "runtimePlatform": task.inputs["runtimePlatform"],
        "volumes": task.inputs["volumes"],
        "containerDefinitions": container_definitions(deployment),
    }
    shape = (
        botocore.session.get_session().get_service_model("ecs").operation_model("RegisterTaskDefinition").input_shape
    )
    assert shape is not None
    report = ParamValidator().validate(request, shape)
    assert not report.has_errors(), report.generate_report()


def test_root_filesystem_is_read_only_but_tmp_is_writable_by_the_server(deployment: Deployment) -> None:
    """The only writable path is a task-scoped bind mount at /tmp; the image makes it world-writable with
    the sticky bit (ECS copies the mode of a directory the image declares a VOLUME), so uid 10001 can
    write its auth ini there."""
    [container] = container_definitions(deployment)
    task = deployment.one("aws:ecs/taskDefinition:TaskDefinition")
    assert container["readonlyRootFilesystem"] is True
    volumes = {volume["name"]: volume for volume in task.inputs["volumes"]}
    [mount] = container["mountPoints"]
    assert mount["containerPath"] == "/tmp"
    assert volumes[mount["sourceVolume"]] == {"name": mount["sourceVolume"]}  # a bind mount, nothing from the host
    dockerfile = (REPO / "platform" / "server" / "Dockerfile").read_text()
    assert "chmod 1777 /tmp" in dockerfile
    assert 'VOLUME ["/tmp"]' in dockerfile


def test_container_runs_as_non_root_on_port_5000(deployment: Deployment) -> None:
    [container] = container_definitions(deployment)
    user = container["user"]
    assert user.split(":")[0] not in ("0", "root")
    assert container["portMappings"] == [{"containerPort": 5000, "protocol": "tcp", "name": "http"}]
    assert container["linuxParameters"]["capabilities"] == {"drop": ["ALL"]}
    assert container.get("privileged") is not True


@pytest.mark.parametrize("key", ["client_config", "tracking_uri", "credentials_secret_arn"])
def test_outputs_are_not_secret_and_hold_no_credentials(deployment: Deployment, key: str) -> None:
    assert key not in deployment.secret_outputs
    rendered = json.dumps(deployment.outputs[key])
    assert "password" not in rendered.lower()
