"""The audit trail's bucket: load-balancer access logs and the artifact bucket's server access logs.

The load balancer writes one line per request (client address, path, status, bytes, user agent); the
artifact bucket's server access logs record every S3 request made to it, which is the only record of
who read which model outside the tracking server (scoring pipelines read the bucket directly).

The bucket is dedicated, private (public access blocked, ACLs disabled), versioned, reachable over TLS
only, and its objects expire after `audit.log_retention_days`. It is encrypted with S3-managed keys
(SSE-S3, AES-256): the load balancer cannot deliver its logs to a bucket encrypted with a KMS key.
Its policy lets exactly two writers put objects, each under its own prefix and on behalf of this
account only: Elastic Load Balancing's log delivery, and S3's logging service for the artifact bucket.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from mlflow_platform.infra.policies import caller_identity, policy_document, tls_only_bucket_statements

LOAD_BALANCER_PREFIX = "load-balancer"
ARTIFACT_ACCESS_PREFIX = "s3-access/artifacts/"
# Days a log object that was overwritten or deleted stays recoverable.
NONCURRENT_LOG_DAYS = 30
INCOMPLETE_UPLOAD_DAYS = 7
# Regions opened before Elastic Load Balancing's log delivery had a service principal: there the
# regional ELB account writes the logs (its id comes from the provider's `elb.get_service_account`).
REGIONS_WITH_ELB_ACCOUNT = frozenset(
    {
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
        "af-south-1",
        "ap-east-1",
        "ap-south-1",
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-northeast-3",
        "ap-southeast-1",
        "ap-southeast-2",
        "ca-central-1",
        "eu-central-1",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
        "eu-south-1",
        "eu-north-1",
        "me-south-1",
        "sa-east-1",
        "us-gov-west-1",
        "us-gov-east-1",
    }
)
ELB_LOG_DELIVERY = "logdelivery.elasticloadbalancing.amazonaws.com"
S3_LOG_DELIVERY = "logging.s3.amazonaws.com"


@dataclass(frozen=True)
class AuditLogsArgs:
    region: str
    """The stack's region (the bucket and the load balancer's log delivery live there)."""
    retention_days: int
    """Days a log object is kept (`audit.log_retention_days`)."""
    force_destroy: bool
    """Whether `pulumi destroy` may delete the bucket with its logs (`audit.force_destroy`; never in prod)."""
    artifact_bucket_name: pulumi.Input[str]
    """The artifact bucket whose server access logs are kept here."""
    artifact_bucket_arn: pulumi.Input[str]
    """The artifact bucket's ARN: the only source S3's logging service may write for."""


class AuditLogs(pulumi.ComponentResource):
    """The log bucket and its controls, and the artifact bucket's server access logging into it."""

    bucket_name: pulumi.Output[str]
    """The log bucket; resolves once its policy is in place, so a load balancer that logs to it is
    created after the policy that lets it write (ELB checks the permission when logging is turned on)."""
    bucket_arn: pulumi.Output[str]
    """The log bucket's ARN."""
    load_balancer_prefix: pulumi.Output[str]
    """The key prefix of the load balancer's access logs."""
    artifact_access_prefix: pulumi.Output[str]
    """The key prefix of the artifact bucket's server access logs."""

    def __init__(self, name: str, args: AuditLogsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlflow-platform:operations:AuditLogs", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        account_id = caller_identity(self).account_id

        bucket = aws.s3.Bucket(f"{name}-bucket", force_destroy=args.force_destroy, opts=child)
        access_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"},
            opts=child,
        )
        versioning = aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket.id,
            versioning_configuration={"status": "Enabled"},
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket.id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}],
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket.id,
            rules=[
                {
                    "id": "expire-logs",
                    "status": "Enabled",
                    "filter": {},
                    "expiration": {"days": args.retention_days},
                    "noncurrent_version_expiration": {"noncurrent_days": NONCURRENT_LOG_DAYS},
                    "abort_incomplete_multipart_upload": {"days_after_initiation": INCOMPLETE_UPLOAD_DAYS},
                }
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]),
        )

        objects = pulumi.Output.concat(bucket.arn, "/*")
        load_balancer_logs = pulumi.Output.concat(bucket.arn, "/", LOAD_BALANCER_PREFIX, "/AWSLogs/", account_id, "/*")
        load_balancer_statements: list[pulumi.Input[dict[str, object]]] = [
            {
                "Sid": "LoadBalancerLogDelivery",
                "Effect": "Allow",
                "Principal": {"Service": ELB_LOG_DELIVERY},
                "Action": "s3:PutObject",
                "Resource": load_balancer_logs,
            }
        ]
        if args.region in REGIONS_WITH_ELB_ACCOUNT:
            elb_account = aws.elb.get_service_account_output(
                region=args.region, opts=pulumi.InvokeOutputOptions(parent=self)
            )
            load_balancer_statements.append(
                {
                    "Sid": "LoadBalancerLogDeliveryRegionalAccount",
                    "Effect": "Allow",
                    "Principal": {"AWS": elb_account.arn},
                    "Action": "s3:PutObject",
                    "Resource": load_balancer_logs,
                }
            )
        policy = aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=bucket.id,
            policy=policy_document(
                *tls_only_bucket_statements(bucket.arn, objects),
                *load_balancer_statements,
                {
                    "Sid": "ArtifactBucketAccessLogs",
                    "Effect": "Allow",
                    "Principal": {"Service": S3_LOG_DELIVERY},
                    "Action": "s3:PutObject",
                    "Resource": pulumi.Output.concat(bucket.arn, "/", ARTIFACT_ACCESS_PREFIX, "*"),
                    "Condition": {
                        "ArnLike": {"aws:SourceArn": args.artifact_bucket_arn},
                        "StringEquals": {"aws:SourceAccount": account_id},
                    },
                },
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[access_block]),
        )
        aws.s3.BucketLogging(
            f"{name}-artifact-access",
            bucket=args.artifact_bucket_name,
            target_bucket=bucket.bucket,
            target_prefix=ARTIFACT_ACCESS_PREFIX,
            # One folder per day, which keeps listing a day's logs cheap.
            target_object_key_format={"partitioned_prefix": {"partition_date_source": "EventTime"}},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )

        self.bucket_name = pulumi.Output.all(bucket.bucket, policy.id).apply(lambda values: str(values[0]))
        self.bucket_arn = bucket.arn
        self.load_balancer_prefix = pulumi.Output.from_input(LOAD_BALANCER_PREFIX)
        self.artifact_access_prefix = pulumi.Output.from_input(ARTIFACT_ACCESS_PREFIX)
        self.register_outputs(
            {
                "bucket_name": self.bucket_name,
                "bucket_arn": self.bucket_arn,
                "load_balancer_prefix": self.load_balancer_prefix,
                "artifact_access_prefix": self.artifact_access_prefix,
            }
        )
