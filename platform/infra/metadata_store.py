"""The metadata store: RDS PostgreSQL for MLflow's tracking and auth tables.

It sits in the isolated subnets, answers only the server tasks' security group, refuses connections
without TLS (`rds.force_ssl`), encrypts its storage with the platform key, and its connection details
(password included) exist only in a Secrets Manager secret that the task receives as an ECS secret.
The server verifies the instance's certificate (`sslmode=verify-full`, with the RDS CA bundle of the
image).

Its `postgresql` and `upgrade` logs are exported to CloudWatch, into log groups this component creates
first (RDS would otherwise create them, unencrypted and kept forever), with the audit retention and
the platform key. Performance Insights, where the config turns it on, is encrypted with the same key.
The instance identifier is fixed (`database_identifier`) because the log groups are named after it
and must exist before the instance does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from mlflow_platform.infra.server_credentials import generated_password, stored_secret
from mlflow_platform.server.contract import DatabaseSecret
from toolkit.platform_config import DatabaseConfig

POSTGRES_PORT = 5432
DATABASE_NAME = "mlflow"
MASTER_USERNAME = "mlflow"
PASSWORD_LENGTH = 40
STORAGE_TYPE = "gp3"
# The logs RDS exports to CloudWatch: the server's log (errors, slow statements, connections) and the
# log of engine upgrades.
EXPORTED_LOGS = ("postgresql", "upgrade")


def final_snapshot_identifier(name: str) -> str:
    """RDS identifiers: letters, digits and single hyphens, starting with a letter."""
    raw = f"{name}-{pulumi.get_stack()}-final"
    return re.sub(r"-{2,}", "-", re.sub(r"[^a-zA-Z0-9]", "-", raw)).strip("-")[:255]


def database_identifier(name: str, config: DatabaseConfig) -> str:
    """The RDS instance identifier: the configured one, else `<name>-<stack>` in RDS' alphabet."""
    if config.identifier is not None:
        return config.identifier
    raw = f"{name}-{pulumi.get_stack()}".lower()
    cleaned = re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9]", "-", raw)).strip("-")[:63].rstrip("-")
    return cleaned if cleaned[:1].isalpha() else f"db-{cleaned}"[:63].rstrip("-")


def exported_log_group_prefix(identifier: str) -> str:
    """The prefix of the log groups RDS exports this instance's logs to."""
    return f"/aws/rds/instance/{identifier}/"


@dataclass(frozen=True)
class MetadataStoreArgs:
    config: DatabaseConfig
    """The stack's `database` section: engine version, size, availability, backups, protection."""
    vpc_id: pulumi.Input[str]
    """The VPC of the database's security group."""
    isolated_subnet_ids: pulumi.Input[Sequence[str]]
    """Subnets without any route out of the VPC: the database's subnet group."""
    server_security_group_id: pulumi.Input[str]
    """The only security group whose members may connect (the server tasks)."""
    kms_key_arn: pulumi.Input[str]
    """The platform key: storage, Performance Insights, the exported logs and the connection secret."""
    log_retention_days: int
    """Days CloudWatch keeps the exported database logs (`audit.log_retention_days`)."""


