"""boto3 clients for a stack's region (and the local platform's emulated endpoint), with one-line errors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from toolkit.errors import ToolkitError

if TYPE_CHECKING:
    from toolkit.client_config import ClientConfig


# The local platform's emulated AWS (moto on 127.0.0.1) accepts any key; a laptop needs no AWS account.
LOCAL_EMULATOR_KEY = "local"


class AwsAccessError(ToolkitError, RuntimeError):
    """AWS could not be reached or refused us; the message says what to set or fix."""


def aws_client(service: str, *, region: str, endpoint_url: str | None = None) -> Any:
    """A boto3 client; boto3 is imported here, not at `import toolkit` time (it costs a few hundred ms).

    An `endpoint_url` is only ever the local platform's emulator: the caller's AWS identity is not sent
    there (it would be pointless, and a real key has no business leaving for a local process).
    """
    import boto3

    if endpoint_url is None:
        session = boto3.session.Session(region_name=region)
    else:
        session = boto3.session.Session(
            aws_access_key_id=LOCAL_EMULATOR_KEY, aws_secret_access_key=LOCAL_EMULATOR_KEY, region_name=region
        )
    return session.client(service, endpoint_url=endpoint_url)  # type: ignore[call-overload]


def client_for(service: str, config: ClientConfig) -> Any:
    return aws_client(service, region=config.region, endpoint_url=config.aws_endpoint_url)


def explain_aws_error(exc: Exception, *, doing: str) -> AwsAccessError:
    """Map botocore's exceptions onto a sentence that names the fix, keeping the original as the cause."""
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, NoRegionError

    if isinstance(exc, NoCredentialsError):
        return AwsAccessError(
            f"{doing}: no AWS credentials found; set AWS_PROFILE (or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY), or run `aws sso login`"
        )
    if isinstance(exc, NoRegionError):
        return AwsAccessError(f"{doing}: no AWS region; pass --region or set AWS_REGION")
    if isinstance(exc, EndpointConnectionError):
        return AwsAccessError(f"{doing}: cannot reach {exc.kwargs.get('endpoint_url', 'AWS')} ({exc})")
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return AwsAccessError(f"{doing}: AWS said {error.get('Code', 'error')}: {error.get('Message', exc)}")
    return AwsAccessError(f"{doing}: {exc}")
