"""Policy documents as plain data, serialised in one place.

Every policy of the platform (role policies, key policies, the bucket policy) is written with these
helpers so the tests can parse each document the same way and hold it to one rule: no allowed
wildcard action, and `Resource: "*"` only where AWS accepts nothing narrower.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

POLICY_VERSION = "2012-10-17"

# Actions AWS authorises only on `Resource: "*"`; each needs a reason here, and nothing else may use "*".
ACTIONS_WITHOUT_RESOURCE_SCOPE: dict[str, str] = {
    "ecr:GetAuthorizationToken": "the registry login token is account-wide; ECR has no resource-level scope for it",
}


def policy_document(*statements: pulumi.Input[dict[str, Any]]) -> pulumi.Output[str]:
    """A JSON policy document; statements may hold Outputs (ARNs) anywhere inside."""
    return pulumi.Output.json_dumps({"Version": POLICY_VERSION, "Statement": list(statements)})


def service_assume_role_policy(service: str, account_id: pulumi.Input[str]) -> pulumi.Output[str]:
    """Trust policy for an AWS service, limited to this account (the confused-deputy guard)."""
    return policy_document(
        {
            "Sid": "AssumedByServiceForThisAccountOnly",
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
        }
    )


def caller_identity(parent: pulumi.Resource) -> pulumi.Output[aws.GetCallerIdentityResult]:
    """The deploying account, looked up through the parent's (explicit) AWS provider."""
    return aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=parent))


def partition(parent: pulumi.Resource) -> pulumi.Output[str]:
    """`aws`, `aws-cn` or `aws-us-gov`: ARNs are built with it, never with a hard-coded `aws`."""
    return aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=parent)).partition


# Every bucket of the platform refuses requests made over TLS older than this.
MINIMUM_TLS_VERSION = "1.2"


def tls_only_bucket_statements(bucket_arn: pulumi.Input[str], objects_arn: pulumi.Input[str]) -> list[dict[str, Any]]:
    """The two bucket-policy statements every bucket of the platform carries: no plain HTTP, no old TLS."""
    return [
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [bucket_arn, objects_arn],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
        {
            "Sid": "DenyOutdatedTls",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [bucket_arn, objects_arn],
            "Condition": {"NumericLessThan": {"s3:TlsVersion": MINIMUM_TLS_VERSION}},
        },
    ]
