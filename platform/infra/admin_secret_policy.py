"""The admin secret's resource policy: only the server and the principals mapped as admins read it.

The break-glass admin's password opens everything in MLflow. Scientists sign in with their AWS
identity and never need it, so an IAM policy elsewhere in the account that happens to allow
`secretsmanager:GetSecretValue` broadly must not reach it: the secret's own policy denies the read to
every principal except

- the task's execution role (ECS hands the secret to the container at start),
- the principals the stack's `identity` mapping marks `admin: true`, and
- the principal deploying the stack (Pulumi reads back the secret version it writes).

The policy names IAM principals (`aws:PrincipalArn`): a mapped role session
(`arn:aws:sts::<account>:assumed-role/<role>/<session>`) becomes its role, under any path (SSO roles
live under `/aws-reserved/sso.amazonaws.com/`), so the policy admits every session of an admin role.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from mlflow_platform.infra.policies import caller_identity, policy_document

READ_ACTIONS = ["secretsmanager:GetSecretValue"]


def principal_arn_patterns(mapped: str) -> list[str]:
    """What `aws:PrincipalArn` is for the principals an identity-mapping ARN pattern admits."""
    parts = mapped.split(":", 5)
    if len(parts) != 6:
        return [mapped]
    _, partition, service, _, account, resource = parts
    kind, _, rest = resource.partition("/")
    if service in ("sts", "*") and kind in ("assumed-role", "*"):
        role = rest.split("/", 1)[0] if rest else "*"
        base = f"arn:{partition}:iam::{account}:role"
        return [f"{base}/{role}", f"{base}/*/{role}"]
    return [mapped]


@dataclass(frozen=True)
class AdminSecretPolicyArgs:
    secret_arn: pulumi.Input[str]
    """The admin secret."""
    readers: Sequence[pulumi.Input[str]]
    """IAM principals that read it besides the admins and the deployer: the task's execution role."""
    admin_principals: Sequence[str]
    """ARN patterns of the identity mapping's principals with `admin: true`."""


class AdminSecretPolicy(pulumi.ComponentResource):
    """A `Deny` for every reader of the admin secret but those named (see the module docstring)."""

    policy_id: pulumi.Output[str]
    """The secret policy's id (the secret's ARN)."""

    def __init__(self, name: str, args: AdminSecretPolicyArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlflow-platform:security:AdminSecretPolicy", name, None, opts)
        # The deployer's IAM principal: for a role session, its role (what `aws:PrincipalArn` holds).
        deployer = aws.iam.get_session_context_output(
            arn=caller_identity(self).arn, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        allowed: list[pulumi.Input[str]] = [*args.readers, deployer.issuer_arn]
        for mapped in args.admin_principals:
            allowed.extend(principal_arn_patterns(mapped))
        policy = aws.secretsmanager.SecretPolicy(
            f"{name}-policy",
            secret_arn=args.secret_arn,
            policy=policy_document(
                {
                    "Sid": "OnlyTheServerAndAdminsReadTheAdminPassword",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": READ_ACTIONS,
                    "Resource": args.secret_arn,
                    "Condition": {"StringNotLike": {"aws:PrincipalArn": allowed}},
                }
            ),
            block_public_policy=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.policy_id = policy.id
        self.register_outputs({"policy_id": self.policy_id})
