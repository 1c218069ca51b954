"""`MlflowPlatform`: the whole deployment, composed from a validated `PlatformConfig`.

All AWS resources go through one explicit provider: the region is the one the config names (not
whatever `aws:region` the shell happens to have), and the stack's tags are provider default tags, so
every taggable resource carries them without each component repeating them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from mlflow_platform.infra.admin_secret_policy import AdminSecretPolicy, AdminSecretPolicyArgs
from mlflow_platform.infra.alerting import Alerting, AlertingArgs
from mlflow_platform.infra.artifact_store import ArtifactStore, ArtifactStoreArgs
from mlflow_platform.infra.audit_logs import AuditLogs, AuditLogsArgs
from mlflow_platform.infra.client_publication import ClientConfigPublication, ClientConfigPublicationArgs, tracking_uri
from mlflow_platform.infra.edge_protection import WAF_LOG_GROUP_PREFIX, EdgeProtection, EdgeProtectionArgs
from mlflow_platform.infra.encryption import EncryptionKey, EncryptionKeyArgs
from mlflow_platform.infra.load_balancer import LoadBalancer, LoadBalancerArgs, listener_ports, serves_https
from mlflow_platform.infra.metadata_store import (
    MetadataStore,
    MetadataStoreArgs,
    database_identifier,
    exported_log_group_prefix,
)
from mlflow_platform.infra.model_reader import ModelReaderArgs, ModelReaderPolicy
from mlflow_platform.infra.network import FlowLogSettings, Network, NetworkArgs
from mlflow_platform.infra.security_groups import SecurityGroups, SecurityGroupsArgs
from mlflow_platform.infra.server_credentials import Credentials, CredentialsArgs
from mlflow_platform.infra.sts_endpoint import StsEndpoint, StsEndpointArgs
from mlflow_platform.infra.tracking_server import (
    ServerSecrets,
    TrackingServer,
    TrackingServerArgs,
    image_mlflow_version,
    server_image_context,
)
from mlflow_platform.infra.upgrade_snapshot import UpgradeSnapshot, UpgradeSnapshotArgs, snapshot_component_name
from mlflow_platform.server import contract
from toolkit.client_config import STACK_OUTPUT_NAME
from toolkit.errors import ConfigError
from toolkit.platform_config import PlatformConfig


def platform_tags(config: PlatformConfig, stack: str) -> dict[str, str]:
    """The stack's own tags plus three that say where a resource comes from (the config may not override them)."""
    return {
        **config.tags,
        "mlflow-platform:stack": stack,
        "mlflow-platform:environment": config.environment,
        "mlflow-platform:name": config.name,
    }


def log_group_prefix(stack: str) -> str:
    return f"/mlflow-platform/{stack}/"


def waf_log_group_name(base: str, stack: str) -> str:
    """WAF writes only to log groups whose name starts with `aws-waf-logs-`."""
    return f"{WAF_LOG_GROUP_PREFIX}{base}-{stack}"


def allowed_hosts(config: PlatformConfig, load_balancer_dns_name: str) -> list[str]:
    """Host header values MLflow must accept: the load balancer's name, the domain, configured extras."""
    names = [load_balancer_dns_name.lower()]
    if config.access.domain_name is not None:
        names.append(config.access.domain_name)
    names.extend(config.access.allowed_hosts)
    return list(dict.fromkeys(names))


def server_identity(config: PlatformConfig, tracking_uri: str, load_balancer_dns_name: str) -> str:
    """`contract.ServerIdentity` as JSON: the mapping, and the names clients reach the server by
    (its tracking URI and the other host names it accepts, with the same scheme) as audiences."""
    scheme = tracking_uri.split("://", 1)[0]
    names = [f"{scheme}://{host}" for host in allowed_hosts(config, load_balancer_dns_name) if "*" not in host]
    identity = contract.ServerIdentity(
        **config.identity.model_dump(), audiences=list(dict.fromkeys([tracking_uri, *names])), region=config.region
    )
    return identity.model_dump_json()


