"""A decorated call under an active run: its own nested run, metrics there and not on the parent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.toolkit.data import regression


def test_nested_run_gets_the_metrics_and_the_parent_stays_active(tracking: Callable[..., Any]) -> None:
    import mlflow
    from sklearn.linear_model import Ridge

    from toolkit import get_model_s3_path, last_tracked_run, mlflow_track_regressor

    tracking(big_schema=True)
    X_train, y_train, X_test, y_test = regression()

    @mlflow_track_regressor(run_name="child", evaluate=True)
    def train(X_train: Any, y_train: Any, X_test: Any, y_test: Any) -> Any:
        return Ridge().fit(X_train, y_train)

    with mlflow.start_run(run_name="parent") as parent:
        train(X_train, y_train, X_test, y_test)
        # MLflow's rule: with a run active, last_active_run() is that run; the toolkit keeps the child's id.
        active = mlflow.active_run()
        assert active is not None
        assert active.info.run_id == parent.info.run_id
        tracked = last_tracked_run()
        assert tracked is not None
        assert tracked.run_id is not None
        assert tracked.run_id != parent.info.run_id

    client = mlflow.MlflowClient()
    child = client.get_run(tracked.run_id)
    assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert child.info.run_name == "child"
    assert child.info.status == "FINISHED"
    assert "r2_score" in child.data.metrics
    assert tracked.metrics["r2_score"] == child.data.metrics["r2_score"]
    assert not {"r2_score", "mean_squared_error"} & set(client.get_run(parent.info.run_id).data.metrics)
    assert get_model_s3_path(run_id=tracked.run_id)[1] == tracked.run_id


def test_without_a_parent_last_active_run_is_the_decorated_run(tracking: Callable[..., Any]) -> None:
    import mlflow
    from sklearn.linear_model import Ridge

    from toolkit import last_tracked_run, mlflow_track_regressor

    tracking(autolog=False)
    X_train, y_train, X_test, y_test = regression()

    @mlflow_track_regressor()
    def fit_ridge(X_train: Any, y_train: Any, X_test: Any, y_test: Any) -> Any:
        return Ridge().fit(X_train, y_train)

    fit_ridge(X_train, y_train, X_test, y_test)
    run = mlflow.last_active_run()
    tracked = last_tracked_run()
    assert run is not None
    assert tracked is not None
    assert run.info.run_id == tracked.run_id
    assert run.info.run_name == "fit_ridge"  # the function's name by default
    assert mlflow.active_run() is None
    assert run.data.params["alpha"] == "1.0"  # autolog off: the toolkit logs the estimator's params
