"""The network: three subnet tiers so each part of the platform sits only as exposed as it must be.

public   - the load balancer (and the NAT gateways); the only tier with a route to the internet gateway
private  - the server tasks; outbound through NAT (ECR, Secrets Manager, CloudWatch), never inbound
isolated - the database; no route out of the VPC at all

S3 traffic of the private and isolated tiers goes through a gateway endpoint: free, and artifacts
never cross the NAT. A new VPC records its traffic in flow logs (encrypted, with a retention), so a
review can see who talked to what. With `network.existing` the organisation's VPC, subnets and flow
logs are used as given.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Network

import pulumi
import pulumi_aws as aws

from mlflow_platform.infra.policies import caller_identity, policy_document, service_assume_role_policy
from toolkit.platform_config import NetworkConfig

# Each tier gets a block of 8 subnet slots (room for the maximum of 6 AZs), each slot 1/32 of the VPC.
SUBNET_PREFIX_EXTRA_BITS = 5
SLOTS_PER_TIER = 8
TIERS = ("public", "private", "isolated")


def subnet_cidrs(vpc_cidr: IPv4Network, az_count: int) -> dict[str, list[str]]:
    """Deterministic, non-overlapping subnet ranges per tier: the same config always plans the same VPC."""
    slots = list(vpc_cidr.subnets(prefixlen_diff=SUBNET_PREFIX_EXTRA_BITS))
    return {
        tier: [str(slots[index * SLOTS_PER_TIER + az]) for az in range(az_count)] for index, tier in enumerate(TIERS)
    }


def zone_picker(index: int) -> Callable[[list[str]], str]:
    def pick(names: list[str]) -> str:
        if index >= len(names):
            raise ValueError(
                f"network.az_count: got {index + 1} or more, but the region offers only {len(names)} "
                f"availability zones ({', '.join(names)}); expected at most {len(names)}"
            )
        return names[index]

    return pick


@dataclass(frozen=True)
class FlowLogSettings:
    log_group_name: str
    """The CloudWatch log group receiving the VPC's flow logs."""
    retention_days: int
    """How long flow logs are kept (one of CloudWatch's retention periods)."""
    kms_key_arn: pulumi.Input[str]
    """The key encrypting the log group."""


@dataclass(frozen=True)
class NetworkArgs:
    config: NetworkConfig
    """The stack's `network` section: a new VPC's CIDR, zones and NAT gateways, or an existing VPC."""
    region: str
    """The stack's region (names the S3 gateway endpoint's service)."""
    flow_logs: FlowLogSettings | None = None
    """Flow logs of a new VPC (an existing VPC keeps whatever its owners configured)."""