class MetadataStore(pulumi.ComponentResource):
    """PostgreSQL instance, its network and parameter settings, and its connection secret."""

    secret_arn: pulumi.Output[str]
    """The connection secret (`contract.DatabaseSecret` as JSON) the server receives."""
    address: pulumi.Output[str]
    """The instance's host name."""
    port: pulumi.Output[int]
    """The instance's port."""
    security_group_id: pulumi.Output[str]
    """The database's security group."""
    identifier: pulumi.Output[str]
    """The RDS instance identifier (alarm dimension, event source, snapshots)."""

    def __init__(self, name: str, args: MetadataStoreArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlflow-platform:storage:MetadataStore", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        config = args.config

        security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=args.vpc_id,
            description="MLflow database: PostgreSQL from the server tasks only",
            tags={"Name": f"{name}-sg"},
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-in-server",
            security_group_id=security_group.id,
            description="PostgreSQL from the MLflow server tasks",
            ip_protocol="tcp",
            from_port=POSTGRES_PORT,
            to_port=POSTGRES_PORT,
            referenced_security_group_id=args.server_security_group_id,
            opts=child,
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-server-out",
            security_group_id=args.server_security_group_id,
            description="MLflow server tasks to PostgreSQL",
            ip_protocol="tcp",
            from_port=POSTGRES_PORT,
            to_port=POSTGRES_PORT,
            referenced_security_group_id=security_group.id,
            opts=child,
        )

        subnet_group = aws.rds.SubnetGroup(
            f"{name}-subnets",
            subnet_ids=args.isolated_subnet_ids,
            description="isolated subnets: no route out of the VPC",
            opts=child,
        )
        major_version = config.engine_version.split(".")[0]
        parameters = aws.rds.ParameterGroup(
            f"{name}-params",
            family=f"postgres{major_version}",
            description="MLflow PostgreSQL: TLS required",
            parameters=[aws.rds.ParameterGroupParameterArgs(name="rds.force_ssl", value="1")],
            opts=child,
        )

        identifier = database_identifier(name, config)
        log_groups = [
            aws.cloudwatch.LogGroup(
                f"{name}-{log}-logs",
                name=f"{exported_log_group_prefix(identifier)}{log}",
                retention_in_days=args.log_retention_days,
                kms_key_id=args.kms_key_arn,
                opts=child,
            )
            for log in EXPORTED_LOGS
        ]

        password = generated_password(f"{name}-password", length=PASSWORD_LENGTH, parent=self)
        instance = aws.rds.Instance(
            f"{name}-postgres",
            identifier=identifier,
            # A restore (rollback) replaces the instance with one made from this snapshot.
            snapshot_identifier=config.restore_from_snapshot,
            engine="postgres",
            engine_version=config.engine_version,
            instance_class=config.instance_class,
            allocated_storage=config.allocated_storage_gb,
            max_allocated_storage=config.max_allocated_storage_gb,
            storage_type=STORAGE_TYPE,
            storage_encrypted=True,
            kms_key_id=args.kms_key_arn,
            db_name=DATABASE_NAME,
            username=MASTER_USERNAME,
            password=password,
            port=POSTGRES_PORT,
            db_subnet_group_name=subnet_group.name,
            parameter_group_name=parameters.name,
            vpc_security_group_ids=[security_group.id],
            publicly_accessible=False,
            multi_az=config.multi_az,
            backup_retention_period=config.backup_retention_days,
            copy_tags_to_snapshot=True,
            deletion_protection=config.deletion_protection,
            skip_final_snapshot=config.skip_final_snapshot,
            final_snapshot_identifier=None if config.skip_final_snapshot else final_snapshot_identifier(name),
            auto_minor_version_upgrade=True,
            allow_major_version_upgrade=False,
            iam_database_authentication_enabled=False,
            enabled_cloudwatch_logs_exports=list(EXPORTED_LOGS),
            performance_insights_enabled=config.performance_insights,
            performance_insights_kms_key_id=args.kms_key_arn if config.performance_insights else None,
            performance_insights_retention_period=(
                config.performance_insights_retention_days if config.performance_insights else None
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=log_groups),
        )

        # The payload the server parses (`contract.DatabaseSecret`), validated here at deploy time too.
        # `verify-full`: TLS even if the parameter group changed, and the certificate checked for this host.
        connection = pulumi.Output.all(instance.address, instance.port, password).apply(
            lambda values: DatabaseSecret(
                host=values[0],
                port=values[1],
                dbname=DATABASE_NAME,
                username=MASTER_USERNAME,
                password=values[2],
                sslmode="verify-full",
            ).secret_string()
        )
        secret = stored_secret(
            f"{name}-connection",
            purpose="database",
            description="MLflow PostgreSQL connection: JSON {engine, host, port, dbname, username, password}",
            kms_key_arn=args.kms_key_arn,
            value=connection,
            parent=self,
        )

        self.secret_arn = secret.arn
        self.address = instance.address
        self.port = instance.port
        self.security_group_id = security_group.id
        self.identifier = instance.identifier
        self.register_outputs(
            {
                "secret_arn": self.secret_arn,
                "address": self.address,
                "port": self.port,
                "security_group_id": self.security_group_id,
                "identifier": self.identifier,
            }
        )
