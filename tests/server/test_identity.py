"""Signing in with AWS identities against the real local platform (moto's IAM and STS, the real server).

Users are IAM users created in the platform's moto, exactly as a person would (`create_iam_user`); each
test names its users uniquely, since the session's platform is shared.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import requests

from mlflow_platform.local.identity import EmulatorKey, create_iam_user
from mlflow_platform.server import contract
from tests.conftest import LocalPlatformHandle, free_port

CURRENT_USER = "/api/2.0/mlflow/users/current"


def _user(local_platform: LocalPlatformHandle, name: str) -> EmulatorKey:
    return create_iam_user(local_platform.aws_client("iam"), f"{name}-{uuid.uuid4().hex[:8]}")


@contextmanager
def signed_in_as(key: EmulatorKey) -> Iterator[None]:
    """Plain MLflow with `MLFLOW_TRACKING_AUTH=aws-iam` and the user's key in the environment."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
        patch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
        patch.setenv("MLFLOW_TRACKING_AUTH", "aws-iam")
        patch.setenv("AWS_ACCESS_KEY_ID", key.access_key_id)
        patch.setenv("AWS_SECRET_ACCESS_KEY", key.secret_access_key)
        yield


def _token(url: str, key: EmulatorKey) -> str:
    """The bearer token an MLflow client of this package sends to `url` when signed in as `key`."""
    from toolkit.aws_auth import AwsIamAuth

    with signed_in_as(key):
        prepared = requests.Request("GET", url + CURRENT_USER).prepare()
        AwsIamAuth()(prepared)
    header = prepared.headers["Authorization"]
    assert header.startswith("Bearer ")
    return header.removeprefix("Bearer ")


