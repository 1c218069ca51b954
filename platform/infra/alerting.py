"""Alerting: an encrypted SNS topic with e-mail subscriptions, the platform's alarms, and RDS events.

Every alarm and the database's event subscription publish to one topic; each address in
`alerts.emails` gets the messages once it confirms the subscription AWS mails it. An alarm also
publishes when it returns to OK, so the receiver knows the incident ended.

The topic is encrypted with its own key. CloudWatch and RDS publish through the key, so the key
policy lets exactly those two services use it, on behalf of this account only; the topic policy
lets them publish to this topic, for this account only, over TLS.

The alarms (each over one-minute periods, firing after `alerts.evaluation_minutes` of them in a row):
- the share of 5XX answers of the server tasks, of the requests the load balancer sent them;
- unhealthy targets, and no healthy target at all (missing data counts as none: a service whose
  tasks are all gone reports nothing);
- fewer running tasks than the service's minimum (Container Insights; missing data breaches too);
- the database's CPU, free storage and open connections.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from mlflow_platform.infra.encryption import EncryptionKey, EncryptionKeyArgs
from mlflow_platform.infra.policies import caller_identity, policy_document
from toolkit.platform_config import AlertsConfig

PERIOD_SECONDS = 60
PUBLISHERS = ("cloudwatch.amazonaws.com", "events.rds.amazonaws.com")
# What RDS reports about the instance: a failover, a failure, storage running out, maintenance.
DATABASE_EVENT_CATEGORIES = ("failover", "failure", "low storage", "maintenance")
BYTES_PER_GIB = 1024**3


@dataclass(frozen=True)
class AlertingArgs:
    config: AlertsConfig
    """The stack's `alerts` section: e-mail addresses and thresholds."""
    region: str
    """The stack's region (the topic's key lives there)."""
    load_balancer_arn_suffix: pulumi.Input[str]
    """The load balancer's ARN suffix, the dimension of its CloudWatch metrics."""
    target_group_arn_suffix: pulumi.Input[str]
    """The target group's ARN suffix, the dimension of its CloudWatch metrics."""
    cluster_name: pulumi.Input[str]
    """The ECS cluster of the server."""
    service_name: pulumi.Input[str]
    """The ECS service of the server."""
    min_running_tasks: int
    """The service's minimum task count; fewer running tasks raise an alarm (none when it is 0)."""
    database_identifier: pulumi.Input[str]
    """The RDS instance identifier (metrics dimension and event source)."""


