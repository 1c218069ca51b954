"""The S3 artifact store: private, versioned, encrypted with its own key, reachable over TLS only.

Artifacts are proxied by the server (docs/architecture.md), so the task role is the only writer; the bucket
has its own KMS key so that reading artifacts can be granted (or audited) apart from the secrets.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from mlflow_platform.infra.encryption import EncryptionKey, EncryptionKeyArgs
from mlflow_platform.infra.policies import policy_document, tls_only_bucket_statements
from toolkit.platform_config import ArtifactsConfig

INCOMPLETE_UPLOAD_DAYS = 7


@dataclass(frozen=True)
class ArtifactStoreArgs:
    config: ArtifactsConfig
    """The stack's `artifacts` section: retention of old versions, whether the bucket may be destroyed with content."""
    region: str
    """The stack's region; the bucket and its key live there."""


class ArtifactStore(pulumi.ComponentResource):
    """Bucket, its key, and every bucket-level control (versioning, encryption, access, lifecycle)."""

    bucket_name: pulumi.Output[str]
    """The artifact bucket's name."""
    bucket_arn: pulumi.Output[str]
    """The artifact bucket's ARN (the server's task role is scoped to it)."""
    kms_key_arn: pulumi.Output[str]
    """The bucket's own KMS key (SSE-KMS, bucket key on)."""
    artifact_store_uri: pulumi.Output[str]
    """`s3://<bucket>`: the server's artifacts destination and the client config's artifact store."""

    def __init__(self, name: str, args: ArtifactStoreArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlflow-platform:storage:ArtifactStore", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        config = args.config

        key = EncryptionKey(
            name,
            EncryptionKeyArgs(description=f"{name}: MLflow artifacts bucket", region=args.region),
            opts=child,
        )
        bucket = aws.s3.Bucket(
            f"{name}-bucket",
            # None lets Pulumi derive a unique name from the resource name.
            bucket=config.bucket_name,
            # Only a stack that says so may lose its artifacts on `pulumi destroy` (PlatformConfig forbids it in prod).
            force_destroy=config.force_destroy,
            opts=child,
        )
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
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=child,
        )
        versioning = aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="aws:kms",
                        kms_master_key_id=key.key_arn,
                    ),
                    # One data key per bucket instead of a KMS call per object: cheaper, same protection.
                    bucket_key_enabled=True,
                )
            ],
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-old-versions",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(),
                    noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                        noncurrent_days=config.noncurrent_version_retention_days
                    ),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(expired_object_delete_marker=True),
                    abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                        days_after_initiation=INCOMPLETE_UPLOAD_DAYS
                    ),
                )
            ],
            # S3 rejects version rules on a bucket whose versioning is still being switched on.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]),
        )
        objects = pulumi.Output.concat(bucket.arn, "/*")
        aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=bucket.id,
            policy=policy_document(
                *tls_only_bucket_statements(bucket.arn, objects),
            ),
            # A policy write while the public-access block is being applied can be refused: order them.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[access_block]),
        )

        self.bucket_name = bucket.bucket
        self.bucket_arn = bucket.arn
        self.kms_key_arn = key.key_arn
        self.artifact_store_uri = pulumi.Output.concat("s3://", bucket.bucket)
        self.register_outputs(
            {
                "bucket_name": self.bucket_name,
                "bucket_arn": self.bucket_arn,
                "kms_key_arn": self.kms_key_arn,
                "artifact_store_uri": self.artifact_store_uri,
            }
        )
