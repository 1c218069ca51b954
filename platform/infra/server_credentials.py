"""Generated credentials, stored only in Secrets Manager under the platform's KMS key.

Values come from pulumi-random: they exist in Pulumi's state as secrets (encrypted by the stack's
secrets provider) and in Secrets Manager, never in code, config files, container environments or
plain stack outputs. The server receives them as ECS `secrets`; the toolkit reads the admin secret
with the caller's own AWS identity.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from mlflow_platform.server.contract import ADMIN_USERNAME, AdminSecret

# Letters and digits only: the values travel through URLs, ini files and HTTP basic auth unescaped.
ADMIN_PASSWORD_LENGTH = 32
FLASK_SECRET_KEY_LENGTH = 64
RECOVERY_WINDOW_DAYS = 7


def secret_name_prefix(purpose: str) -> str:
    """A name prefix: a deleted secret still in its recovery window never blocks a new one."""
    return f"mlflow-platform/{pulumi.get_stack()}/{purpose}-"


def stored_secret(
    name: str,
    *,
    purpose: str,
    description: str,
    kms_key_arn: pulumi.Input[str],
    value: pulumi.Input[str],
    parent: pulumi.Resource,
) -> aws.secretsmanager.Secret:
    """A KMS-encrypted secret holding `value` (which should be a Pulumi secret Output)."""
    secret = aws.secretsmanager.Secret(
        name,
        name_prefix=secret_name_prefix(purpose),
        description=description,
        kms_key_id=kms_key_arn,
        recovery_window_in_days=RECOVERY_WINDOW_DAYS,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    aws.secretsmanager.SecretVersion(
        f"{name}-value",
        secret_id=secret.arn,
        secret_string=pulumi.Output.secret(value),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return secret


def generated_password(name: str, *, length: int, parent: pulumi.Resource) -> pulumi.Output[str]:
    """A random alphanumeric value, marked secret by pulumi-random."""
    password = random.RandomPassword(
        name,
        length=length,
        special=False,
        min_lower=2,
        min_upper=2,
        min_numeric=2,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return password.result


@dataclass(frozen=True)
class CredentialsArgs:
    kms_key_arn: pulumi.Input[str]
    """The platform key encrypting both secrets."""


class Credentials(pulumi.ComponentResource):
    """The MLflow admin user and the Flask secret key every server task and worker shares."""

    admin_secret_arn: pulumi.Output[str]
    """The MLflow admin user's secret (`contract.AdminSecret` as JSON)."""
    flask_secret_key_arn: pulumi.Output[str]
    """The Flask secret key's secret (a plain string)."""

    def __init__(self, name: str, args: CredentialsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlflow-platform:security:Credentials", name, None, opts)

        admin_password = generated_password(f"{name}-admin-random", length=ADMIN_PASSWORD_LENGTH, parent=self)
        admin = stored_secret(
            f"{name}-admin",
            purpose="admin",
            description="MLflow admin user: JSON {username, password}; read by the server and the toolkit",
            kms_key_arn=args.kms_key_arn,
            value=admin_password.apply(
                lambda password: AdminSecret(username=ADMIN_USERNAME, password=password).secret_string()
            ),
            parent=self,
        )
        # MLflow needs the same key on every task and worker, or sessions and CSRF tokens break across them.
        flask_key = stored_secret(
            f"{name}-flask-secret-key",
            purpose="flask-secret-key",
            description="MLflow server Flask secret key (plain string), shared by every task",
            kms_key_arn=args.kms_key_arn,
            value=generated_password(f"{name}-flask-secret-key-random", length=FLASK_SECRET_KEY_LENGTH, parent=self),
            parent=self,
        )

        self.admin_secret_arn = admin.arn
        self.flask_secret_key_arn = flask_key.arn
        self.register_outputs(
            {"admin_secret_arn": self.admin_secret_arn, "flask_secret_key_arn": self.flask_secret_key_arn}
        )
