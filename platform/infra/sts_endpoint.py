"""STS inside the VPC: the interface endpoint the server verifies AWS identities through.

The server replays each new identity token to STS's regional endpoint (`contract.sts_regional_endpoint`);
with private DNS on, that name resolves inside the VPC to this endpoint's network interfaces in the
private subnets, so sign-ins neither cross the NAT gateway nor depend on it. Only the server tasks'
security group may reach the endpoint, on 443.

An existing VPC (`network.existing`) gets no endpoint from the platform: an organisation's VPC often has
one already, and a second with private DNS for the same service cannot be created. There the server
reaches STS through whatever the organisation provides (its endpoint, or NAT).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

HTTPS_PORT = 443


@dataclass(frozen=True)
class StsEndpointArgs:
    region: str
    """The stack's region: the endpoint serves `sts.<region>.amazonaws.com`."""
    vpc_id: pulumi.Input[str]
    """The platform's VPC."""
    subnet_ids: pulumi.Input[Sequence[str]]
    """The private subnets, where the server tasks run: one endpoint interface in each."""
    server_security_group_id: pulumi.Input[str]
    """The server tasks' security group, the only one allowed to reach the endpoint."""


class StsEndpoint(pulumi.ComponentResource):
    """An STS interface endpoint with private DNS, and its security group."""

    endpoint_id: pulumi.Output[str]
    """The VPC endpoint's id."""
    security_group_id: pulumi.Output[str]
    """The endpoint's security group: 443 from the server tasks only."""

    def __init__(self, name: str, args: StsEndpointArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlflow-platform:network:StsEndpoint", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=args.vpc_id,
            description="STS interface endpoint: HTTPS from the MLflow server tasks only",
            tags={"Name": f"{name}-sg"},
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-in-server",
            security_group_id=group.id,
            description="identity verification (sts:GetCallerIdentity) from the server tasks",
            ip_protocol="tcp",
            from_port=HTTPS_PORT,
            to_port=HTTPS_PORT,
            referenced_security_group_id=args.server_security_group_id,
            opts=child,
        )
        endpoint = aws.ec2.VpcEndpoint(
            f"{name}-endpoint",
            vpc_id=args.vpc_id,
            service_name=f"com.amazonaws.{args.region}.sts",
            vpc_endpoint_type="Interface",
            private_dns_enabled=True,
            subnet_ids=args.subnet_ids,
            security_group_ids=[group.id],
            tags={"Name": f"{name}-endpoint"},
            opts=child,
        )
        self.endpoint_id = endpoint.id
        self.security_group_id = group.id
        self.register_outputs({"endpoint_id": self.endpoint_id, "security_group_id": self.security_group_id})