def unsupported_settings(config: PlatformConfig) -> list[str]:
    """Valid config the deployed server cannot honour yet: refused, rather than silently ignored."""
    problems = []
    if not config.server.serve_artifacts:
        problems.append(
            "server.serve_artifacts: got False, expected true: the server entrypoint always proxies "
            "artifacts (--artifacts-destination); direct S3 access from clients is not deployed yet"
        )
    return problems


def image_version_problems(config: PlatformConfig, image_context: Path) -> list[str]:
    """The database is snapshotted once per `server.mlflow_version` before the server runs it, so when the
    stack builds the image the key must be the MLflow that image installs (a prebuilt `server.image` is
    named by the key instead)."""
    installed = image_mlflow_version(image_context)
    if config.server.image is not None or installed is None or installed == config.server.mlflow_version:
        return []
    return [
        f"server.mlflow_version: got {config.server.mlflow_version!r}, expected {installed!r}, the MLflow the "
        f"server image installs ({image_context / 'requirements.txt'}); the snapshot before an upgrade is taken "
        "per version, so leave the key out (it follows the image) or set it to that version"
    ]


@dataclass(frozen=True)
class MlflowPlatformArgs:
    config: PlatformConfig
    """The stack's validated config."""
    image_context: Path | None = None
    """The server image's build context; defaults to this checkout's `platform/server/`."""


