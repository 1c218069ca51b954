"""The estimators people use: a search, a classifier (with its evaluation plots), a Pipeline, a forest."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.toolkit.data import classification, regression


def _run_artifacts(run_id: str) -> set[str]:
    import mlflow

    return {a.path for a in mlflow.MlflowClient().list_artifacts(run_id)}


def test_grid_search_logs_best_estimator_params_and_score(tracking: Callable[..., Any]) -> None:
    import mlflow
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GridSearchCV

    from toolkit import get_model_s3_path, mlflow_track_regressor

    tracking(autolog=False)
    X_train, y_train, X_test, y_test = regression()

    @mlflow_track_regressor(run_name="grid")
    def train(X_train: Any, y_train: Any, X_test: Any, y_test: Any) -> Any:
        return GridSearchCV(Ridge(), {"alpha": [0.1, 1.0, 10.0]}, cv=3).fit(X_train, y_train)

    search = train(X_train, y_train, X_test, y_test)
    assert isinstance(search, GridSearchCV)  # returned unchanged
    run = mlflow.last_active_run()
    assert run is not None
    assert run.data.params["best_alpha"] == str(search.best_params_["alpha"])
    assert run.data.metrics["best_cv_score"] == search.best_score_
    assert run.data.tags["toolkit.estimator"] == "Ridge"

    path, _ = get_model_s3_path(run_id=run.info.run_id)
    loaded = mlflow.pyfunc.load_model(path)
    assert loaded.get_raw_model().__class__.__name__ == "Ridge"  # best_estimator_, not the search


def test_binary_classifier_evaluation_has_metrics_and_plots(tracking: Callable[..., Any]) -> None:
    import mlflow
    from sklearn.linear_model import LogisticRegression

    from toolkit import mlflow_track_classifier

    tracking(big_schema=True)
    X_train, y_train, X_test, y_test = classification()

    @mlflow_track_classifier(run_name="logreg", evaluate=True)
    def train(X_train: Any, y_train: Any, X_test: Any, y_test: Any) -> Any:
        return LogisticRegression(max_iter=500).fit(X_train, y_train)

    train(X_train, y_train, X_test, y_test)
    run = mlflow.last_active_run()
    assert run is not None
    assert {"accuracy_score", "f1_score", "roc_auc", "precision_recall_auc"} <= set(run.data.metrics)
    artifacts = _run_artifacts(run.info.run_id)
    for plot in ("confusion_matrix", "roc_curve_plot", "precision_recall_curve_plot"):
        assert any(name.startswith(plot) for name in artifacts), (plot, artifacts)


def test_pipeline_with_scaler(tracking: Callable[..., Any]) -> None:
    import mlflow
    import numpy as np
    from sklearn.linear_model import Lasso
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from toolkit import get_model_s3_path, mlflow_track_regressor

    tracking(big_schema=True)
    X_train, y_train, X_test, y_test = regression()

    @mlflow_track_regressor(run_name="pipeline")
    def train(X_train: Any, y_train: Any, X_test: Any, y_test: Any) -> Any:
        return Pipeline([("scale", StandardScaler()), ("lasso", Lasso(alpha=0.01))]).fit(X_train, y_train)

    pipeline = train(X_train, y_train, X_test, y_test)
    run = mlflow.last_active_run()
    assert run is not None
    assert run.data.tags["toolkit.estimator"] == "Pipeline"
    path, _ = get_model_s3_path(run_id=run.info.run_id)
    np.testing.assert_allclose(mlflow.pyfunc.load_model(path).predict(X_test), pipeline.predict(X_test), rtol=1e-6)


def test_random_forest_multiclass_and_hist_gradient_boosting(tracking: Callable[..., Any]) -> None:
    import mlflow
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestClassifier

    from toolkit import get_model_s3_path, mlflow_track_classifier, mlflow_track_regressor

    tracking(big_schema=True)
    X_train, y_train, X_test, y_test = classification(classes=3)

    @mlflow_track_classifier(run_name="forest", evaluate=True)
    def train_forest(X_train: Any, y_train: Any, X_test: Any, y_test: Any) -> Any:
        return RandomForestClassifier(n_estimators=20, random_state=0).fit(X_train, y_train)

    forest = train_forest(X_train, y_train, X_test, y_test)
    run = mlflow.last_active_run()
    assert run is not None
    assert "accuracy_score" in run.data.metrics
    path, _ = get_model_s3_path(run_id=run.info.run_id)
    np.testing.assert_array_equal(mlflow.pyfunc.load_model(path).predict(X_test), forest.predict(X_test))

    Xr_train, yr_train, Xr_test, yr_test = regression()

    @mlflow_track_regressor(run_name="hgb")
    def train_hgb(X_train: Any, y_train: Any, X_test: Any, y_test: Any) -> Any:
        return HistGradientBoostingRegressor(max_iter=20).fit(X_train, y_train)

    hgb = train_hgb(Xr_train, yr_train, Xr_test, yr_test)
    run = mlflow.last_active_run()
    assert run is not None
    path, _ = get_model_s3_path(run_id=run.info.run_id)
    np.testing.assert_allclose(mlflow.pyfunc.load_model(path).predict(Xr_test), hgb.predict(Xr_test), rtol=1e-6)


def test_search_at_ordinary_width_with_autolog_on(tracking: Callable[..., Any]) -> None:
    """Autolog records the parameters and training metrics during the fit; the decorator adds the
    search's best parameters and gives the logged model the run's parameters and metrics."""
    import mlflow
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GridSearchCV

    from toolkit import last_tracked_run, mlflow_track_regressor

    tracking(autolog=True)
    X_train, y_train, X_test, y_test = regression()

    @mlflow_track_regressor(run_name="grid-autolog", big_schema=False, evaluate=True)
    def train(X_train: Any, y_train: Any, X_test: Any, y_test: Any) -> Any:
        return GridSearchCV(Ridge(), {"alpha": [0.1, 1.0, 10.0]}, cv=3).fit(X_train, y_train)

    search = train(X_train, y_train, X_test, y_test)
    tracked = last_tracked_run()
    assert tracked is not None
    assert tracked.error is None
    assert tracked.run_id is not None
    assert tracked.model_id is not None
    client = mlflow.MlflowClient()
    run = client.get_run(tracked.run_id)
    assert run.data.params["best_alpha"] == str(search.best_params_["alpha"])
    assert run.data.metrics["best_cv_score"] == search.best_score_
    assert "r2_score" in run.data.metrics
    autologged = {key for key in run.data.metrics if key.startswith("training_")}
    assert autologged, run.data.metrics
    model = client.get_logged_model(tracked.model_id)
    assert model.params["best_alpha"] == run.data.params["best_alpha"]
    assert autologged | {"best_cv_score", "r2_score"} <= {metric.key for metric in model.metrics or []}
    # One model per run: autolog's own model stays off inside the decorator.
    assert run.outputs is not None
    assert [output.model_id for output in run.outputs.model_outputs] == [tracked.model_id]
