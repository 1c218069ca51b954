"""Operations, as the program declares them for both example stacks: alerting, deploys that wait for
healthy tasks and drain them, a retained database snapshot before each MLflow version runs, the audit
trail (access logs, database logs, Performance Insights), and the web ACL of an internet-facing load
balancer; and the configs that are refused, naming the key."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pulumi
import pytest

from mlflow_platform.infra import platform as infra_platform
from mlflow_platform.server import contract
from mlflow_platform.server.entrypoint import mlflow_server_command
from mlflow_platform.server.settings import ServerSettings
from tests.infra.conftest import REPO, Deployment, Recorded, run_failing_program, run_program
from tests.infra.helpers import (
    arn,
    artifact_bucket,
    below,
    children,
    component,
    container_definitions,
    plain,
    resource_id,
    stack_values,
    statements,
    with_section,
)
from toolkit.errors import ConfigError
from toolkit.platform_config import PlatformConfig

ALERTING = "mlflow-platform:operations:Alerting"
AUDIT = "mlflow-platform:operations:AuditLogs"
EDGE = "mlflow-platform:network:EdgeProtection"
SNAPSHOT = "aws:rds/snapshot:Snapshot"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
DATABASE = "aws:rds/instance:Instance"
SERVICE = "aws:ecs/service:Service"


def _alarms(deployment: Deployment) -> dict[str, Recorded]:
    alerting = component(deployment, ALERTING)
    return {alarm.name.removeprefix(f"{alerting.name}-"): alarm for alarm in children(deployment, alerting, ALARM)}


def _topic(deployment: Deployment) -> Recorded:
    return below(deployment, ALERTING, "aws:sns/topic:Topic")


def _database_identifier(deployment: Deployment) -> str:
    value = deployment.one(DATABASE).state["identifier"]
    assert isinstance(value, str)
    return value


def _log_group(deployment: Deployment, name: str) -> Recorded:
    return next(g for g in deployment.of_type("aws:cloudwatch/logGroup:LogGroup") if g.inputs["name"] == name)


# --- 1. alerting --------------------------------------------------------------------------------------


def test_alarm_topic_is_encrypted_with_a_key_only_the_alarm_and_database_services_may_publish_with(
    deployment: Deployment,
) -> None:
    topic = _topic(deployment)
    key = below(deployment, ALERTING, "aws:kms/key:Key")
    assert topic.inputs["kmsMasterKeyId"] == arn(key)
    assert key.inputs["enableKeyRotation"] is True
    publishers = next(s for s in statements(json.loads(key.inputs["policy"])) if "Service" in s["Principal"])
    assert publishers["Principal"] == {"Service": ["cloudwatch.amazonaws.com", "events.rds.amazonaws.com"]}
    assert publishers["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert publishers["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    policy = below(deployment, ALERTING, "aws:sns/topicPolicy:TopicPolicy")
    assert policy.inputs["arn"] == arn(topic)
    by_sid = {s["Sid"]: s for s in statements(json.loads(policy.inputs["policy"]))}
    allowed = by_sid["AlarmsAndDatabaseEventsOfThisAccount"]
    assert (allowed["Effect"], allowed["Action"], allowed["Resource"]) == ("Allow", "sns:Publish", arn(topic))
    assert allowed["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    assert by_sid["DenyInsecureTransport"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_each_configured_address_is_subscribed_by_email(deployment: Deployment) -> None:
    subscriptions = below_all(deployment, ALERTING, "aws:sns/topicSubscription:TopicSubscription")
    assert sorted(s.inputs["endpoint"] for s in subscriptions) == sorted(deployment.config.alerts.emails)
    for subscription in subscriptions:
        assert subscription.inputs["protocol"] == "email"
        assert subscription.inputs["topic"] == arn(_topic(deployment))


def test_prod_mails_someone_dev_may_not(dev: Deployment, prod: Deployment) -> None:
    assert below_all(prod, ALERTING, "aws:sns/topicSubscription:TopicSubscription")
    assert not below_all(dev, ALERTING, "aws:sns/topicSubscription:TopicSubscription")


def below_all(deployment: Deployment, component_type: str, typ: str) -> list[Recorded]:
    return children(deployment, component(deployment, component_type), typ)


def test_every_alarm_notifies_the_topic_when_it_fires_and_when_it_clears(deployment: Deployment) -> None:
    alarms = _alarms(deployment)
    assert set(alarms) == {
        "target-5xx",
        "unhealthy-targets",
        "no-healthy-targets",
        "running-tasks",
        "database-cpu",
        "database-free-storage",
        "database-connections",
    }
    minutes = deployment.config.alerts.evaluation_minutes
    for name, alarm in alarms.items():
        assert alarm.inputs["alarmActions"] == [arn(_topic(deployment))], name
        assert alarm.inputs["okActions"] == [arn(_topic(deployment))], name
        assert (alarm.inputs["evaluationPeriods"], alarm.inputs["datapointsToAlarm"]) == (minutes, minutes), name


def test_target_alarms_watch_this_load_balancer_and_target_group(deployment: Deployment) -> None:
    alarms = _alarms(deployment)
    balancer = deployment.one("aws:lb/loadBalancer:LoadBalancer")
    target_group = deployment.one("aws:lb/targetGroup:TargetGroup")
    dimensions = {"LoadBalancer": balancer.state["arnSuffix"], "TargetGroup": target_group.state["arnSuffix"]}

    errors = alarms["target-5xx"].inputs
    assert errors["threshold"] == deployment.config.alerts.target_5xx_percent
    assert errors["comparisonOperator"] == "GreaterThanThreshold"
    queries = {query["id"]: query for query in errors["metricQueries"]}
    assert queries["errors"]["metric"]["metricName"] == "HTTPCode_Target_5XX_Count"
    assert queries["requests"]["metric"]["metricName"] == "RequestCount"
    for metric in ("errors", "requests"):
        assert queries[metric]["metric"]["dimensions"] == dimensions
        assert queries[metric]["metric"]["stat"] == "Sum"
    assert [q["id"] for q in errors["metricQueries"] if q.get("returnData")] == ["percent"]
    assert "100 * FILL(errors, 0) / requests" in queries["percent"]["expression"]

    unhealthy = alarms["unhealthy-targets"].inputs
    assert (unhealthy["metricName"], unhealthy["dimensions"]) == ("UnHealthyHostCount", dimensions)
    assert (unhealthy["comparisonOperator"], unhealthy["threshold"]) == ("GreaterThanThreshold", 0)
    none_healthy = alarms["no-healthy-targets"].inputs
    assert (none_healthy["metricName"], none_healthy["dimensions"]) == ("HealthyHostCount", dimensions)
    assert (none_healthy["comparisonOperator"], none_healthy["threshold"]) == ("LessThanThreshold", 1)
    # A service whose tasks are all gone reports no data: that is an outage, not silence.
    assert none_healthy["treatMissingData"] == "breaching"


def test_running_tasks_alarm_fires_below_the_service_minimum(deployment: Deployment) -> None:
    alarm = _alarms(deployment)["running-tasks"].inputs
    assert (alarm["namespace"], alarm["metricName"]) == ("ECS/ContainerInsights", "RunningTaskCount")
    assert alarm["dimensions"] == {
        "ClusterName": deployment.one("aws:ecs/cluster:Cluster").state["name"],
        "ServiceName": deployment.one(SERVICE).state["name"],
    }
    assert (alarm["comparisonOperator"], alarm["threshold"]) == (
        "LessThanThreshold",
        deployment.config.server.min_count,
    )
    assert alarm["treatMissingData"] == "breaching"


def test_database_alarms_watch_this_instance_with_the_configured_thresholds(deployment: Deployment) -> None:
    alarms = _alarms(deployment)
    config = deployment.config.alerts
    dimensions = {"DBInstanceIdentifier": _database_identifier(deployment)}
    expected = {
        "database-cpu": ("CPUUtilization", "GreaterThanThreshold", config.database_cpu_percent),
        "database-free-storage": ("FreeStorageSpace", "LessThanThreshold", config.database_free_storage_gib * 1024**3),
        "database-connections": ("DatabaseConnections", "GreaterThanThreshold", config.database_connections),
    }
    for name, (metric, comparison, threshold) in expected.items():
        inputs = alarms[name].inputs
        assert (inputs["namespace"], inputs["dimensions"]) == ("AWS/RDS", dimensions), name
        assert (inputs["metricName"], inputs["comparisonOperator"], inputs["threshold"]) == (
            metric,
            comparison,
            threshold,
        )


def test_thresholds_come_from_the_config() -> None:
    changed = {
        "target_5xx_percent": 12.5,
        "database_cpu_percent": 95,
        "database_free_storage_gib": 40,
        "database_connections": 450,
        "evaluation_minutes": 3,
    }
    deployment = run_program(with_section(stack_values("dev"), "alerts", changed), stack="dev")
    alarms = _alarms(deployment)
    assert alarms["target-5xx"].inputs["threshold"] == 12.5
    assert alarms["database-cpu"].inputs["threshold"] == 95
    assert alarms["database-free-storage"].inputs["threshold"] == 40 * 1024**3
    assert alarms["database-connections"].inputs["threshold"] == 450
    assert {alarm.inputs["evaluationPeriods"] for alarm in alarms.values()} == {3}


def test_no_running_tasks_alarm_when_the_service_may_scale_to_zero() -> None:
    values = with_section(stack_values("dev"), "server", {"min_count": 0, "desired_count": 0})
    assert "running-tasks" not in _alarms(run_program(values, stack="dev"))


def test_database_events_of_this_instance_reach_the_topic(deployment: Deployment) -> None:
    subscription = below(deployment, ALERTING, "aws:rds/eventSubscription:EventSubscription")
    assert subscription.inputs["snsTopic"] == arn(_topic(deployment))
    assert subscription.inputs["sourceType"] == "db-instance"
    assert subscription.inputs["sourceIds"] == [_database_identifier(deployment)]
    assert {"failover", "low storage", "maintenance"} <= set(subscription.inputs["eventCategories"])


def test_stack_output_names_the_alarm_topic(deployment: Deployment) -> None:
    assert deployment.outputs["alarm_topic_arn"] == arn(_topic(deployment))


@pytest.mark.parametrize(
    ("alerts", "expected"),
    [
        ({"emails": ["not-an-address"]}, "alerts.emails:"),
        ({"emails": ["a@example.org", "a@example.org"]}, "alerts.emails:"),
        ({"target_5xx_percent": 0}, "alerts.target_5xx_percent:"),
        ({"evaluation_minutes": 0}, "alerts.evaluation_minutes:"),
        ({"email": ["a@example.org"]}, "alerts.email:"),
    ],
)
def test_bad_alerts_config_is_refused_naming_the_key(alerts: dict[str, Any], expected: str) -> None:
    data = {"region": "eu-west-1", "access": {"allowed_cidrs": ["192.0.2.0/24"], "allow_insecure_http": True}}
    with pytest.raises(ConfigError) as caught:
        PlatformConfig.parse({**data, "alerts": alerts})
    assert [problem.startswith(expected) for problem in caught.value.problems] == [True], caught.value.problems


# --- 2. deploys that tell the truth -------------------------------------------------------------------


def test_pulumi_up_waits_for_healthy_tasks_and_stops_them_gracefully(deployment: Deployment) -> None:
    service = deployment.one(SERVICE)
    assert service.inputs["waitForSteadyState"] is True
    assert service.inputs["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    target_group = deployment.one("aws:lb/targetGroup:TargetGroup")
    drain = deployment.config.server.drain_seconds
    assert target_group.inputs["deregistrationDelay"] == drain >= 120
    [container] = container_definitions(deployment)
    # Fargate's maximum stop timeout; the server bounds its own shutdown below it.
    assert container["stopTimeout"] == contract.STOP_TIMEOUT_SECONDS == 120
    assert contract.GRACEFUL_SHUTDOWN_SECONDS < contract.STOP_TIMEOUT_SECONDS


def test_the_server_bounds_its_graceful_shutdown_below_the_stop_timeout() -> None:
    settings = ServerSettings.from_environ(
        {
            contract.DATABASE_URI: "sqlite:////tmp/drain.db",
            contract.ADMIN_SECRET: json.dumps({"username": "admin", "password": "a-long-password-42"}),
            contract.FLASK_SECRET_KEY: "k" * 32,
            contract.ARTIFACTS_DESTINATION: "s3://bucket",
        }
    )
    command = mlflow_server_command(settings)
    options = command[command.index("--uvicorn-opts") + 1].split()
    assert options == ["--timeout-graceful-shutdown", str(contract.GRACEFUL_SHUTDOWN_SECONDS)]


def test_drain_shorter_than_the_stop_timeout_is_refused_naming_the_key() -> None:
    error, declared = run_failing_program(with_section(stack_values("dev"), "server", {"drain_seconds": 30}))
    assert isinstance(error, pulumi.RunError), repr(error)
    assert "server.drain_seconds:" in str(error)
    assert declared == 0


# --- 3. safe upgrades ---------------------------------------------------------------------------------


def test_the_service_waits_for_a_retained_snapshot_of_this_database(deployment: Deployment) -> None:
    snapshot = deployment.one(SNAPSHOT)
    identifier = _database_identifier(deployment)
    assert snapshot.inputs["dbInstanceIdentifier"] == identifier
    version = deployment.config.server.mlflow_version
    assert snapshot.inputs["dbSnapshotIdentifier"].startswith(
        f"{identifier}-before-mlflow-{version.replace('.', '-')}-"
    )
    assert snapshot.retain_on_delete is True
    assert snapshot.urn in deployment.one(SERVICE).dependencies
    assert deployment.outputs["upgrade_snapshot_id"] == snapshot.inputs["dbSnapshotIdentifier"]


def _upgraded_image_context(tmp_path: Path, version: str) -> Path:
    """The server folder of a checkout whose lock moved MLflow to `version`."""
    context = tmp_path / "server"
    shutil.copytree(REPO / "platform" / "server", context, ignore=shutil.ignore_patterns("__pycache__"))
    requirements = context / "requirements.txt"
    requirements.write_text(re.sub(r"^mlflow==\S+", f"mlflow=={version}", requirements.read_text(), flags=re.M))
    return context


def test_an_mlflow_version_change_adds_a_snapshot_the_service_waits_for_and_keeps_the_earlier_one(
    dev: Deployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two `pulumi up`s, before and after MLflow moves (the image's pin and `server.mlflow_version`). The
    second declares a new snapshot resource (another name: Pulumi creates it) with another identifier,
    and the service update waits for it; the first one's snapshot, no longer declared, is retained on
    delete, so AWS keeps it (and `pulumi destroy` keeps both)."""
    before = dev.one(SNAPSHOT)
    upgraded_version = "3.99.0"
    assert dev.config.server.mlflow_version != upgraded_version
    monkeypatch.setattr(infra_platform, "server_image_context", lambda: _upgraded_image_context(tmp_path, "3.99.0"))
    after_values = with_section(stack_values("dev"), "server", {"mlflow_version": upgraded_version})
    after = run_program(after_values, stack="dev")
    [snapshot] = after.of_type(SNAPSHOT)
    assert snapshot.name != before.name
    assert upgraded_version in snapshot.name
    assert before.name not in {r.name for r in after.resources}
    assert snapshot.inputs["dbSnapshotIdentifier"] != before.inputs["dbSnapshotIdentifier"]
    assert "-before-mlflow-3-99-0-" in snapshot.inputs["dbSnapshotIdentifier"]
    assert snapshot.urn in after.one(SERVICE).dependencies
    assert before.retain_on_delete is True
    assert snapshot.retain_on_delete is True
    # The database itself is the same instance: only the server's version changed.
    assert after.one(DATABASE).inputs["identifier"] == dev.one(DATABASE).inputs["identifier"]


