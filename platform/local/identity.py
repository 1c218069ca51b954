"""Identities on the local platform: IAM users in the emulator, and who they sign in as.

moto emulates IAM and STS as well as S3, so the local platform signs people in the way the AWS stack
does: `local up` creates an IAM user named after the person running it and keeps its (emulator) access
key in the `local` profile, and the server maps every IAM user of the emulator's account to the MLflow
user of the same name (`LOCAL_MAPPING`). Anyone can add a user with `create_iam_user` (or boto3's
`iam.create_user` and `create_access_key` against the profile's `aws_endpoint_url`) and sign in as it
with that key in `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`.

The emulator verifies no signature: whoever knows an access key id there can act as its user. The
platform listens on 127.0.0.1 only; this is a stand-in for AWS's verification, not a replacement.

IAM users and keys live in moto's memory only (moto offers no way to restore a key with its old id), so
`local up` after a `down` checks the saved key with STS and makes a new one when it no longer works. The
MLflow users, their experiments and permissions are in the database and stay.
"""

from __future__ import annotations

import contextlib
import getpass
import re
from dataclasses import dataclass, field
from typing import Any

from mlflow_platform.server import contract
from mlflow_platform.server.contract import IdentityMapping, Principal, ServerIdentity

__all__ = [
    "LOCAL_ACCOUNT",
    "LOCAL_MAPPING",
    "EmulatorKey",
    "create_iam_user",
    "ensure_iam_user",
    "local_username",
    "server_identity",
]

# The account moto answers with.
LOCAL_ACCOUNT = "123456789012"
# Every IAM user of the emulator signs in as the MLflow user of its name, with MLflow's default READ
# on what others own. (An unknown key gets moto's default identity, an `sts` ARN, which this refuses.)
LOCAL_MAPPING = IdentityMapping(
    default_permission="READ",
    principals=[Principal(arn=f"arn:aws:iam::{LOCAL_ACCOUNT}:user/*", username=contract.USERNAME_FROM_NAME)],
)
_FALLBACK_USERNAME = "scientist"


@dataclass(frozen=True)
class EmulatorKey:
    username: str
    access_key_id: str
    secret_access_key: str = field(repr=False)


def local_username() -> str:
    """The login name of the person running the platform, as an IAM user name (never the admin's)."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # no user database entry (some containers)
        name = ""
    name = re.sub(r"[^A-Za-z0-9+=,.@_-]", "-", name)[:64].strip("-")
    return name if name and name != contract.ADMIN_USERNAME else _FALLBACK_USERNAME


def server_identity(tracking_uri: str, region: str) -> ServerIdentity:
    """What the local server is given: the mapping, and its audiences (both names of 127.0.0.1)."""
    audience = contract.audience_of(tracking_uri)
    audiences = [audience, audience.replace("://127.0.0.1", "://localhost")]
    return ServerIdentity(**LOCAL_MAPPING.model_dump(), audiences=list(dict.fromkeys(audiences)), region=region)


def create_iam_user(iam: Any, username: str) -> EmulatorKey:
    """An IAM user in the emulator (created if missing) and a new access key of it."""
    with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
        iam.create_user(UserName=username)
    key = iam.create_access_key(UserName=username)["AccessKey"]
    return EmulatorKey(username, key["AccessKeyId"], key["SecretAccessKey"])


def ensure_iam_user(iam: Any, sts_for: Any, username: str, saved: EmulatorKey | None) -> EmulatorKey:
    """The saved key if the emulator still knows it as `username`'s, else a new one.

    `sts_for(key)` returns an STS client signing with `key`.
    """
    if saved is not None and saved.username == username:
        arn = sts_for(saved).get_caller_identity()["Arn"]
        if arn == f"arn:aws:iam::{LOCAL_ACCOUNT}:user/{username}":
            return saved
    return create_iam_user(iam, username)