class MlflowPlatform(pulumi.ComponentResource):
    """Network, artifact and metadata stores, credentials, load balancer (and its web ACL when it faces
    the internet), server, the pre-upgrade snapshot, alerting, audit logs, client config."""

    client_config: pulumi.Output[dict[str, Any]]
    """What clients need (stack output `client_config`; also published to SSM)."""
    tracking_uri: pulumi.Output[str]
    """The URL of the tracking server."""
    load_balancer_dns_name: pulumi.Output[str]
    """The load balancer's DNS name (for a CNAME when Route 53 is not used)."""
    artifact_store_uri: pulumi.Output[str]
    """`s3://<bucket>` of the artifact store."""
    credentials_secret_arn: pulumi.Output[str]
    """The Secrets Manager ARN of the MLflow admin credentials."""
    cluster_name: pulumi.Output[str]
    """The ECS cluster (stack output `ecs_cluster`)."""
    service_name: pulumi.Output[str]
    """The ECS service (stack output `ecs_service`)."""
    log_group_name: pulumi.Output[str]
    """The server's CloudWatch log group (stack output `log_group`)."""
    vpc_id: pulumi.Output[str]
    """The VPC the platform runs in."""
    model_reader_policy_arn: pulumi.Output[str]
    """The managed policy a scoring pipeline's role attaches to read models (`ModelReaderPolicy`)."""
    alarm_topic_arn: pulumi.Output[str]
    """The SNS topic of the alarms and database events (`Alerting`)."""
    audit_log_bucket: pulumi.Output[str]
    """The bucket of the load balancer's and the artifact bucket's access logs (`AuditLogs`)."""
    upgrade_snapshot_id: pulumi.Output[str]
    """The database snapshot taken for the MLflow version the stack runs (`UpgradeSnapshot`)."""

    def __init__(self, name: str, args: MlflowPlatformArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        config = args.config
        image_context = args.image_context or server_image_context()
        problems = unsupported_settings(config) + image_version_problems(config, image_context)
        if problems:
            raise ConfigError(f"config of stack {pulumi.get_stack()!r}", problems)
        super().__init__("mlflow-platform:index:MlflowPlatform", name, None, opts)
        stack = pulumi.get_stack()
        # Children are named after this component; the program names it after `config.name`.
        base = name

        provider = aws.Provider(
            f"{base}-aws",
            region=config.region,
            default_tags=aws.ProviderDefaultTagsArgs(tags=platform_tags(config, stack)),
            opts=pulumi.ResourceOptions(parent=self),
        )
        child = pulumi.ResourceOptions(parent=self, providers={"aws": provider})
        internet_facing = not config.access.internal
        db_identifier = database_identifier(f"{base}-db", config.database)

        platform_key = EncryptionKey(
            f"{base}-platform",
            EncryptionKeyArgs(
                description=f"{base} ({stack}): secrets, database storage, server, flow, database and WAF logs",
                region=config.region,
                log_group_prefixes=[
                    log_group_prefix(stack),
                    exported_log_group_prefix(db_identifier),
                    *([waf_log_group_name(base, stack)] if internet_facing else []),
                ],
            ),
            opts=child,
        )
        network = Network(
            f"{base}-network",
            NetworkArgs(
                config=config.network,
                region=config.region,
                flow_logs=FlowLogSettings(
                    log_group_name=f"{log_group_prefix(stack)}{base}-vpc-flow-logs",
                    retention_days=config.server.log_retention_days,
                    kms_key_arn=platform_key.key_arn,
                ),
            ),
            opts=child,
        )
        firewall = SecurityGroups(
            f"{base}-sg",
            SecurityGroupsArgs(
                vpc_id=network.vpc_id,
                allowed_cidrs=[str(cidr) for cidr in config.access.allowed_cidrs],
                listener_ports=listener_ports(config.access),
                server_port=contract.LISTEN_PORT,
            ),
            opts=child,
        )
        artifacts = ArtifactStore(
            f"{base}-artifacts", ArtifactStoreArgs(config=config.artifacts, region=config.region), opts=child
        )
        audit = AuditLogs(
            f"{base}-audit",
            AuditLogsArgs(
                region=config.region,
                retention_days=config.audit.log_retention_days,
                force_destroy=config.audit.force_destroy,
                artifact_bucket_name=artifacts.bucket_name,
                artifact_bucket_arn=artifacts.bucket_arn,
            ),
            opts=child,
        )
        credentials = Credentials(f"{base}-credentials", CredentialsArgs(kms_key_arn=platform_key.key_arn), opts=child)
        database = MetadataStore(
            f"{base}-db",
            MetadataStoreArgs(
                config=config.database,
                vpc_id=network.vpc_id,
                isolated_subnet_ids=network.isolated_subnet_ids,
                server_security_group_id=firewall.server_security_group_id,
                kms_key_arn=platform_key.key_arn,
                log_retention_days=config.audit.log_retention_days,
            ),
            opts=child,
        )
        # Named after the MLflow version: a version change declares a new snapshot and keeps the old one.
        upgrade_snapshot = UpgradeSnapshot(
            snapshot_component_name(base, config.server.mlflow_version),
            UpgradeSnapshotArgs(database_identifier=database.identifier, mlflow_version=config.server.mlflow_version),
            opts=child,
        )
        balancer = LoadBalancer(
            f"{base}-lb",
            LoadBalancerArgs(
                access=config.access,
                vpc_id=network.vpc_id,
                subnet_ids=network.private_subnet_ids if config.access.internal else network.public_subnet_ids,
                security_group_id=firewall.load_balancer_security_group_id,
                target_port=contract.LISTEN_PORT,
                deletion_protection=config.is_prod,
                deregistration_delay_seconds=config.server.drain_seconds,
                access_logs_bucket=audit.bucket_name,
                access_logs_prefix=audit.load_balancer_prefix,
            ),
            opts=child,
        )
        if internet_facing:
            EdgeProtection(
                f"{base}-edge",
                EdgeProtectionArgs(
                    load_balancer_arn=balancer.arn,
                    rate_limit_per_ip=config.access.rate_limit_per_ip,
                    log_group_name=waf_log_group_name(base, stack),
                    log_retention_days=config.audit.log_retention_days,
                    kms_key_arn=platform_key.key_arn,
                ),
                opts=child,
            )
        public_host = (
            pulumi.Output.from_input(config.access.domain_name)
            if config.access.domain_name is not None
            else balancer.dns_name
        )
        uri = public_host.apply(lambda host: tracking_uri(https=serves_https(config.access), host=host))
        server = TrackingServer(
            f"{base}-server",
            TrackingServerArgs(
                config=config.server,
                region=config.region,
                private_subnet_ids=network.private_subnet_ids,
                security_group_id=firewall.server_security_group_id,
                target_group_arn=balancer.target_group_arn,
                bucket_name=artifacts.bucket_name,
                bucket_arn=artifacts.bucket_arn,
                artifact_kms_key_arn=artifacts.kms_key_arn,
                platform_kms_key_arn=platform_key.key_arn,
                secrets=ServerSecrets(
                    database=database.secret_arn,
                    admin=credentials.admin_secret_arn,
                    flask_secret_key=credentials.flask_secret_key_arn,
                ),
                log_group_name=f"{log_group_prefix(stack)}{base}-server",
                allowed_hosts=balancer.dns_name.apply(lambda dns: allowed_hosts(config, dns)),
                public_scheme="https" if serves_https(config.access) else "http",
                identity=pulumi.Output.all(uri, balancer.dns_name).apply(
                    lambda values: server_identity(config, values[0], values[1])
                ),
                force_delete_images=config.artifacts.force_destroy,
                depends_on=[*balancer.listeners, upgrade_snapshot.snapshot],
                image_context=image_context,
            ),
            opts=child,
        )

        if config.network.existing is None:
            StsEndpoint(
                f"{base}-sts",
                StsEndpointArgs(
                    region=config.region,
                    vpc_id=network.vpc_id,
                    subnet_ids=network.private_subnet_ids,
                    server_security_group_id=firewall.server_security_group_id,
                ),
                opts=child,
            )
        AdminSecretPolicy(
            f"{base}-admin-secret",
            AdminSecretPolicyArgs(
                secret_arn=credentials.admin_secret_arn,
                readers=[server.execution_role_arn],
                admin_principals=[principal.arn for principal in config.identity.principals if principal.admin],
            ),
            opts=child,
        )

        alerting = Alerting(
            f"{base}-alerts",
            AlertingArgs(
                config=config.alerts,
                region=config.region,
                load_balancer_arn_suffix=balancer.arn_suffix,
                target_group_arn_suffix=balancer.target_group_arn_suffix,
                cluster_name=server.cluster_name,
                service_name=server.service_name,
                min_running_tasks=config.server.min_count,
                database_identifier=database.identifier,
            ),
            opts=child,
        )

        model_reader = ModelReaderPolicy(
            f"{base}-model-reader",
            ModelReaderArgs(
                stack=stack,
                region=config.region,
                bucket_arn=artifacts.bucket_arn,
                artifact_kms_key_arn=artifacts.kms_key_arn,
            ),
            opts=child,
        )
        publication = ClientConfigPublication(
            f"{base}-client-config",
            ClientConfigPublicationArgs(
                stack=stack,
                tracking_uri=uri,
                artifact_store_uri=artifacts.artifact_store_uri,
                region=config.region,
                mlflow_version=config.server.mlflow_version,
                auth="aws-iam",
                model_reader_policy_arn=model_reader.policy_arn,
            ),
            opts=child,
        )

        self.client_config = publication.client_config
        self.tracking_uri = uri
        self.load_balancer_dns_name = balancer.dns_name
        self.artifact_store_uri = artifacts.artifact_store_uri
        self.credentials_secret_arn = credentials.admin_secret_arn
        self.cluster_name = server.cluster_name
        self.service_name = server.service_name
        self.log_group_name = server.log_group_name
        self.vpc_id = network.vpc_id
        self.model_reader_policy_arn = model_reader.policy_arn
        self.alarm_topic_arn = alerting.topic_arn
        self.audit_log_bucket = audit.bucket_name
        self.upgrade_snapshot_id = upgrade_snapshot.snapshot_identifier
        self.register_outputs(self.stack_outputs())

    def stack_outputs(self) -> dict[str, pulumi.Output[Any]]:
        """What `pulumi stack output` shows: the client config and the names an operator looks for."""
        return {
            STACK_OUTPUT_NAME: self.client_config,
            "tracking_uri": self.tracking_uri,
            "artifact_store_uri": self.artifact_store_uri,
            "credentials_secret_arn": self.credentials_secret_arn,
            "load_balancer_dns_name": self.load_balancer_dns_name,
            "ecs_cluster": self.cluster_name,
            "ecs_service": self.service_name,
            "log_group": self.log_group_name,
            "vpc_id": self.vpc_id,
            "model_reader_policy_arn": self.model_reader_policy_arn,
            "alarm_topic_arn": self.alarm_topic_arn,
            "audit_log_bucket": self.audit_log_bucket,
            "upgrade_snapshot_id": self.upgrade_snapshot_id,
        }


def export_stack_outputs(platform: MlflowPlatform) -> None:
    for key, value in platform.stack_outputs().items():
        pulumi.export(key, value)