def test_a_version_key_that_is_not_the_images_mlflow_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An image whose MLflow moved while the key stayed would migrate the schema without a snapshot for
    the new version; the stack is refused instead, naming the key."""
    monkeypatch.setattr(infra_platform, "server_image_context", lambda: _upgraded_image_context(tmp_path, "3.99.0"))
    error, declared = run_failing_program(stack_values("dev"), stack="dev")
    assert isinstance(error, ConfigError), repr(error)
    assert "server.mlflow_version: got '3.17.2', expected '3.99.0'" in str(error)
    assert declared == 0


def test_a_prebuilt_image_is_named_by_the_version_key() -> None:
    image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/mlflow-server:3.16.0-0123456789abcdef"
    values = with_section(stack_values("dev"), "server", {"image": image, "mlflow_version": "3.16.0"})
    snapshot = run_program(values, stack="dev").one(SNAPSHOT)
    assert "-before-mlflow-3-16-0-" in snapshot.inputs["dbSnapshotIdentifier"]


def test_a_rollback_restores_the_database_from_a_snapshot() -> None:
    values = with_section(
        stack_values("prod"), "database", {"restore_from_snapshot": "mlflow-db-prod-before-mlflow-3-17-2-0a1b2c3d"}
    )
    deployment = run_program(values, stack="prod")
    database = deployment.one(DATABASE)
    assert database.inputs["snapshotIdentifier"] == "mlflow-db-prod-before-mlflow-3-17-2-0a1b2c3d"
    assert database.inputs["identifier"] == "mlflow-db-prod"


def test_the_database_identifier_is_fixed_and_a_stack_may_keep_its_own(deployment: Deployment) -> None:
    assert deployment.one(DATABASE).inputs["identifier"] == f"mlflow-db-{deployment.stack}"
    assert "snapshotIdentifier" not in deployment.one(DATABASE).inputs
    kept = run_program(
        with_section(stack_values("dev"), "database", {"identifier": "mlflow-db-postgres-1a2b3c4"}), stack="dev"
    )
    assert kept.one(DATABASE).inputs["identifier"] == "mlflow-db-postgres-1a2b3c4"
    assert _log_group(kept, "/aws/rds/instance/mlflow-db-postgres-1a2b3c4/postgresql")


@pytest.mark.parametrize(
    ("database", "key"),
    [
        ({"identifier": "Mlflow--db"}, "database.identifier:"),
        ({"restore_from_snapshot": "1-not-a-snapshot"}, "database.restore_from_snapshot:"),
        ({"performance_insights_retention_days": 30}, "database.performance_insights_retention_days:"),
    ],
)
def test_bad_database_keys_are_refused_naming_the_key(database: dict[str, Any], key: str) -> None:
    error, declared = run_failing_program(with_section(stack_values("dev"), "database", database))
    assert isinstance(error, pulumi.RunError), repr(error)
    assert key in str(error)
    assert declared == 0


# --- 4. audit trail -----------------------------------------------------------------------------------


def test_log_bucket_is_private_encrypted_versioned_and_expires_logs(deployment: Deployment) -> None:
    bucket = below(deployment, AUDIT, "aws:s3/bucket:Bucket")
    bucket_id = resource_id(bucket)
    block = below(deployment, AUDIT, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert {k: v for k, v in block.inputs.items() if k != "bucket"} == {
        "blockPublicAcls": True,
        "blockPublicPolicy": True,
        "ignorePublicAcls": True,
        "restrictPublicBuckets": True,
    }
    ownership = below(deployment, AUDIT, "aws:s3/bucketOwnershipControls:BucketOwnershipControls")
    assert ownership.inputs["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    encryption = below(
        deployment, AUDIT, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    )
    # Load balancers deliver access logs only to SSE-S3 buckets.
    [rule] = encryption.inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}
    versioning = below(deployment, AUDIT, "aws:s3/bucketVersioning:BucketVersioning")
    assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"
    lifecycle = below(deployment, AUDIT, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    [expiry] = lifecycle.inputs["rules"]
    assert expiry["expiration"]["days"] == deployment.config.audit.log_retention_days
    for record in (block, ownership, encryption, versioning, lifecycle):
        assert record.inputs["bucket"] == bucket_id
    assert bucket.inputs["forceDestroy"] is deployment.config.audit.force_destroy


def test_load_balancer_writes_access_logs_to_the_log_bucket(deployment: Deployment) -> None:
    bucket = below(deployment, AUDIT, "aws:s3/bucket:Bucket")
    policy = below(deployment, AUDIT, "aws:s3/bucketPolicy:BucketPolicy")
    balancer = deployment.one("aws:lb/loadBalancer:LoadBalancer")
    logs = balancer.inputs["accessLogs"]
    assert logs == {"bucket": bucket.state["bucket"], "prefix": "load-balancer", "enabled": True}
    # ELB checks that it may write when logging is turned on: the policy exists before the load balancer.
    assert policy.urn in balancer.dependencies
    by_sid = {s["Sid"]: s for s in statements(json.loads(policy.inputs["policy"]))}
    delivery = by_sid["LoadBalancerLogDelivery"]
    path = f"{arn(bucket)}/load-balancer/AWSLogs/123456789012/*"
    assert delivery["Principal"] == {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"}
    assert (delivery["Action"], delivery["Resource"]) == ("s3:PutObject", path)
    # eu-west-1 predates the service principal: its regional ELB account writes there.
    regional = by_sid["LoadBalancerLogDeliveryRegionalAccount"]
    assert regional["Principal"] == {"AWS": "arn:aws:iam::156460612806:root"}
    assert (regional["Action"], regional["Resource"]) == ("s3:PutObject", path)


def test_artifact_bucket_access_is_logged_into_the_log_bucket(deployment: Deployment) -> None:
    bucket = below(deployment, AUDIT, "aws:s3/bucket:Bucket")
    artifacts = artifact_bucket(deployment)
    logging = below(deployment, AUDIT, "aws:s3/bucketLogging:BucketLogging")
    assert logging.inputs["bucket"] == artifacts.state["bucket"]
    assert logging.inputs["targetBucket"] == bucket.state["bucket"]
    assert logging.inputs["targetPrefix"] == "s3-access/artifacts/"
    policy = below(deployment, AUDIT, "aws:s3/bucketPolicy:BucketPolicy")
    by_sid = {s["Sid"]: s for s in statements(json.loads(policy.inputs["policy"]))}
    writer = by_sid["ArtifactBucketAccessLogs"]
    assert writer["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert writer["Resource"] == f"{arn(bucket)}/s3-access/artifacts/*"
    assert writer["Condition"] == {
        "ArnLike": {"aws:SourceArn": arn(artifacts)},
        "StringEquals": {"aws:SourceAccount": "123456789012"},
    }
    assert deployment.outputs["audit_log_bucket"] == bucket.state["bucket"]


def test_database_exports_its_logs_into_encrypted_log_groups_made_first(deployment: Deployment) -> None:
    database = deployment.one(DATABASE)
    identifier = _database_identifier(deployment)
    assert database.inputs["enabledCloudwatchLogsExports"] == ["postgresql", "upgrade"]
    platform_key = next(k for k in deployment.of_type("aws:kms/key:Key") if k.name.endswith("-platform-key"))
    for log in ("postgresql", "upgrade"):
        group = _log_group(deployment, f"/aws/rds/instance/{identifier}/{log}")
        assert group.inputs["retentionInDays"] == deployment.config.audit.log_retention_days
        assert group.inputs["kmsKeyId"] == arn(platform_key)
        # RDS would create the group itself (unencrypted, kept forever) if the instance came first.
        assert group.urn in database.dependencies


def test_performance_insights_on_and_encrypted_with_the_platform_key(deployment: Deployment) -> None:
    database = deployment.one(DATABASE).inputs
    platform_key = next(k for k in deployment.of_type("aws:kms/key:Key") if k.name.endswith("-platform-key"))
    assert database["performanceInsightsEnabled"] is True
    assert database["performanceInsightsKmsKeyId"] == arn(platform_key)
    assert (
        database["performanceInsightsRetentionPeriod"] == deployment.config.database.performance_insights_retention_days
    )


# --- 5. edge protection -------------------------------------------------------------------------------


def test_internet_facing_load_balancer_has_a_web_acl_with_managed_rules_and_a_rate_limit(
    deployment: Deployment,
) -> None:
    assert deployment.config.access.internal is False
    acl = below(deployment, EDGE, "aws:wafv2/webAcl:WebAcl")
    assert acl.inputs["scope"] == "REGIONAL"
    assert acl.inputs["defaultAction"] == {"allow": {}}
    rules = {rule["name"]: rule for rule in acl.inputs["rules"]}
    assert set(rules) == {"rate-limit-per-ip", "AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet"}
    rate = rules["rate-limit-per-ip"]
    assert rate["action"] == {"block": {}}
    assert rate["statement"]["rateBasedStatement"]["aggregateKeyType"] == "IP"
    assert rate["statement"]["rateBasedStatement"]["limit"] == deployment.config.access.rate_limit_per_ip
    for name in ("AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet"):
        statement = rules[name]["statement"]["managedRuleGroupStatement"]
        assert (statement["name"], statement["vendorName"]) == (name, "AWS")
        assert rules[name]["overrideAction"] == {"none": {}}
        # Only rules that would refuse artifact bytes or artifact names count instead of blocking.
        for override in statement["ruleActionOverrides"]:
            assert override["actionToUse"] == {"count": {}}
            assert override["name"].endswith(("_BODY", "RestrictedExtensions_URIPATH")), override["name"]
    association = below(deployment, EDGE, "aws:wafv2/webAclAssociation:WebAclAssociation")
    assert association.inputs["resourceArn"] == arn(deployment.one("aws:lb/loadBalancer:LoadBalancer"))
    assert association.inputs["webAclArn"] == arn(acl)


def test_web_acl_logs_to_its_own_encrypted_log_group_without_credentials(deployment: Deployment) -> None:
    acl = below(deployment, EDGE, "aws:wafv2/webAcl:WebAcl")
    logging = below(deployment, EDGE, "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration")
    group = below(deployment, EDGE, "aws:cloudwatch/logGroup:LogGroup")
    assert group.inputs["name"] == f"aws-waf-logs-mlflow-{deployment.stack}"
    assert group.inputs["retentionInDays"] == deployment.config.audit.log_retention_days
    assert logging.inputs["resourceArn"] == arn(acl)
    assert logging.inputs["logDestinationConfigs"] == [arn(group)]
    # Basic auth sends the password with every request.
    redacted = {field["singleHeader"]["name"] for field in logging.inputs["redactedFields"]}
    assert redacted == {"authorization", "cookie"}


def test_rate_limit_comes_from_the_config() -> None:
    values = with_section(stack_values("dev"), "access", {"rate_limit_per_ip": 500})
    acl = run_program(values, stack="dev").one("aws:wafv2/webAcl:WebAcl")
    [rate] = [rule for rule in acl.inputs["rules"] if rule["name"] == "rate-limit-per-ip"]
    assert rate["statement"]["rateBasedStatement"]["limit"] == 500


def test_internal_load_balancer_has_no_web_acl() -> None:
    deployment = run_program(with_section(stack_values("prod"), "access", {"internal": True}), stack="prod")
    for typ in (
        "aws:wafv2/webAcl:WebAcl",
        "aws:wafv2/webAclAssociation:WebAclAssociation",
        "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration",
    ):
        assert deployment.of_type(typ) == []
    assert not [g for g in deployment.of_type("aws:cloudwatch/logGroup:LogGroup") if "waf" in g.inputs["name"]]


def test_prod_accepts_the_whole_internet_only_with_the_explicit_key() -> None:
    everyone = with_section(stack_values("prod"), "access", {"allowed_cidrs": ["0.0.0.0/0"]})
    error, declared = run_failing_program(everyone, stack="prod")
    assert isinstance(error, pulumi.RunError), repr(error)
    assert "access.allowed_cidrs: contains 0.0.0.0/0" in str(error)
    assert "access.allow_open_internet: true" in str(error)
    assert declared == 0
    accepted = run_program(with_section(everyone, "access", {"allow_open_internet": True}), stack="prod")
    ingress = accepted.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert "0.0.0.0/0" in {rule.inputs.get("cidrIpv4") for rule in ingress}
    assert accepted.of_type("aws:wafv2/webAclAssociation:WebAclAssociation")


# --- 6. hardening -------------------------------------------------------------------------------------


def test_the_server_verifies_the_database_certificate(deployment: Deployment) -> None:
    connection = next(
        v
        for v in deployment.of_type("aws:secretsmanager/secretVersion:SecretVersion")
        if v.name.startswith("mlflow-db")
    )
    assert json.loads(plain(connection.inputs["secretString"]))["sslmode"] == "verify-full"


def test_cors_origins_use_the_scheme_clients_use(dev: Deployment, prod: Deployment) -> None:
    schemes = {}
    for deployment in (dev, prod):
        [container] = container_definitions(deployment)
        environment = {item["name"]: item["value"] for item in container["environment"]}
        schemes[deployment.stack] = environment[contract.PUBLIC_SCHEME]
    assert schemes == {"dev": "http", "prod": "https"}
