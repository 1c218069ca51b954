"""`ClientConfig`: what a deployed stack tells its clients. It never holds a secret value (the local
platform's profile holds an emulator key, which opens nothing but the emulator on 127.0.0.1).

The platform exports it as the stack output `client_config` and publishes it as JSON in the SSM
parameter `ssm_parameter_name(stack)`; `mlflow-platform config pull` turns either into a profile file.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from toolkit.config_types import AwsRegion, MlflowVersion, StackName
from toolkit.errors import ConfigError, config_error_from_validation

STACK_OUTPUT_NAME = "client_config"


def ssm_parameter_name(stack: str) -> str:
    """Where a stack publishes its `ClientConfig` (one SSM String parameter per stack)."""
    return f"/mlflow-platform/{stack}/client-config"


# How clients sign in: `aws-iam`, with their own AWS identity (`toolkit.aws_auth`); `basic`, with the
# user and password in the Secrets Manager secret `credentials_secret_id` (stacks from before identities).
AuthMethod = Literal["basic", "aws-iam"]
# The emulator's secret key is written to the profile file but shown as ****** by `config show`.
_EmulatorSecret = Annotated[SecretStr, PlainSerializer(lambda value: value.get_secret_value(), when_used="json")]


class ClientConfig(BaseModel):
    """Everything a notebook needs to reach a stack; never a password (`auth` says how to sign in)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stack: StackName
    tracking_uri: str
    artifact_store_uri: str
    region: AwsRegion
    # The secret holding the MLflow user and password; only for `auth: basic`.
    credentials_secret_id: Annotated[str, Field(min_length=1)] | None = None
    mlflow_version: MlflowVersion
    # Only set for the local platform, whose AWS APIs are emulated on 127.0.0.1.
    aws_endpoint_url: str | None = None
    auth: AuthMethod = "basic"
    # The local platform only: the emulator's access key of the IAM user `local up` created for the
    # person who ran it. The emulator checks no signature, so the key opens nothing but that emulator.
    emulator_access_key_id: str | None = None
    emulator_secret_access_key: _EmulatorSecret | None = None
    # The managed IAM policy a scoring pipeline's role attaches to read models (None on the local platform).
    model_reader_policy_arn: Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:policy/")] | None = None

    @model_validator(mode="after")
    def _sign_in_possible(self) -> Self:
        problems = []
        if self.auth == "basic" and self.credentials_secret_id is None:
            problems.append("credentials_secret_id: required with auth: basic (the secret holding the password)")
        if (self.emulator_access_key_id is None) != (self.emulator_secret_access_key is None):
            problems.append("emulator_access_key_id, emulator_secret_access_key: set both or neither")
        if self.emulator_access_key_id is not None and self.aws_endpoint_url is None:
            problems.append("emulator_access_key_id: only for the local platform (with aws_endpoint_url)")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @field_validator("tracking_uri", "aws_endpoint_url")
    @classmethod
    def _http_url_without_secrets(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected an http(s) URL such as https://mlflow.example.org")
        if parts.username or parts.password:
            raise ValueError("expected a URL without user:password (credentials live in Secrets Manager)")
        return value.rstrip("/")

    @field_validator("artifact_store_uri")
    @classmethod
    def _s3_uri(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError("expected an s3://bucket[/prefix] URI")
        return value.rstrip("/")

    @property
    def artifact_bucket(self) -> str:
        return urlsplit(self.artifact_store_uri).netloc

    @classmethod
    def parse(cls, data: Any, *, source: str = "client config") -> ClientConfig:
        """Validate a mapping or a JSON string; raise `ConfigError` naming each bad key."""
        try:
            if isinstance(data, (str, bytes)):
                return cls.model_validate_json(data)
            return cls.model_validate(data)
        except ValidationError as exc:
            raise config_error_from_validation(exc, source=source) from None

    @classmethod
    def from_stack_outputs(cls, outputs: dict[str, Any], *, source: str = "stack outputs") -> ClientConfig:
        """Read the `client_config` output of `pulumi stack output --json`."""
        if STACK_OUTPUT_NAME not in outputs:
            raise ConfigError(
                source,
                [
                    f"{STACK_OUTPUT_NAME}: not among the outputs {sorted(outputs)}; "
                    "was the stack deployed by this package?"
                ],
            )
        return cls.parse(outputs[STACK_OUTPUT_NAME], source=source)
