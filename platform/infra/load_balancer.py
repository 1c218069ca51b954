"""The application load balancer in front of the server tasks.

HTTPS with the configured ACM certificate and a TLS 1.3 policy; port 80 only redirects to HTTPS.
Plain HTTP forwarding exists solely for a stack that sets `access.allow_insecure_http` and has no
certificate (PlatformConfig refuses that in prod). The target group's health check uses MLflow's
`/health`, which basic auth leaves open, so health checks work with authentication on.

A task leaving the target group (a deploy, a scale-in) keeps the requests it is serving for
`server.drain_seconds` before ECS stops it, so a large upload is not cut. The load balancer writes
its access logs to the audit bucket (`AuditLogs`) when it is given one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from mlflow_platform.infra.security_groups import HTTP_PORT, HTTPS_PORT
from toolkit.platform_config import AccessConfig

TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
HEALTH_CHECK_PATH = "/health"
# Large artifacts stream through the proxy; the default 60 s would cut slow uploads.
IDLE_TIMEOUT_SECONDS = 300


def serves_https(access: AccessConfig) -> bool:
    return access.certificate_arn is not None


def listener_ports(access: AccessConfig) -> list[int]:
    """Ports the load balancer listens on: 443 and the 80 -> 443 redirect, or plain 80 (dev only)."""
    return [HTTPS_PORT, HTTP_PORT] if serves_https(access) else [HTTP_PORT]


@dataclass(frozen=True)
class LoadBalancerArgs:
    access: AccessConfig
    """The stack's `access` section: certificate, domain, allowed networks, internal or internet-facing."""
    vpc_id: pulumi.Input[str]
    """The VPC of the target group."""
    subnet_ids: pulumi.Input[Sequence[str]]
    """Public subnets, or private ones when `access.internal`."""
    security_group_id: pulumi.Input[str]
    """The load balancer's security group (from `SecurityGroups`)."""
    target_port: int
    """The port the server tasks listen on."""
    deletion_protection: bool
    """Whether the load balancer refuses deletion (on where the database is protected)."""
    deregistration_delay_seconds: int
    """How long a task leaving the target group keeps its in-flight requests (`server.drain_seconds`)."""
    access_logs_bucket: pulumi.Input[str] | None = None
    """The bucket the load balancer writes its access logs to (`AuditLogs`); none: no access logs."""
    access_logs_prefix: pulumi.Input[str] | None = None
    """The key prefix of the access logs in that bucket."""


class LoadBalancer(pulumi.ComponentResource):
    """ALB, target group, listeners and the optional Route 53 alias."""

    arn: pulumi.Output[str]
    """The load balancer's ARN (what a web ACL is associated with)."""
    dns_name: pulumi.Output[str]
    """The load balancer's DNS name."""
    zone_id: pulumi.Output[str]
    """The load balancer's hosted zone (for alias records)."""
    target_group_arn: pulumi.Output[str]
    """The target group the ECS service registers its tasks in."""
    target_group_arn_suffix: pulumi.Output[str]
    """The target group's ARN suffix (the dimension of its CloudWatch metrics)."""
    arn_suffix: pulumi.Output[str]
    """The load balancer's ARN suffix (the dimension CloudWatch metrics use)."""
    listeners: list[aws.lb.Listener]
    """The listeners; the service depends on them so its target group is attached first."""

    def __init__(self, name: str, args: LoadBalancerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlflow-platform:network:LoadBalancer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        access = args.access

        balancer = aws.lb.LoadBalancer(
            f"{name}-alb",
            load_balancer_type="application",
            internal=access.internal,
            subnets=args.subnet_ids,
            security_groups=[args.security_group_id],
            drop_invalid_header_fields=True,
            idle_timeout=IDLE_TIMEOUT_SECONDS,
            enable_deletion_protection=args.deletion_protection,
            access_logs=(
                aws.lb.LoadBalancerAccessLogsArgs(
                    bucket=args.access_logs_bucket, prefix=args.access_logs_prefix, enabled=True
                )
                if args.access_logs_bucket is not None
                else None
            ),
            opts=child,
        )
        target_group = aws.lb.TargetGroup(
            f"{name}-tg",
            target_type="ip",
            protocol="HTTP",
            port=args.target_port,
            vpc_id=args.vpc_id,
            deregistration_delay=args.deregistration_delay_seconds,
            health_check=aws.lb.TargetGroupHealthCheckArgs(
                enabled=True,
                path=HEALTH_CHECK_PATH,
                protocol="HTTP",
                matcher="200",
                interval=15,
                timeout=5,
                healthy_threshold=2,
                unhealthy_threshold=3,
            ),
            opts=child,
        )
        forward = aws.lb.ListenerDefaultActionArgs(type="forward", target_group_arn=target_group.arn)

        self.listeners = []
        if serves_https(access):
            self.listeners.append(
                aws.lb.Listener(
                    f"{name}-https",
                    load_balancer_arn=balancer.arn,
                    port=HTTPS_PORT,
                    protocol="HTTPS",
                    certificate_arn=access.certificate_arn,
                    ssl_policy=TLS_POLICY,
                    default_actions=[forward],
                    opts=child,
                )
            )
            self.listeners.append(
                aws.lb.Listener(
                    f"{name}-http",
                    load_balancer_arn=balancer.arn,
                    port=HTTP_PORT,
                    protocol="HTTP",
                    default_actions=[
                        aws.lb.ListenerDefaultActionArgs(
                            type="redirect",
                            redirect=aws.lb.ListenerDefaultActionRedirectArgs(
                                protocol="HTTPS", port=str(HTTPS_PORT), status_code="HTTP_301"
                            ),
                        )
                    ],
                    opts=child,
                )
            )
        else:
            # Only reachable with `access.allow_insecure_http: true` (validated by PlatformConfig): dev only.
            self.listeners.append(
                aws.lb.Listener(
                    f"{name}-http",
                    load_balancer_arn=balancer.arn,
                    port=HTTP_PORT,
                    protocol="HTTP",
                    default_actions=[forward],
                    opts=child,
                )
            )

        if access.hosted_zone_id is not None and access.domain_name is not None:
            aws.route53.Record(
                f"{name}-alias",
                zone_id=access.hosted_zone_id,
                name=access.domain_name,
                type="A",
                aliases=[
                    aws.route53.RecordAliasArgs(
                        name=balancer.dns_name, zone_id=balancer.zone_id, evaluate_target_health=True
                    )
                ],
                opts=child,
            )

        self.arn = balancer.arn
        self.dns_name = balancer.dns_name
        self.zone_id = balancer.zone_id
        self.arn_suffix = balancer.arn_suffix
        self.target_group_arn = target_group.arn
        self.target_group_arn_suffix = target_group.arn_suffix
        self.register_outputs(
            {
                "arn": self.arn,
                "dns_name": self.dns_name,
                "zone_id": self.zone_id,
                "target_group_arn": self.target_group_arn,
                "target_group_arn_suffix": self.target_group_arn_suffix,
                "arn_suffix": self.arn_suffix,
            }
        )
