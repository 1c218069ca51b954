"""Round trips: one tracked run sends at most a fixed number of HTTP requests to the server.

A notebook is usually tens of milliseconds away from the server, and every request the decorated call
waits for adds that much, so a change that adds requests must fail here. Requests are counted where every
request MLflow sends reaches the wire (`requests`' `HTTPAdapter.send`), never timed. The failure message
lists them by method and path.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.toolkit.data import regression

# What each request is for is listed in README (Performance).
MAX_REQUESTS = 12
MAX_REQUESTS_WITH_EVALUATION = 20


@contextmanager
def _requests_to(tracking_uri: str) -> Iterator[list[str]]:
    """Every request sent to the tracking server while the block runs, as `METHOD /path`."""
    from requests.adapters import HTTPAdapter

    server = urlsplit(tracking_uri).netloc
    sent: list[str] = []
    original = HTTPAdapter.send

    def send(self: HTTPAdapter, request: Any, *args: Any, **kwargs: Any) -> Any:
        url = urlsplit(str(request.url))
        if url.netloc == server:
            sent.append(f"{request.method} {re.sub(r'[0-9a-f]{32}', '<id>', url.path)}")
        return original(self, request, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(HTTPAdapter, "send", send)
        yield sent


def _listing(sent: list[str]) -> str:
    return "\n".join(f"{count} x {label}" for label, count in Counter(sent).items())


@pytest.mark.parametrize(("evaluate", "limit"), [(False, MAX_REQUESTS), (True, MAX_REQUESTS_WITH_EVALUATION)])
def test_a_tracked_run_sends_few_requests(tracking: Callable[..., Any], evaluate: bool, limit: int) -> None:
    import mlflow
    from mlflow.entities import LoggedModelStatus
    from sklearn.linear_model import Ridge

    from toolkit import last_tracked_run, load_model_schema, mlflow_track_regressor

    session = tracking(big_schema=True)
    X_train, y_train, X_test, y_test = regression(rows=60, columns=2_000, test_rows=20)

    @mlflow_track_regressor(run_name="counted", big_schema=True, evaluate=evaluate)
    def train(X_train: Any, y_train: Any, X_test: Any, y_test: Any) -> Any:
        return Ridge(alpha=1.0).fit(X_train, y_train)

    with _requests_to(session.tracking_uri) as sent:
        train(X_train, y_train, X_test, y_test)

    tracked = last_tracked_run()
    assert tracked is not None
    assert tracked.error is None
    assert len(sent) <= limit, f"{len(sent)} requests, at most {limit} allowed:\n{_listing(sent)}"

    # Fewer requests, and still everything a user looks at.
    client = mlflow.MlflowClient()
    assert tracked.run_id is not None
    assert tracked.model_id is not None
    run = client.get_run(tracked.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["alpha"] == "1.0"
    assert run.data.tags["toolkit.estimator"] == "Ridge"
    assert {"training_r2_score", "training_mean_absolute_error"} <= set(run.data.metrics)
    assert run.outputs is not None
    assert [output.model_id for output in run.outputs.model_outputs] == [tracked.model_id]
    model = client.get_logged_model(tracked.model_id)
    assert model.status == LoggedModelStatus.READY
    assert model.source_run_id == tracked.run_id
    assert model.params["alpha"] == "1.0"
    model_metrics = {metric.key for metric in model.metrics or []}
    assert "training_r2_score" in model_metrics
    assert len(load_model_schema(run_id=tracked.run_id)) == 2_000
    if evaluate:
        assert {"r2_score", "mean_absolute_error"} <= set(run.data.metrics)
        assert "r2_score" in model_metrics
        assert tracked.metrics["r2_score"] == run.data.metrics["r2_score"]
        assert run.inputs is not None
        assert [model_input.model_id for model_input in run.inputs.model_inputs] == [tracked.model_id]
        assert {"residuals.png", "predicted_vs_actual.png"} <= {a.path for a in client.list_artifacts(run.info.run_id)}


def test_autolog_pauses_for_a_big_schema_call_and_is_back_after_it(tracking: Callable[..., Any]) -> None:
    import mlflow
    from sklearn.linear_model import Ridge

    from toolkit import last_tracked_run, mlflow_track_regressor

    tracking(big_schema=True, autolog=True)
    X_train, y_train, X_test, y_test = regression(rows=30, columns=50, test_rows=5)

    @mlflow_track_regressor(run_name="paused", big_schema=True)
    def train(X_train: Any, y_train: Any, X_test: Any, y_test: Any) -> Any:
        return Ridge().fit(X_train, y_train)

    train(X_train, y_train, X_test, y_test)
    tracked = last_tracked_run()
    assert tracked is not None
    assert tracked.run_id is not None
    client = mlflow.MlflowClient()
    # sklearn autolog tags the runs it records; it recorded nothing inside the decorated call.
    assert "estimator_class" not in client.get_run(tracked.run_id).data.tags
    with mlflow.start_run() as plain:
        Ridge(alpha=0.5).fit(X_train, y_train)
    autologged = client.get_run(plain.info.run_id).data
    assert autologged.tags["estimator_class"] == "sklearn.linear_model._ridge.Ridge"
    assert autologged.params["alpha"] == "0.5"
