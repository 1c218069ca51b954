"""`PlatformConfig`: everything a stack is configured with, validated before any resource exists.

The model lives in the toolkit (which never imports Pulumi) so the platform and its tests share one
definition. Secure settings are the defaults; a stack has to write down, in its own file, any choice
that weakens them (plain HTTP, no deletion protection, a bucket that may be destroyed with content).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from ipaddress import IPv4Network
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mlflow_platform.server.contract import DEFAULT_WORKERS, STOP_TIMEOUT_SECONDS, IdentityMapping, Workers
from toolkit.config_types import AwsRegion, MlflowVersion
from toolkit.errors import ConfigError, config_error_from_validation

# Fargate's valid (cpu units -> memory MiB) combinations, from the ECS task-size table.
FARGATE_MEMORY_BY_CPU: dict[int, range] = {
    256: range(512, 2048 + 1, 512),
    512: range(1024, 4096 + 1, 1024),
    1024: range(2048, 8192 + 1, 1024),
    2048: range(4096, 16384 + 1, 1024),
    4096: range(8192, 30720 + 1, 1024),
    8192: range(16384, 61440 + 1, 4096),
    16384: range(32768, 122880 + 1, 8192),
}
# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)

_NAME = re.compile(r"^[a-z][a-z0-9-]{1,23}$")
_ACM_ARN = re.compile(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]{36}$")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,63}$")
# RDS instance and snapshot identifiers: a letter, then letters, digits and single hyphens.
_RDS_IDENTIFIER = re.compile(r"^[a-z](?!.*--)[a-z0-9-]{0,61}[a-z0-9]$")
_RDS_SNAPSHOT_ARN = r"arn:aws[a-z-]*:rds:[a-z0-9-]+:\d{12}:snapshot:"
_RDS_SNAPSHOT = re.compile(rf"^({_RDS_SNAPSHOT_ARN})?[a-zA-Z](?!.*--)[a-zA-Z0-9-]{{0,253}}[a-zA-Z0-9]$")


def default_mlflow_version() -> str:
    """The MLflow the toolkit runs with: the server image pins the same one from uv.lock."""
    try:
        return version("mlflow")
    except PackageNotFoundError:  # pragma: no cover - mlflow is a base dependency
        return "3.17.2"


class _Section(BaseModel):
    """Config sections reject unknown keys: a typo must fail, not be ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


class ExistingNetwork(_Section):
    """A VPC the organisation already runs; the platform adds only security groups to it."""

    vpc_id: Annotated[str, Field(pattern=r"^vpc-[0-9a-f]{8,17}$")]
    public_subnet_ids: Annotated[list[Annotated[str, Field(pattern=r"^subnet-[0-9a-f]{8,17}$")]], Field(min_length=2)]
    private_subnet_ids: Annotated[list[Annotated[str, Field(pattern=r"^subnet-[0-9a-f]{8,17}$")]], Field(min_length=2)]
    isolated_subnet_ids: Annotated[list[Annotated[str, Field(pattern=r"^subnet-[0-9a-f]{8,17}$")]], Field(min_length=2)]


class NetworkConfig(_Section):
    """A new VPC (the default) or an existing one."""

    vpc_cidr: IPv4Network = IPv4Network("10.42.0.0/16")
    az_count: Annotated[int, Field(ge=2, le=6)] = 2
    nat_gateways: Literal["single", "per_az"] = "single"
    existing: ExistingNetwork | None = None

    @field_validator("vpc_cidr")
    @classmethod
    def _vpc_sized_for_subnets(cls, value: IPv4Network) -> IPv4Network:
        if not 16 <= value.prefixlen <= 20:
            raise ValueError("expected a VPC CIDR with a prefix between /16 and /20 (room for 3 subnet tiers)")
        if not value.is_private:
            raise ValueError("expected a private (RFC 1918) range such as 10.42.0.0/16")
        return value