def _get(url: str, path: str, token: str) -> requests.Response:
    return requests.get(url + path, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def _edit(token: str, **headers: str | None) -> str:
    """The token with some headers replaced (None removes one): what an attacker could send."""
    encoded = token.removeprefix(contract.IDENTITY_TOKEN_PREFIX)
    payload = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    for name, value in headers.items():
        name = name.replace("_", "-")
        match = next((k for k in payload if k.lower() == name.lower()), name)
        if value is None:
            payload.pop(match, None)
        else:
            payload[match] = value
    return contract.IDENTITY_TOKEN_PREFIX + base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


def test_two_iam_users_each_sign_in_as_themselves_and_default_read_applies(
    local_platform: LocalPlatformHandle,
) -> None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    alice, bob = _user(local_platform, "alice"), _user(local_platform, "bob")
    base = local_platform.tracking_uri
    for key in (alice, bob):
        response = _get(base, CURRENT_USER, _token(base, key))
        assert response.status_code == 200, response.text
        assert response.json()["user"]["username"] == key.username
        assert response.json()["user"]["is_admin"] is False

    with signed_in_as(alice):
        experiment_id = MlflowClient(base).create_experiment(f"alice-{uuid.uuid4().hex[:8]}")
        run = MlflowClient(base).create_run(experiment_id)
        MlflowClient(base).log_metric(run.info.run_id, "rmse", 1.5)
        # MLflow made alice the manager of what she created.
        permissions = _get(base, "/api/3.0/mlflow/users/current/permissions", _token(base, alice))
        assert permissions.status_code == 200, permissions.text
        granted = {
            (p["resource_type"], p["resource_pattern"], p["permission"]) for p in permissions.json()["permissions"]
        }
        assert ("experiment", experiment_id, "MANAGE") in granted

    bob_token = _token(base, bob)
    read = requests.get(
        f"{base}/api/2.0/mlflow/experiments/get",
        params={"experiment_id": experiment_id},
        headers=_bearer(bob_token),
        timeout=30,
    )
    assert read.status_code == 200, read.text
    write = requests.post(
        f"{base}/api/2.0/mlflow/runs/create",
        json={"experiment_id": experiment_id},
        headers=_bearer(bob_token),
        timeout=30,
    )
    assert write.status_code == 403, write.text
    with signed_in_as(bob):
        assert MlflowClient(base).get_run(run.info.run_id).data.metrics == {"rmse": 1.5}
        with pytest.raises(MlflowException, match=r"PERMISSION_DENIED|403"):
            MlflowClient(base).log_metric(run.info.run_id, "rmse", 0.1)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_unmapped_principals_get_401(local_platform: LocalPlatformHandle) -> None:
    """An assumed role (the local mapping admits IAM users only), and a key moto does not know."""
    import boto3

    base = local_platform.tracking_uri
    carol = _user(local_platform, "carol")
    iam = local_platform.aws_client("iam")
    role = f"AWSReservedSSO_DataScientist_{uuid.uuid4().hex[:8]}"
    iam.create_role(RoleName=role, AssumeRolePolicyDocument="{}")
    sts = boto3.session.Session(
        aws_access_key_id=carol.access_key_id, aws_secret_access_key=carol.secret_access_key, region_name="us-east-1"
    ).client("sts", endpoint_url=local_platform.moto_endpoint)
    assumed = sts.assume_role(RoleArn=f"arn:aws:iam::123456789012:role/{role}", RoleSessionName="carol@example.org")
    credentials = assumed["Credentials"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_SESSION_TOKEN", credentials["SessionToken"])
        token = _token(base, EmulatorKey("carol", credentials["AccessKeyId"], credentials["SecretAccessKey"]))
    response = _get(base, CURRENT_USER, token)
    assert response.status_code == 401
    assert f"assumed-role/{role}/carol@example.org matches no principal" in response.text

    stranger = _get(base, CURRENT_USER, _token(base, EmulatorKey("x", "AKIA" + "X" * 16, "secret")))
    assert stranger.status_code == 401
    assert "arn:aws:sts::123456789012:user/moto matches no principal" in stranger.text


def test_expired_unsigned_or_misdirected_tokens_get_401(
    local_platform: LocalPlatformHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    import botocore.auth

    from toolkit.aws_auth import AwsKey, sign, target_for

    base = local_platform.tracking_uri
    dave = _user(local_platform, "dave")
    key = AwsKey(dave.access_key_id, dave.secret_access_key)
    target = target_for(local_platform.client_config)
    good = sign(key, target)
    assert _get(base, CURRENT_USER, good).status_code == 200

    with monkeypatch.context() as patch:
        patch.setattr(botocore.auth, "get_current_datetime", lambda: datetime.now(UTC) - timedelta(minutes=16))
        expired = sign(key, target)
    response = _get(base, CURRENT_USER, expired)
    assert response.status_code == 401
    assert "the token expired" in response.text

    # The audience header present but not signed: replayable anywhere, so refused.
    unsigned = _edit(
        good, Authorization=json.loads(_decode(good))["Authorization"].replace(";x-mlflow-platform-audience", "")
    )
    response = _get(base, CURRENT_USER, unsigned)
    assert response.status_code == 401
    assert "does not cover x-mlflow-platform-audience" in response.text
    # No audience at all.
    assert _get(base, CURRENT_USER, _edit(good, **{contract.AUDIENCE_HEADER: None})).status_code == 401
    # Signed for another server.
    other = sign(
        key,
        replace(target, audience="https://mlflow.example.org"),
    )
    response = _get(base, CURRENT_USER, other)
    assert response.status_code == 401
    assert "audience 'https://mlflow.example.org' is not this server" in response.text
    # Signed for STS in another region.
    elsewhere = sign(key, replace(target, region="eu-west-1"))
    assert _get(base, CURRENT_USER, elsewhere).status_code == 401
    # A header the server would not replay.
    assert _get(base, CURRENT_USER, _edit(good, X_Forwarded_Host="evil.example.org")).status_code == 401


def _decode(token: str) -> str:
    encoded = token.removeprefix(contract.IDENTITY_TOKEN_PREFIX)
    return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()


def test_a_verified_token_is_cached_until_it_expires(
    local_platform: LocalPlatformHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once verified, a token is not sent to STS again: it keeps working after its key is deleted,
    while a new token of that key is refused (STS no longer knows it)."""
    import botocore.auth

    from toolkit.aws_auth import AwsKey, sign, target_for

    base = local_platform.tracking_uri
    erin = _user(local_platform, "erin")
    key = AwsKey(erin.access_key_id, erin.secret_access_key)
    target = target_for(local_platform.client_config)
    token = sign(key, target)
    # A few requests, so that every worker of the server has verified it.
    for _ in range(6):
        assert _get(base, CURRENT_USER, token).status_code == 200
    local_platform.aws_client("iam").delete_access_key(UserName=erin.username, AccessKeyId=erin.access_key_id)
    for _ in range(6):
        assert _get(base, CURRENT_USER, token).status_code == 200
    # Signed a minute later: a SigV4 signature made in the same second would be the same token.
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: datetime.now(UTC) + timedelta(minutes=1))
    assert _get(base, CURRENT_USER, sign(key, target)).status_code == 401


def test_environment_basic_credentials_win_over_the_identity(local_platform: LocalPlatformHandle) -> None:
    """MLflow's own variables (break-glass admin, service accounts) win over `MLFLOW_TRACKING_AUTH`."""
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    with signed_in_as(local_platform.identity):
        os.environ["MLFLOW_TRACKING_USERNAME"] = local_platform.admin_username
        os.environ["MLFLOW_TRACKING_PASSWORD"] = local_platform.admin_password
        try:
            creds = get_default_host_creds(local_platform.tracking_uri)  # type: ignore[no-untyped-call]
            response = http_request(creds, CURRENT_USER, "GET")  # type: ignore[no-untyped-call]
        finally:
            del os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"]
    assert response.json()["user"]["username"] == local_platform.admin_username


@pytest.fixture(scope="module")
def second_platform(local_platform: LocalPlatformHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Another local platform (SQLite), its profile kept out of the session's config; yields its URL."""
    from mlflow_platform.local.platform import LocalPlatform, LocalPorts

    platform = LocalPlatform(tmp_path_factory.mktemp("second-platform"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_PLATFORM_CONFIG_DIR", str(tmp_path_factory.mktemp("second-config")))
        try:
            platform.up(postgres=False, ports=LocalPorts(free_port(), free_port(), free_port()))
            yield platform.tracking_uri
        finally:
            platform.down()


def test_a_credential_captured_from_one_platform_is_refused_by_another(
    local_platform: LocalPlatformHandle, second_platform: str
) -> None:
    alice = _user(local_platform, "alice")
    captured = _token(local_platform.tracking_uri, alice)
    assert _get(local_platform.tracking_uri, CURRENT_USER, captured).status_code == 200
    replayed = _get(second_platform, CURRENT_USER, captured)
    assert replayed.status_code == 401
    assert f"audience '{local_platform.tracking_uri}' is not this server" in replayed.text