class Network(pulumi.ComponentResource):
    """A new VPC over `az_count` zones, or the existing one from config."""

    vpc_id: pulumi.Output[str]
    """The VPC's id."""
    public_subnet_ids: pulumi.Output[list[str]]
    """Subnets with an internet gateway route: the internet-facing load balancer."""
    private_subnet_ids: pulumi.Output[list[str]]
    """Subnets routed out through NAT: the server tasks."""
    isolated_subnet_ids: pulumi.Output[list[str]]
    """Subnets without a route out of the VPC: the database."""

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlflow-platform:network:Network", name, None, opts)
        existing = args.config.existing
        if existing is not None:
            self.vpc_id = pulumi.Output.from_input(existing.vpc_id)
            self.public_subnet_ids = pulumi.Output.from_input(list(existing.public_subnet_ids))
            self.private_subnet_ids = pulumi.Output.from_input(list(existing.private_subnet_ids))
            self.isolated_subnet_ids = pulumi.Output.from_input(list(existing.isolated_subnet_ids))
        else:
            self._build_vpc(name, args)
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "public_subnet_ids": self.public_subnet_ids,
                "private_subnet_ids": self.private_subnet_ids,
                "isolated_subnet_ids": self.isolated_subnet_ids,
            }
        )

    def _build_vpc(self, name: str, args: NetworkArgs) -> None:
        config = args.config
        child = pulumi.ResourceOptions(parent=self)
        zones = aws.get_availability_zones_output(
            state="available",
            filters=[aws.GetAvailabilityZonesFilterArgs(name="opt-in-status", values=["opt-in-not-required"])],
            opts=pulumi.InvokeOutputOptions(parent=self),
        )
        cidrs = subnet_cidrs(config.vpc_cidr, config.az_count)

        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=str(config.vpc_cidr),
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags={"Name": f"{name}-vpc"},
            opts=child,
        )
        # The default security group of a new VPC allows all traffic between its members: strip it.
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg", vpc_id=vpc.id, tags={"Name": f"{name}-default-unused"}, opts=child
        )
        gateway = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags={"Name": f"{name}-igw"}, opts=child)

        subnets: dict[str, list[aws.ec2.Subnet]] = {}
        for tier in TIERS:
            subnets[tier] = [
                aws.ec2.Subnet(
                    f"{name}-{tier}-{az}",
                    vpc_id=vpc.id,
                    cidr_block=cidr,
                    availability_zone=zones.names.apply(zone_picker(az)),
                    # Nothing gets a public IP by accident, not even in the public tier (the ALB does not need it).
                    map_public_ip_on_launch=False,
                    tags={"Name": f"{name}-{tier}-{az}", "mlflow-platform:tier": tier},
                    opts=child,
                )
                for az, cidr in enumerate(cidrs[tier])
            ]

        public_routes = aws.ec2.RouteTable(
            f"{name}-public-rt", vpc_id=vpc.id, tags={"Name": f"{name}-public"}, opts=child
        )
        aws.ec2.Route(
            f"{name}-public-default",
            route_table_id=public_routes.id,
            destination_cidr_block="0.0.0.0/0",
            gateway_id=gateway.id,
            opts=child,
        )
        for az, subnet in enumerate(subnets["public"]):
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{az}", route_table_id=public_routes.id, subnet_id=subnet.id, opts=child
            )

        nat_count = config.az_count if config.nat_gateways == "per_az" else 1
        nats = []
        for index in range(nat_count):
            address = aws.ec2.Eip(f"{name}-nat-{index}", domain="vpc", tags={"Name": f"{name}-nat-{index}"}, opts=child)
            nats.append(
                aws.ec2.NatGateway(
                    f"{name}-nat-{index}",
                    allocation_id=address.allocation_id,
                    subnet_id=subnets["public"][index].id,
                    tags={"Name": f"{name}-nat-{index}"},
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[gateway]),
                )
            )

        endpoint_route_tables: list[pulumi.Output[str]] = []
        for az, subnet in enumerate(subnets["private"]):
            table = aws.ec2.RouteTable(
                f"{name}-private-rt-{az}", vpc_id=vpc.id, tags={"Name": f"{name}-private-{az}"}, opts=child
            )
            aws.ec2.Route(
                f"{name}-private-default-{az}",
                route_table_id=table.id,
                destination_cidr_block="0.0.0.0/0",
                nat_gateway_id=nats[az % nat_count].id,
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{az}", route_table_id=table.id, subnet_id=subnet.id, opts=child
            )
            endpoint_route_tables.append(table.id)

        # No default route: the isolated tier can reach the VPC (and S3 via the endpoint) and nothing else.
        isolated_routes = aws.ec2.RouteTable(
            f"{name}-isolated-rt", vpc_id=vpc.id, tags={"Name": f"{name}-isolated"}, opts=child
        )
        for az, subnet in enumerate(subnets["isolated"]):
            aws.ec2.RouteTableAssociation(
                f"{name}-isolated-{az}", route_table_id=isolated_routes.id, subnet_id=subnet.id, opts=child
            )
        endpoint_route_tables.append(isolated_routes.id)

        aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{args.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=endpoint_route_tables,
            tags={"Name": f"{name}-s3"},
            opts=child,
        )

        if args.flow_logs is not None:
            self._flow_logs(name, vpc, args.flow_logs)

        self.vpc_id = vpc.id
        self.public_subnet_ids = pulumi.Output.all(*[subnet.id for subnet in subnets["public"]])
        self.private_subnet_ids = pulumi.Output.all(*[subnet.id for subnet in subnets["private"]])
        self.isolated_subnet_ids = pulumi.Output.all(*[subnet.id for subnet in subnets["isolated"]])

    def _flow_logs(self, name: str, vpc: aws.ec2.Vpc, settings: FlowLogSettings) -> None:
        child = pulumi.ResourceOptions(parent=self)
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs",
            name=settings.log_group_name,
            retention_in_days=settings.retention_days,
            kms_key_id=settings.kms_key_arn,
            opts=child,
        )
        role = aws.iam.Role(
            f"{name}-flow-logs",
            description="VPC flow logs: write to this VPC's flow log group only",
            assume_role_policy=service_assume_role_policy(
                "vpc-flow-logs.amazonaws.com", caller_identity(self).account_id
            ),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-flow-logs",
            role=role.id,
            policy=policy_document(
                {
                    "Sid": "WriteThisLogGroup",
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
                    "Resource": [log_group.arn, pulumi.Output.concat(log_group.arn, ":log-stream:*")],
                }
            ),
            opts=child,
        )
        aws.ec2.FlowLog(
            f"{name}-flow-log",
            vpc_id=vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=log_group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=600,
            opts=child,
        )
