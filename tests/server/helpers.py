"""Small helpers for the server tests: REST calls with basic auth, and an MLflow client signed in."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests

SEARCH_EXPERIMENTS = "/api/2.0/mlflow/experiments/search?max_results=1"
CREATE_USER = "/api/2.0/mlflow/users/create"
GET_USER = "/api/2.0/mlflow/users/get"


def get(base: str, path: str, auth: tuple[str, str] | None = None, host: str | None = None) -> requests.Response:
    headers = {"Host": host} if host else {}
    return requests.get(base + path, auth=auth, headers=headers, timeout=30)


def create_user(base: str, admin: tuple[str, str], username: str, password: str) -> None:
    response = requests.post(
        base + CREATE_USER, json={"username": username, "password": password}, auth=admin, timeout=30
    )
    assert response.status_code == 200, response.text


@contextmanager
def mlflow_client(tracking_uri: str, username: str, password: str) -> Iterator[Any]:
    """`MlflowClient` with the credentials in MLflow's own variables, restored afterwards."""
    from mlflow import MlflowClient

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_USERNAME", username)
        patch.setenv("MLFLOW_TRACKING_PASSWORD", password)
        yield MlflowClient(tracking_uri)
