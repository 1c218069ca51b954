"""Who may talk to whom, in one place: clients -> load balancer -> server tasks (-> database).

Security groups are created empty and every rule is its own resource, so each allowed flow is one
reviewable line in the plan (and one assertion in the tests). The database's group lives with the
database (`metadata_store.py`), which adds the one rule that lets these tasks reach it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

HTTPS_PORT = 443
HTTP_PORT = 80
ANYWHERE = "0.0.0.0/0"


@dataclass(frozen=True)
class SecurityGroupsArgs:
    vpc_id: pulumi.Input[str]
    """The VPC of both groups."""
    allowed_cidrs: Sequence[str]
    """Client networks allowed to reach the load balancer."""
    listener_ports: Sequence[int]
    """Listener ports of the load balancer (443, and 80 for the redirect or the dev-only plain HTTP)."""
    server_port: int
    """The port the server tasks listen on; only the load balancer's group may reach it."""


class SecurityGroups(pulumi.ComponentResource):
    """The load balancer's and the server tasks' security groups and the rules between them."""

    load_balancer_security_group_id: pulumi.Output[str]
    """The load balancer's group: the listener ports from the allowed networks."""
    server_security_group_id: pulumi.Output[str]
    """The server tasks' group: the server port from the load balancer only."""

    def __init__(self, name: str, args: SecurityGroupsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlflow-platform:network:SecurityGroups", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        load_balancer = aws.ec2.SecurityGroup(
            f"{name}-lb",
            vpc_id=args.vpc_id,
            description="MLflow load balancer: listeners open to the configured client CIDRs only",
            tags={"Name": f"{name}-lb"},
            opts=child,
        )
        server = aws.ec2.SecurityGroup(
            f"{name}-server",
            vpc_id=args.vpc_id,
            description="MLflow server tasks: reachable from the load balancer only",
            tags={"Name": f"{name}-server"},
            opts=child,
        )

        for port in args.listener_ports:
            for index, cidr in enumerate(args.allowed_cidrs):
                aws.vpc.SecurityGroupIngressRule(
                    f"{name}-lb-in-{port}-{index}",
                    security_group_id=load_balancer.id,
                    description=f"clients from {cidr}",
                    ip_protocol="tcp",
                    from_port=port,
                    to_port=port,
                    cidr_ipv4=cidr,
                    opts=child,
                )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-lb-out-server",
            security_group_id=load_balancer.id,
            description="forward to the server tasks",
            ip_protocol="tcp",
            from_port=args.server_port,
            to_port=args.server_port,
            referenced_security_group_id=server.id,
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-server-in-lb",
            security_group_id=server.id,
            description="requests and health checks from the load balancer",
            ip_protocol="tcp",
            from_port=args.server_port,
            to_port=args.server_port,
            referenced_security_group_id=load_balancer.id,
            opts=child,
        )
        # AWS APIs over TLS (ECR, Secrets Manager, CloudWatch Logs through NAT; S3 through the endpoint).
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-server-out-https",
            security_group_id=server.id,
            description="AWS APIs over HTTPS",
            ip_protocol="tcp",
            from_port=HTTPS_PORT,
            to_port=HTTPS_PORT,
            cidr_ipv4=ANYWHERE,
            opts=child,
        )

        self.load_balancer_security_group_id = load_balancer.id
        self.server_security_group_id = server.id
        self.register_outputs(
            {
                "load_balancer_security_group_id": self.load_balancer_security_group_id,
                "server_security_group_id": self.server_security_group_id,
            }
        )
