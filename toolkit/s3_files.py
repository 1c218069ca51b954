"""S3 for scoring: `s3://` URIs, boto3 for whole objects, pyarrow's filesystem for reading parts of files.

Two clients on purpose. boto3 downloads the model's files and uploads the scores (multipart, completed
only once the whole file is there). pyarrow's own S3 filesystem reads input files with ranged requests,
so a Parquet footer or an Arrow schema is read, and checked, before the rest of the file is fetched.
Both use the caller's AWS identity (boto3's and the AWS SDK's default chains: environment, profile, ECS
task role, instance profile), or the local platform's emulator when the client config names one.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import pyarrow.fs

    from toolkit.client_config import ClientConfig


def is_s3_uri(location: str) -> bool:
    return location.startswith("s3://")


def split_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/a/b` -> `("bucket", "a/b")`; a URI without a bucket is a `ValueError`."""
    parts = urlsplit(uri)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError(f"{uri}: expected s3://bucket/key")
    return parts.netloc, parts.path.lstrip("/")


def filesystem_path(uri: str) -> str:
    """What pyarrow's S3 filesystem calls `s3://bucket/key`: `bucket/key`."""
    bucket, key = split_s3_uri(uri)
    return f"{bucket}/{key}"


def s3_client(config: ClientConfig | None) -> Any:
    """A boto3 S3 client in the stack's region (the emulator's endpoint for the local platform)."""
    from toolkit.aws import aws_client, client_for

    if config is not None:
        return client_for("s3", config)
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    return aws_client("s3", region=region)


def s3_filesystem(config: ClientConfig | None) -> pyarrow.fs.S3FileSystem:
    """pyarrow's S3 filesystem for the same place `s3_client` reaches."""
    import pyarrow.fs

    from toolkit.aws import LOCAL_EMULATOR_KEY

    if config is not None and config.aws_endpoint_url:
        endpoint = urlsplit(config.aws_endpoint_url)
        return pyarrow.fs.S3FileSystem(
            access_key=LOCAL_EMULATOR_KEY,
            secret_key=LOCAL_EMULATOR_KEY,
            region=config.region,
            endpoint_override=endpoint.netloc,
            scheme=endpoint.scheme,
        )
    region = (
        config.region if config is not None else os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    )
    return pyarrow.fs.S3FileSystem(region=region) if region else pyarrow.fs.S3FileSystem()