class DatabaseConfig(_Section):
    """RDS PostgreSQL holding MLflow's tracking and auth tables."""

    engine_version: Annotated[str, Field(pattern=r"^(1[5-9])(\.\d+)?$")] = "17"
    instance_class: Annotated[str, Field(pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$")] = "db.t4g.micro"
    allocated_storage_gb: Annotated[int, Field(ge=20, le=65536)] = 20
    max_allocated_storage_gb: Annotated[int, Field(ge=20, le=65536)] = 100
    multi_az: bool = False
    backup_retention_days: Annotated[int, Field(ge=1, le=35)] = 7
    deletion_protection: bool = True
    skip_final_snapshot: bool = False
    # Performance Insights (query-level load, encrypted with the platform key); prod requires it.
    performance_insights: bool = True
    # Days Performance Insights keeps its data: 7 (free) or a multiple of 31 up to 731.
    performance_insights_retention_days: int = 7
    # The RDS instance identifier; default `<name>-db-<stack>`. A stack deployed before the platform
    # named its instance sets the identifier it has, so the instance is kept rather than replaced.
    identifier: str | None = None
    # Restore the database from this snapshot (name or ARN), e.g. a pre-upgrade snapshot for a
    # rollback. Changing it replaces the instance; keep it set afterwards (README, Operating the platform).
    restore_from_snapshot: str | None = None

    @field_validator("performance_insights_retention_days")
    @classmethod
    def _pi_retention(cls, value: int) -> int:
        if value != 7 and not (value % 31 == 0 and 31 <= value <= 731):
            raise ValueError("expected 7, or a multiple of 31 up to 731 (Performance Insights retention periods)")
        return value

    @field_validator("identifier")
    @classmethod
    def _rds_identifier(cls, value: str | None) -> str | None:
        if value is not None and not _RDS_IDENTIFIER.match(value):
            raise ValueError(
                "expected an RDS identifier: 2-63 lower-case letters, digits or single hyphens, starting with a letter"
            )
        return value

    @field_validator("restore_from_snapshot")
    @classmethod
    def _snapshot_name(cls, value: str | None) -> str | None:
        if value is not None and not _RDS_SNAPSHOT.match(value):
            raise ValueError("expected an RDS snapshot identifier or ARN (letters, digits, single hyphens)")
        return value

    @model_validator(mode="after")
    def _storage_can_grow(self) -> Self:
        if self.max_allocated_storage_gb < self.allocated_storage_gb:
            raise ValueError(
                f"max_allocated_storage_gb: got {self.max_allocated_storage_gb}, expected >= "
                f"allocated_storage_gb ({self.allocated_storage_gb})"
            )
        return self


class ServerConfig(_Section):
    """The MLflow tracking server on ECS Fargate."""

    mlflow_version: MlflowVersion = Field(default_factory=default_mlflow_version)
    cpu: Literal[256, 512, 1024, 2048, 4096, 8192, 16384] = 1024
    memory_mib: Annotated[int, Field(ge=512)] = 2048
    desired_count: Annotated[int, Field(ge=0, le=100)] = 1
    min_count: Annotated[int, Field(ge=0, le=100)] = 1
    max_count: Annotated[int, Field(ge=1, le=100)] = 2
    cpu_target_percent: Annotated[int, Field(ge=10, le=90)] = 60
    workers: Workers = DEFAULT_WORKERS
    image: str | None = None
    serve_artifacts: bool = True
    log_retention_days: int = 90
    # Seconds a task leaving the load balancer (deploy, scale-in) keeps serving the requests it has,
    # e.g. a large model upload: the target group's deregistration delay. At least the container's
    # stop timeout, at most the load balancer's limit.
    drain_seconds: Annotated[int, Field(ge=STOP_TIMEOUT_SECONDS, le=3600)] = 300

    @field_validator("log_retention_days")
    @classmethod
    def _retention_allowed(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(f"expected one of CloudWatch's retention periods {LOG_RETENTION_DAYS}")
        return value

    @model_validator(mode="after")
    def _sizes_consistent(self) -> Self:
        problems = []
        allowed = FARGATE_MEMORY_BY_CPU[self.cpu]
        if self.memory_mib not in allowed:
            problems.append(
                f"memory_mib: got {self.memory_mib}, expected {allowed.start}..{allowed.stop - 1} MiB "
                f"in steps of {allowed.step} with cpu {self.cpu} (Fargate task sizes)"
            )
        if self.min_count > self.max_count:
            problems.append(f"min_count: got {self.min_count}, expected <= max_count ({self.max_count})")
        elif not self.min_count <= self.desired_count <= self.max_count:
            problems.append(
                f"desired_count: got {self.desired_count}, expected between min_count ({self.min_count}) "
                f"and max_count ({self.max_count})"
            )
        if problems:
            raise ValueError("\n".join(problems))
        return self


class AccessConfig(_Section):
    """Who reaches the server, and under which name."""

    certificate_arn: str | None = None
    allowed_cidrs: Annotated[list[IPv4Network], Field(min_length=1)]
    internal: bool = False
    allow_insecure_http: bool = False
    domain_name: str | None = None
    hosted_zone_id: Annotated[str, Field(pattern=r"^Z[A-Z0-9]{1,31}$")] | None = None
    allowed_hosts: list[str] = Field(default_factory=list)
    # Prod refuses 0.0.0.0/0 in allowed_cidrs unless this says that anyone on the internet may connect.
    allow_open_internet: bool = False
    # Requests one client IP may send in 5 minutes before the web ACL blocks it (internet-facing
    # load balancers only). A whole office behind one NAT address counts as one client.
    rate_limit_per_ip: Annotated[int, Field(ge=10, le=2_000_000_000)] = 3000

    @field_validator("certificate_arn")
    @classmethod
    def _acm_arn(cls, value: str | None) -> str | None:
        if value is not None and not _ACM_ARN.match(value):
            raise ValueError("expected an ACM certificate ARN, arn:aws:acm:<region>:<account>:certificate/<uuid>")
        return value

    @field_validator("domain_name")
    @classmethod
    def _hostname(cls, value: str | None) -> str | None:
        if value is not None and not _HOSTNAME.match(value):
            raise ValueError("expected a lower-case DNS name such as mlflow.example.org")
        return value

    @model_validator(mode="after")
    def _https_or_explicitly_http(self) -> Self:
        if self.certificate_arn is None and not self.allow_insecure_http:
            raise ValueError(
                "certificate_arn: not set, so the load balancer would serve plain HTTP; expected an ACM "
                "certificate ARN, or allow_insecure_http: true to accept plain HTTP explicitly"
            )
        if self.hosted_zone_id is not None and self.domain_name is None:
            raise ValueError(
                f"domain_name: not set, but hosted_zone_id is {self.hosted_zone_id!r}; expected the DNS name "
                "of the alias record to create in that zone"
            )
        return self


class ArtifactsConfig(_Section):
    """The S3 artifact store."""

    bucket_name: str | None = None
    noncurrent_version_retention_days: Annotated[int, Field(ge=1, le=3650)] = 90
    force_destroy: bool = False

    @field_validator("bucket_name")
    @classmethod
    def _bucket(cls, value: str | None) -> str | None:
        if value is not None and (not _BUCKET.match(value) or ".." in value):
            raise ValueError("expected an S3 bucket name: 3-63 lower-case letters, digits, '-' or '.'")
        return value


class AlertsConfig(_Section):
    """Who is told when the platform breaks, and the thresholds of its alarms."""

    # E-mail addresses subscribed to the alarm topic (each confirms once); prod needs at least one.
    emails: list[str] = Field(default_factory=list)
    # Share of the requests reaching the tasks that end in a 5XX, in percent.
    target_5xx_percent: Annotated[float, Field(gt=0, le=100)] = 5.0
    # Database CPU, in percent.
    database_cpu_percent: Annotated[int, Field(ge=1, le=100)] = 80
    # Free database storage below this many GiB.
    database_free_storage_gib: Annotated[int, Field(ge=1, le=65536)] = 5
    # Open database connections above this count (each server worker pools a few).
    database_connections: Annotated[int, Field(ge=1, le=100_000)] = 100
    # Minutes a condition must hold, one-minute periods in a row, before its alarm fires.
    evaluation_minutes: Annotated[int, Field(ge=1, le=60)] = 5

    @field_validator("emails")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        bad = [address for address in value if not _EMAIL.match(address)]
        if bad:
            raise ValueError(f"expected e-mail addresses such as ml-oncall@example.org, got {bad}")
        if len(set(value)) != len(value):
            raise ValueError("expected each address once")
        return value


class AuditConfig(_Section):
    """Where the access and database logs go, and for how long they are kept."""

    # Days the load-balancer and S3 access logs (log bucket), the database's exported logs and the
    # web ACL's logs (CloudWatch) are kept.
    log_retention_days: int = 365
    # `pulumi destroy` may delete the log bucket with its logs (dev only; prod refuses it).
    force_destroy: bool = False

    @field_validator("log_retention_days")
    @classmethod
    def _retention_allowed(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(f"expected one of CloudWatch's retention periods {LOG_RETENTION_DAYS}")
        return value


class PlatformConfig(_Section):
    """The whole stack configuration. Build it with `PlatformConfig.from_stack_config` or `parse`."""

    environment: Literal["dev", "prod"] = "dev"
    region: AwsRegion
    name: Annotated[str, Field(pattern=_NAME.pattern)] = "mlflow"
    network: NetworkConfig = NetworkConfig()
    database: DatabaseConfig = DatabaseConfig()
    server: ServerConfig = ServerConfig()
    access: AccessConfig
    artifacts: ArtifactsConfig = ArtifactsConfig()
    alerts: AlertsConfig = AlertsConfig()
    audit: AuditConfig = AuditConfig()
    # Who signs in with which AWS identity (`contract.IdentityMapping`): `default_permission` and `principals`.
    identity: IdentityMapping = IdentityMapping()
    tags: dict[str, str] = Field(default_factory=dict)

    @property
    def is_prod(self) -> bool:
        return self.environment == "prod"

    @model_validator(mode="after")
    def _prod_is_hardened(self) -> Self:
        """A prod stack may not carry dev shortcuts; each is named with the key that fixes it."""
        if not self.is_prod:
            return self
        problems = []
        if self.access.certificate_arn is None:
            problems.append("access.certificate_arn: not set, expected an ACM certificate ARN (prod serves HTTPS only)")
        if self.access.allow_insecure_http:
            problems.append("access.allow_insecure_http: got True, expected false in prod")
        if not self.database.multi_az:
            problems.append("database.multi_az: got False, expected true in prod")
        if self.database.backup_retention_days < 7:
            problems.append(
                f"database.backup_retention_days: got {self.database.backup_retention_days}, expected >= 7 in prod"
            )
        if not self.database.deletion_protection:
            problems.append("database.deletion_protection: got False, expected true in prod")
        if self.database.skip_final_snapshot:
            problems.append("database.skip_final_snapshot: got True, expected false in prod (keep a final snapshot)")
        if self.artifacts.force_destroy:
            problems.append(
                "artifacts.force_destroy: got True, expected false in prod (a destroy never empties the bucket)"
            )
        if self.server.min_count < 2:
            problems.append(f"server.min_count: got {self.server.min_count}, expected >= 2 tasks in prod")
        if not self.alerts.emails:
            problems.append("alerts.emails: empty, expected at least one address in prod (someone must get the alarms)")
        if not self.database.performance_insights:
            problems.append("database.performance_insights: got False, expected true in prod")
        if self.audit.force_destroy:
            problems.append("audit.force_destroy: got True, expected false in prod (a destroy never deletes the logs)")
        if any(cidr.prefixlen == 0 for cidr in self.access.allowed_cidrs) and not self.access.allow_open_internet:
            problems.append(
                "access.allowed_cidrs: contains 0.0.0.0/0, expected the clients' ranges in prod; set "
                "access.allow_open_internet: true to accept connections from anywhere explicitly"
            )
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @classmethod
    def parse(cls, data: Mapping[str, Any], *, source: str = "config") -> PlatformConfig:
        """Validate a plain mapping; raise `ConfigError` whose lines name each key, value and expectation."""
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise config_error_from_validation(exc, source=source) from None

    @classmethod
    def from_stack_config(
        cls, values: Mapping[str, Any], *, namespace: str, source: str = "stack config"
    ) -> PlatformConfig:
        """Build from a Pulumi config map (`"<namespace>:<key>" -> value`).

        Pulumi hands structured values over as JSON strings; plain strings stay strings. Keys of other
        namespaces (`aws:region`, ...) are ignored, except that `aws:region` is the default region.
        """
        data: dict[str, Any] = {}
        prefix = f"{namespace}:"
        for full_key, raw in values.items():
            if not full_key.startswith(prefix):
                continue
            data[full_key[len(prefix) :]] = _decode_pulumi_value(raw)
        if "region" not in data and values.get("aws:region"):
            data["region"] = values["aws:region"]
        return cls.parse(data, source=source)


def _decode_pulumi_value(raw: Any) -> Any:
    """Pulumi passes objects, lists, numbers and booleans JSON-encoded; anything else is a string."""
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


__all__ = [
    "AccessConfig",
    "AlertsConfig",
    "ArtifactsConfig",
    "AuditConfig",
    "ConfigError",
    "DatabaseConfig",
    "ExistingNetwork",
    "IdentityMapping",
    "NetworkConfig",
    "PlatformConfig",
    "ServerConfig",
]