class Alerting(pulumi.ComponentResource):
    """SNS topic and its key, e-mail subscriptions, CloudWatch alarms, RDS event subscription."""

    topic_arn: pulumi.Output[str]
    """The topic every alarm and database event publishes to (stack output `alarm_topic_arn`)."""
    alarm_names: pulumi.Output[list[str]]
    """The names of the CloudWatch alarms."""

    def __init__(self, name: str, args: AlertingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlflow-platform:operations:Alerting", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        config = args.config
        account_id = caller_identity(self).account_id

        key = EncryptionKey(
            name,
            EncryptionKeyArgs(
                description=f"{name}: alarm and database event notifications",
                region=args.region,
                publisher_services=PUBLISHERS,
            ),
            opts=child,
        )
        topic = aws.sns.Topic(f"{name}-topic", kms_master_key_id=key.key_arn, opts=child)
        aws.sns.TopicPolicy(
            f"{name}-topic-policy",
            arn=topic.arn,
            policy=policy_document(
                {
                    "Sid": "AlarmsAndDatabaseEventsOfThisAccount",
                    "Effect": "Allow",
                    "Principal": {"Service": list(PUBLISHERS)},
                    "Action": "sns:Publish",
                    "Resource": topic.arn,
                    "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
                },
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "sns:Publish",
                    "Resource": topic.arn,
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                },
            ),
            opts=child,
        )
        for address in config.emails:
            aws.sns.TopicSubscription(
                f"{name}-email-{address}", topic=topic.arn, protocol="email", endpoint=address, opts=child
            )

        alarms: list[aws.cloudwatch.MetricAlarm] = []

        def alarm(suffix: str, description: str, **settings: Any) -> None:
            alarms.append(
                aws.cloudwatch.MetricAlarm(
                    f"{name}-{suffix}",
                    alarm_description=description,
                    alarm_actions=[topic.arn],
                    ok_actions=[topic.arn],
                    evaluation_periods=config.evaluation_minutes,
                    datapoints_to_alarm=config.evaluation_minutes,
                    **settings,
                    opts=child,
                )
            )

        target_dimensions = {
            "LoadBalancer": args.load_balancer_arn_suffix,
            "TargetGroup": args.target_group_arn_suffix,
        }

        def target_metric(query_id: str, metric_name: str) -> dict[str, Any]:
            return {
                "id": query_id,
                "metric": {
                    "namespace": "AWS/ApplicationELB",
                    "metric_name": metric_name,
                    "dimensions": target_dimensions,
                    "period": PERIOD_SECONDS,
                    "stat": "Sum",
                },
                "return_data": False,
            }

        alarm(
            "target-5xx",
            f"More than {config.target_5xx_percent}% of the requests to the MLflow server ended in a 5XX",
            comparison_operator="GreaterThanThreshold",
            threshold=config.target_5xx_percent,
            treat_missing_data="notBreaching",
            metric_queries=[
                target_metric("errors", "HTTPCode_Target_5XX_Count"),
                target_metric("requests", "RequestCount"),
                {
                    "id": "percent",
                    "label": "5XX of the target's answers (%)",
                    "expression": "IF(FILL(requests, 0) > 0, 100 * FILL(errors, 0) / requests, 0)",
                    "return_data": True,
                },
            ],
        )
        alarm(
            "unhealthy-targets",
            "A server task fails the load balancer's health check",
            namespace="AWS/ApplicationELB",
            metric_name="UnHealthyHostCount",
            dimensions=target_dimensions,
            statistic="Maximum",
            period=PERIOD_SECONDS,
            comparison_operator="GreaterThanThreshold",
            threshold=0,
            treat_missing_data="notBreaching",
        )
        alarm(
            "no-healthy-targets",
            "No server task is healthy: MLflow is down",
            namespace="AWS/ApplicationELB",
            metric_name="HealthyHostCount",
            dimensions=target_dimensions,
            statistic="Minimum",
            period=PERIOD_SECONDS,
            comparison_operator="LessThanThreshold",
            threshold=1,
            treat_missing_data="breaching",
        )
        if args.min_running_tasks > 0:
            alarm(
                "running-tasks",
                f"Fewer than {args.min_running_tasks} MLflow server tasks are running",
                namespace="ECS/ContainerInsights",
                metric_name="RunningTaskCount",
                dimensions={"ClusterName": args.cluster_name, "ServiceName": args.service_name},
                statistic="Minimum",
                period=PERIOD_SECONDS,
                comparison_operator="LessThanThreshold",
                threshold=args.min_running_tasks,
                treat_missing_data="breaching",
            )
        database_dimensions = {"DBInstanceIdentifier": args.database_identifier}
        alarm(
            "database-cpu",
            f"The MLflow database's CPU is above {config.database_cpu_percent}%",
            namespace="AWS/RDS",
            metric_name="CPUUtilization",
            dimensions=database_dimensions,
            statistic="Average",
            period=PERIOD_SECONDS,
            comparison_operator="GreaterThanThreshold",
            threshold=config.database_cpu_percent,
            treat_missing_data="notBreaching",
        )
        alarm(
            "database-free-storage",
            f"The MLflow database has less than {config.database_free_storage_gib} GiB of free storage",
            namespace="AWS/RDS",
            metric_name="FreeStorageSpace",
            dimensions=database_dimensions,
            statistic="Minimum",
            period=PERIOD_SECONDS,
            comparison_operator="LessThanThreshold",
            threshold=config.database_free_storage_gib * BYTES_PER_GIB,
            treat_missing_data="notBreaching",
        )
        alarm(
            "database-connections",
            f"The MLflow database has more than {config.database_connections} open connections",
            namespace="AWS/RDS",
            metric_name="DatabaseConnections",
            dimensions=database_dimensions,
            statistic="Maximum",
            period=PERIOD_SECONDS,
            comparison_operator="GreaterThanThreshold",
            threshold=config.database_connections,
            treat_missing_data="notBreaching",
        )
        aws.rds.EventSubscription(
            f"{name}-database-events",
            sns_topic=topic.arn,
            source_type="db-instance",
            source_ids=[args.database_identifier],
            event_categories=list(DATABASE_EVENT_CATEGORIES),
            opts=child,
        )

        self.topic_arn = topic.arn
        self.alarm_names = pulumi.Output.all(*(a.name for a in alarms)).apply(list)
        self.register_outputs({"topic_arn": self.topic_arn, "alarm_names": self.alarm_names})
