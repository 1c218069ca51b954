"""`get_model_s3_path` by model id and by registered name with a version or an alias, in <= 2 requests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.toolkit.data import regression


@contextmanager
def _count_requests() -> Iterator[list[str]]:
    """Every HTTP request MLflow's REST client sends (it goes through `requests.Session.request`)."""
    import requests

    seen: list[str] = []
    original = requests.Session.request

    def counting(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(f"{method} {url}")
        return original(self, method, url, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(requests.Session, "request", counting)
        yield seen


def test_lookup_by_model_id_registered_version_and_alias(tracking: Callable[..., Any]) -> None:
    import mlflow
    from sklearn.linear_model import Ridge

    from toolkit import get_model_s3_path, last_tracked_run, load_model_schema, mlflow_track_regressor

    session = tracking(big_schema=True, autolog=False)
    X_train, y_train, X_test, y_test = regression(rows=30, columns=10, test_rows=5)

    @mlflow_track_regressor(run_name="registered", registered_model_name="toolkit-test-clock")
    def train(X_train: Any, y_train: Any, X_test: Any, y_test: Any) -> Any:
        return Ridge().fit(X_train, y_train)

    train(X_train, y_train, X_test, y_test)
    tracked = last_tracked_run()
    assert tracked is not None
    assert tracked.model_id is not None
    client = mlflow.MlflowClient()
    version = client.search_model_versions("name = 'toolkit-test-clock'")[0].version
    client.set_registered_model_alias("toolkit-test-clock", "champion", version)

    with _count_requests() as by_run:
        from_run = get_model_s3_path(run_id=tracked.run_id)
    with _count_requests() as by_id:
        from_id = get_model_s3_path(model_id=tracked.model_id)
    with _count_requests() as by_version:
        from_version = get_model_s3_path(model_name="toolkit-test-clock", version=version)
    with _count_requests() as by_alias:
        from_alias = get_model_s3_path(model_name="toolkit-test-clock", alias="champion")

    assert from_run == from_id == from_version == from_alias
    path, run_id = from_alias
    assert run_id == tracked.run_id
    assert session.config is not None
    assert path.startswith(session.config.artifact_store_uri + "/")
    assert path.endswith(f"/models/{tracked.model_id}/artifacts")
    for requests_made in (by_run, by_id, by_version, by_alias):
        assert 1 <= len(requests_made) <= 2, requests_made
    assert len(mlflow.pyfunc.load_model(path).predict(X_test)) == len(X_test)
    schema = load_model_schema(model_id=tracked.model_id)
    assert schema == load_model_schema(model_uri=path)
    assert schema.names == tuple(X_train.columns)

    with pytest.raises(ValueError, match="exactly one of version or alias"):
        get_model_s3_path(model_name="toolkit-test-clock")


def test_mapping_onto_s3() -> None:
    from toolkit.errors import ConfigError
    from toolkit.models import mlflow_artifacts_to_s3

    store = "s3://bucket/prefix"
    assert mlflow_artifacts_to_s3("mlflow-artifacts:/3/models/m-1/artifacts", store) == (
        "s3://bucket/prefix/3/models/m-1/artifacts"
    )
    assert mlflow_artifacts_to_s3("mlflow-artifacts://host:5000/3/models/m-1/artifacts", store + "/") == (
        "s3://bucket/prefix/3/models/m-1/artifacts"
    )
    assert mlflow_artifacts_to_s3("s3://direct/1/models/m-2/artifacts/", None) == "s3://direct/1/models/m-2/artifacts"
    with pytest.raises(ConfigError, match="artifact_store_uri: not set"):
        mlflow_artifacts_to_s3("mlflow-artifacts:/3/models/m-1/artifacts", None)
    with pytest.raises(ValueError, match="not stored in S3"):
        mlflow_artifacts_to_s3("file:///tmp/mlruns/1/models/m-1/artifacts", store)
