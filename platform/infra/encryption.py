"""Customer-managed KMS keys: rotation on, and a key policy that names every action it allows.

The default key policy grants `kms:*` to the account; this one lists the actions instead, so the key
policy passes the same no-wildcard check as every IAM policy. The account root statement is what lets
IAM policies (the task roles) grant use of the key; the optional CloudWatch Logs statement lets the
log service encrypt exactly the log groups under the given name prefixes, and the optional publisher
statement lets named AWS services (CloudWatch alarms, RDS events) encrypt for this account only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from mlflow_platform.infra.policies import caller_identity, partition, policy_document

# What the account (and through it, IAM policies) may do with the key: administration and use,
# listed one by one. Pulumi needs the administrative ones to manage the key and its alias.
ACCOUNT_KEY_ACTIONS = (
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListKeyRotations",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:RetireGrant",
    "kms:RevokeGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
)
LOGS_KEY_ACTIONS = (
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
)
# What an AWS service publishing to a topic encrypted with the key needs (SNS' documented minimum).
PUBLISHER_KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
DELETION_WINDOW_DAYS = 30


@dataclass(frozen=True)
class EncryptionKeyArgs:
    description: str
    """What the key protects (shown in the KMS console)."""
    region: str
    """The stack's region (the key policy's service conditions name it)."""
    log_group_prefixes: Sequence[pulumi.Input[str]] = ()
    """CloudWatch Logs may use the key only for log groups whose name starts with one of these prefixes."""
    publisher_services: Sequence[str] = ()
    """AWS services (`cloudwatch.amazonaws.com`, ...) that may encrypt with the key for this account
    only, e.g. to publish to an SNS topic the key encrypts."""


class EncryptionKey(pulumi.ComponentResource):
    """One rotating KMS key with an alias named after the component."""

    key_arn: pulumi.Output[str]
    """The key's ARN (what resources and policies reference)."""
    key_id: pulumi.Output[str]
    """The key's id."""

    def __init__(self, name: str, args: EncryptionKeyArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlflow-platform:security:EncryptionKey", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        identity = caller_identity(self)
        arn_partition = partition(self)
        account_root = pulumi.Output.concat("arn:", arn_partition, ":iam::", identity.account_id, ":root")

        statements: list[pulumi.Input[dict[str, object]]] = [
            {
                "Sid": "AccountAdministersAndGrantsThroughIam",
                "Effect": "Allow",
                "Principal": {"AWS": account_root},
                "Action": list(ACCOUNT_KEY_ACTIONS),
                # In a key policy "*" means this key and nothing else.
                "Resource": "*",
            }
        ]
        if args.log_group_prefixes:
            log_groups = [
                pulumi.Output.concat(
                    "arn:", arn_partition, ":logs:", args.region, ":", identity.account_id, ":log-group:", prefix, "*"
                )
                for prefix in args.log_group_prefixes
            ]
            statements.append(
                {
                    "Sid": "CloudWatchLogsForThePlatformLogGroupsOnly",
                    "Effect": "Allow",
                    "Principal": {"Service": f"logs.{args.region}.amazonaws.com"},
                    "Action": list(LOGS_KEY_ACTIONS),
                    "Resource": "*",
                    "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": log_groups}},
                }
            )
        if args.publisher_services:
            statements.append(
                {
                    "Sid": "AwsServicesPublishForThisAccountOnly",
                    "Effect": "Allow",
                    "Principal": {"Service": sorted(args.publisher_services)},
                    "Action": list(PUBLISHER_KEY_ACTIONS),
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:SourceAccount": identity.account_id}},
                }
            )

        key = aws.kms.Key(
            f"{name}-key",
            description=args.description,
            enable_key_rotation=True,
            deletion_window_in_days=DELETION_WINDOW_DAYS,
            policy=policy_document(*statements),
            opts=child,
        )
        # A prefix, not a fixed name: two stacks in one account and region must not collide.
        aws.kms.Alias(f"{name}-alias", name_prefix=f"alias/{name}-", target_key_id=key.key_id, opts=child)

        self.key_arn = key.arn
        self.key_id = key.key_id
        self.register_outputs({"key_arn": self.key_arn, "key_id": self.key_id})
