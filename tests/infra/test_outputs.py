"""The stack's outputs and its SSM parameter are the toolkit's `ClientConfig`, and nothing else."""

from __future__ import annotations

import json

from tests.infra.conftest import Deployment
from tests.infra.helpers import arn, artifact_bucket, below, server_log_group
from toolkit.client_config import STACK_OUTPUT_NAME, ClientConfig, ssm_parameter_name

AUDIT = "mlflow-platform:operations:AuditLogs"


def test_client_config_output_is_a_valid_client_config(deployment: Deployment) -> None:
    client = ClientConfig.from_stack_outputs(deployment.outputs)
    bucket = artifact_bucket(deployment)
    balancer = deployment.one("aws:lb/loadBalancer:LoadBalancer")
    access = deployment.config.access
    host = access.domain_name or balancer.state["dnsName"]
    scheme = "https" if access.certificate_arn else "http"
    assert client == ClientConfig(
        stack=deployment.stack,
        tracking_uri=f"{scheme}://{host}",
        artifact_store_uri=f"s3://{bucket.state['bucket']}",
        region=deployment.config.region,
        mlflow_version=deployment.config.server.mlflow_version,
        auth="aws-iam",
        model_reader_policy_arn=arn(deployment.one("aws:iam/policy:Policy")),
    )
    assert deployment.outputs[STACK_OUTPUT_NAME] == client.model_dump(mode="json", exclude_none=True)


def test_prod_tracking_uri_is_https_on_the_domain(prod: Deployment) -> None:
    assert prod.outputs["tracking_uri"] == "https://mlflow.example.org"


def test_dev_tracking_uri_is_plain_http_on_the_load_balancer_name(dev: Deployment) -> None:
    """The dev stack has no certificate and no domain (it accepts plain HTTP with its own key)."""
    balancer = dev.one("aws:lb/loadBalancer:LoadBalancer")
    assert dev.outputs["tracking_uri"] == f"http://{balancer.state['dnsName']}"


def test_ssm_parameter_holds_the_same_client_config(deployment: Deployment) -> None:
    parameter = deployment.one("aws:ssm/parameter:Parameter")
    assert parameter.inputs["name"] == ssm_parameter_name(deployment.stack)
    assert parameter.inputs["type"] == "String"
    published = ClientConfig.parse(parameter.inputs["insecureValue"])
    assert published == ClientConfig.from_stack_outputs(deployment.outputs)
    assert json.loads(parameter.inputs["insecureValue"]) == deployment.outputs[STACK_OUTPUT_NAME]


def test_operator_outputs_name_the_deployed_resources(deployment: Deployment) -> None:
    outputs = deployment.outputs
    assert outputs["ecs_cluster"] == deployment.one("aws:ecs/cluster:Cluster").state["name"]
    assert outputs["ecs_service"] == deployment.one("aws:ecs/service:Service").state["name"]
    assert outputs["log_group"] == server_log_group(deployment).inputs["name"]
    assert outputs["load_balancer_dns_name"] == deployment.one("aws:lb/loadBalancer:LoadBalancer").state["dnsName"]
    assert outputs["alarm_topic_arn"] == arn(deployment.one("aws:sns/topic:Topic"))
    assert outputs["audit_log_bucket"] == below(deployment, AUDIT, "aws:s3/bucket:Bucket").state["bucket"]
    snapshot = deployment.one("aws:rds/snapshot:Snapshot")
    assert outputs["upgrade_snapshot_id"] == snapshot.inputs["dbSnapshotIdentifier"]
    assert set(outputs) == {
        STACK_OUTPUT_NAME,
        "tracking_uri",
        "artifact_store_uri",
        "credentials_secret_arn",
        "load_balancer_dns_name",
        "ecs_cluster",
        "ecs_service",
        "log_group",
        "vpc_id",
        "model_reader_policy_arn",
        "alarm_topic_arn",
        "audit_log_bucket",
        "upgrade_snapshot_id",
    }
