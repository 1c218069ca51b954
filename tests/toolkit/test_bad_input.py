"""Wrong return values, missing test sets and unknown models fail with errors that say what to fix."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.toolkit.data import regression


def test_non_estimator_is_a_type_error_naming_what_came_back(tracking: Callable[..., Any]) -> None:
    import mlflow

    from toolkit import mlflow_track_regressor

    tracking(autolog=False)
    X_train, y_train, X_test, y_test = regression(rows=20, columns=5, test_rows=5)

    @mlflow_track_regressor()
    def train(X_train: Any, y_train: Any, X_test: Any, y_test: Any) -> Any:
        return {"rmse": 1.0}

    with pytest.raises(TypeError, match=r"train returned builtins\.dict .*expected a fitted scikit-learn estimator"):
        train(X_train, y_train, X_test, y_test)
    run = mlflow.last_active_run()
    assert run is not None
    assert run.info.status == "FAILED"
    assert mlflow.active_run() is None


def test_unfitted_estimator_is_refused(tracking: Callable[..., Any]) -> None:
    from sklearn.linear_model import Ridge

    from toolkit import ModelNotFittedError, mlflow_track_regressor

    tracking(autolog=False)
    X_train, y_train, X_test, y_test = regression(rows=20, columns=5, test_rows=5)

    @mlflow_track_regressor()
    def train(X_train: Any, y_train: Any, X_test: Any, y_test: Any) -> Any:
        return Ridge()

    with pytest.raises(ModelNotFittedError, match=r"unfitted Ridge: call \.fit\(X_train, y_train\)"):
        train(X_train, y_train, X_test, y_test)


def test_evaluate_without_a_test_set_fails_before_the_fit(tracking: Callable[..., Any]) -> None:
    import mlflow

    from toolkit import mlflow_track_regressor

    tracking(autolog=False)
    X_train, y_train, _, _ = regression(rows=20, columns=5, test_rows=5)
    calls = []

    @mlflow_track_regressor(evaluate=True)
    def train(X_train: Any, y_train: Any, X_test: Any = None, y_test: Any = None) -> Any:
        calls.append(1)
        raise AssertionError("must not run")

    with pytest.raises(ValueError, match=r"evaluate=True needs a test set.*'X_test'/'y_test'"):
        train(X_train, y_train)
    assert calls == []
    assert mlflow.active_run() is None


def test_decorator_without_parentheses_is_explained() -> None:
    from toolkit import mlflow_track_regressor

    def train(X_train: Any, y_train: Any) -> Any:
        return None

    with pytest.raises(TypeError, match=r"with parentheses"):
        mlflow_track_regressor(train)  # type: ignore[arg-type]


def test_the_functions_own_exception_propagates_and_the_run_fails(tracking: Callable[..., Any]) -> None:
    import mlflow

    from toolkit import mlflow_track_regressor

    tracking(autolog=False)

    @mlflow_track_regressor(run_name="broken")
    def train(X_train: Any, y_train: Any, X_test: Any, y_test: Any) -> Any:
        raise RuntimeError("singular matrix")

    with pytest.raises(RuntimeError, match="singular matrix"):
        train(None, None, None, None)
    run = mlflow.last_active_run()
    assert run is not None
    assert run.info.status == "FAILED"


def test_unknown_run_model_and_registered_model(tracking: Callable[..., Any]) -> None:
    from toolkit import ModelNotFoundError, get_model_s3_path

    tracking(autolog=False)
    with pytest.raises(ModelNotFoundError, match=r"run 0123456789abcdef0123456789abcdef does not exist"):
        get_model_s3_path(run_id="0123456789abcdef0123456789abcdef")
    with pytest.raises(ModelNotFoundError, match=r"model m-0123456789abcdef0123456789abcdef does not exist"):
        get_model_s3_path(model_id="m-0123456789abcdef0123456789abcdef")
    with pytest.raises(ModelNotFoundError, match=r"registered model 'no-such-model' version 3 does not exist"):
        get_model_s3_path(model_name="no-such-model", version=3)
    with pytest.raises(ValueError, match="exactly one of run_id, model_id, model_name"):
        get_model_s3_path()


def test_run_without_a_model_and_run_with_several(tracking: Callable[..., Any]) -> None:
    import mlflow
    from sklearn.linear_model import Ridge

    from toolkit import ModelNotFoundError, get_model_s3_path

    tracking(autolog=False)
    X_train, y_train, _, _ = regression(rows=20, columns=5, test_rows=5)
    with mlflow.start_run() as empty:
        mlflow.log_metric("loss", 1.0)
    with pytest.raises(ModelNotFoundError, match=rf"run {empty.info.run_id} has no logged model"):
        get_model_s3_path(run_id=empty.info.run_id)

    model = Ridge().fit(X_train, y_train)
    requirements = ["scikit-learn"]
    with mlflow.start_run() as several:
        mlflow.sklearn.log_model(model, name="ridge_a", pip_requirements=requirements)
        second = mlflow.sklearn.log_model(model, name="ridge_b", pip_requirements=requirements)
    with pytest.raises(ModelNotFoundError, match=r"logged 2 models \(ridge_a, ridge_b\); pass name=\.\.\."):
        get_model_s3_path(run_id=several.info.run_id)
    path, run_id = get_model_s3_path(run_id=several.info.run_id, name="ridge_b")
    assert run_id == several.info.run_id
    assert path.endswith(f"/models/{second.model_id}/artifacts")
