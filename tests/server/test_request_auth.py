"""The authorization function on the real server: malformed credentials get 401 (never a 5xx), the
break-glass admin's Basic auth still works, and every request is logged once with who made it."""

from __future__ import annotations

import base64
import time
import uuid

import pytest
import requests

from tests.conftest import LocalPlatformHandle
from tests.server.helpers import SEARCH_EXPERIMENTS

# A route Flask serves, and one MLflow serves natively from FastAPI (artifact downloads).
FLASK_ROUTE = SEARCH_EXPERIMENTS
FASTAPI_ROUTE = "/api/2.0/mlflow-artifacts/artifacts/0/nothing-here.txt"
LOG_WAIT_SECONDS = 15.0


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


MALFORMED = {
    "bearer garbage": "Bearer abc",
    "bearer empty": "Bearer ",
    "bearer prefix only": "Bearer mlflow-aws-v1.",
    "bearer not base64": "Bearer mlflow-aws-v1.!!!***",
    "bearer not json": "Bearer mlflow-aws-v1." + base64.urlsafe_b64encode(b"\xff\xfe not json").decode(),
    "bearer json list": "Bearer mlflow-aws-v1." + base64.urlsafe_b64encode(b'["a"]').decode(),
    "bearer huge": "Bearer mlflow-aws-v1." + "A" * 20_000,
    "basic not base64": "Basic !!!",
    "basic no colon": "Basic " + _b64("admin"),
    "basic empty password": "Basic " + _b64("admin:"),
    "basic empty user": "Basic " + _b64(":password-password"),
    "digest": 'Digest username="admin"',
    "scheme only": "Basic",
}


@pytest.mark.parametrize("route", [FLASK_ROUTE, FASTAPI_ROUTE])
@pytest.mark.parametrize("header", list(MALFORMED.values()), ids=list(MALFORMED))
def test_a_malformed_credential_gets_401(local_platform: LocalPlatformHandle, route: str, header: str) -> None:
    response = requests.get(local_platform.tracking_uri + route, headers={"Authorization": header}, timeout=30)
    assert response.status_code == 401, response.text


def test_the_admin_still_signs_in_with_basic_auth(local_platform: LocalPlatformHandle) -> None:
    admin = (local_platform.admin_username, local_platform.admin_password)
    response = requests.get(local_platform.tracking_uri + "/api/2.0/mlflow/users/current", auth=admin, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["user"] == {"id": response.json()["user"]["id"], "username": "admin", "is_admin": True}


def _log_lines_with(local_platform: LocalPlatformHandle, marker: str, *, expected: int) -> list[str]:
    """The server log's lines that contain `marker`, once `expected` of them arrived (bounded wait)."""
    log = local_platform.platform.log_dir / "server.log"
    deadline = time.monotonic() + LOG_WAIT_SECONDS
    while True:
        lines = [line for line in log.read_text(errors="replace").splitlines() if marker in line]
        if len(lines) >= expected or time.monotonic() > deadline:
            return lines
        time.sleep(0.2)


def test_every_request_is_logged_once_with_user_method_path_and_status(local_platform: LocalPlatformHandle) -> None:
    marker = uuid.uuid4().hex
    admin = (local_platform.admin_username, local_platform.admin_password)
    base = local_platform.tracking_uri
    # A Flask route that does not exist (404 after sign-in), a refused token, a FastAPI artifact route.
    assert requests.get(f"{base}/api/2.0/mlflow/{marker}/nothing", auth=admin, timeout=30).status_code == 404
    token = f"mlflow-aws-v1.{marker}-not-a-token"
    refused = requests.post(
        f"{base}/api/2.0/mlflow/{marker}/create", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert refused.status_code == 401
    artifact = requests.get(f"{base}/api/2.0/mlflow-artifacts/artifacts/{marker}/x.txt", auth=admin, timeout=30)
    # (MLflow answers a missing artifact with an error of its own; the status is whatever it said.)

    lines = [
        line
        for line in _log_lines_with(local_platform, marker, expected=3)
        if "mlflow_platform.server.requests" in line
    ]
    assert len(lines) == 3, lines
    [flask_line] = [line for line in lines if f"{marker}/nothing" in line]
    [refused_line] = [line for line in lines if f"{marker}/create" in line]
    [artifact_line] = [line for line in lines if f"{marker}/x.txt" in line]
    assert f"user=admin auth=basic method=GET path=/api/2.0/mlflow/{marker}/nothing status=404" in flask_line
    assert f"user=- auth=aws-iam method=POST path=/api/2.0/mlflow/{marker}/create status=401" in refused_line
    assert "reason='the token is not base64url-encoded JSON'" in refused_line
    assert token not in refused_line
    assert f"path=/api/2.0/mlflow-artifacts/artifacts/{marker}/x.txt status={artifact.status_code}" in artifact_line
    assert "user=admin auth=basic method=GET" in artifact_line
    assert local_platform.admin_password not in "\n".join(lines)
