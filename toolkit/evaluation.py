"""`mlflow.models.evaluate` on a tracked run's test set, in a form whose cost does not grow with the columns.

What stock `evaluate` does per column, and what we do instead:
- A DataFrame is turned into an MLflow `PandasDataset`, whose schema (one JSON object per column) is
  inferred and logged as a dataset record, so its size and the time to infer it grow with the width; and
  the evaluator rebuilds a renamed DataFrame of the features several times. We evaluate on two columns,
  the test row numbers and the target, and the model looks the rows up (`RowIndexedRegressor`): the
  dataset record and every step of the evaluator are then the same size at any width.
- SHAP explainability (on by default when `shap` is installed) explains every feature: off
  (`log_model_explainability: False`); it is meaningless for very wide data anyway.
Regressors get two diagnostic plots MLflow does not draw (residuals; predicted vs actual) as custom
artifacts computed from the 2-column `eval_df`, so they cost nothing per feature either.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from toolkit.arrays import as_array, feature_names_warning_silenced, predict_array
from toolkit.estimators import ModelType
from toolkit.schema import ColumnSchema, check_schema

EVALUATOR_CONFIG: dict[str, Any] = {"log_model_explainability": False}


def _figure() -> Any:
    """A Matplotlib figure without pyplot, so a notebook's backend and open figures are left alone."""
    from matplotlib.figure import Figure

    return Figure(figsize=(6, 4.5), dpi=100, layout="constrained")


def residuals_plot(eval_df: Any, _builtin_metrics: dict[str, float], artifacts_dir: str) -> dict[str, str]:
    import numpy as np

    prediction = np.asarray(eval_df["prediction"], dtype=float)
    residual = np.asarray(eval_df["target"], dtype=float) - prediction
    figure = _figure()
    axes = figure.add_subplot()
    axes.scatter(prediction, residual, s=12, alpha=0.7)
    axes.axhline(0.0, color="grey", linewidth=1)
    axes.set(xlabel="predicted", ylabel="actual - predicted", title="Residuals on the test set")
    path = os.path.join(artifacts_dir, "residuals.png")
    figure.savefig(path)
    return {"residuals": path}


def predicted_vs_actual_plot(eval_df: Any, _builtin_metrics: dict[str, float], artifacts_dir: str) -> dict[str, str]:
    import numpy as np

    prediction = np.asarray(eval_df["prediction"], dtype=float)
    target = np.asarray(eval_df["target"], dtype=float)
    low = float(min(prediction.min(), target.min()))
    high = float(max(prediction.max(), target.max()))
    figure = _figure()
    axes = figure.add_subplot()
    axes.scatter(target, prediction, s=12, alpha=0.7)
    axes.plot([low, high], [low, high], color="grey", linewidth=1, linestyle="--")
    axes.set(xlabel="actual", ylabel="predicted", title="Predicted vs actual on the test set")
    path = os.path.join(artifacts_dir, "predicted_vs_actual.png")
    figure.savefig(path)
    return {"predicted_vs_actual": path}


TEST_ROW_COLUMN = "test_row"
TARGET_COLUMN = "target"


class RowIndexedRegressor:
    """The fitted model behind `evaluate`, fed row numbers of the test matrix instead of its columns.

    MLflow's evaluator rebuilds and renames a DataFrame of the evaluation features each time it needs
    them (several times per evaluation) and records it as a dataset. A single column of row numbers makes
    each of those steps independent of the width; the model looks the rows up in the test matrix (checked
    against the training schema first, so positions are names) and predicts on a NumPy array, skipping
    scikit-learn's per-column DataFrame validation. The matrix is attached after the model round-trips
    through MLflow's loader, never pickled.
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self.features: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"model": self.model, "features": None}

    def rows(self, X: Any) -> Any:
        import numpy as np

        numbers = X[TEST_ROW_COLUMN] if hasattr(X, "columns") else X
        return self.features[np.asarray(numbers, dtype=np.intp).reshape(-1)]

    def predict(self, X: Any) -> Any:
        return predict_array(self.model, self.rows(X))

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> Any:
        """MLflow logs the estimator's own `score` too."""
        with feature_names_warning_silenced():
            return self.model.score(self.rows(X), y, sample_weight=sample_weight)


class RowIndexedClassifier(RowIndexedRegressor):
    """As `RowIndexedRegressor`, with `predict_proba` (MLflow draws ROC/PR from it) and `classes_`."""

    @property
    def classes_(self) -> Any:
        return self.model.classes_

    def predict_proba(self, X: Any) -> Any:
        return predict_array(self.model, self.rows(X), method="predict_proba")


@contextmanager
def _in_memory_pyfunc(model: RowIndexedRegressor, features: Any) -> Iterator[Any]:
    """The fitted model as a PyFuncModel, through a private temporary copy rather than a download.

    `evaluate` needs a PyFuncModel of the sklearn flavor (that is how it finds `predict_proba` for ROC/PR).
    Loading the logged model back costs one listing plus one presigned request per file and the model's
    size in transfer; pickling our own in-memory object into our own temp dir and reading it straight
    back is safe and local. The logged model is still the one the metrics are linked to (`model_id`).
    """
    import mlflow
    from mlflow.sklearn import SERIALIZATION_FORMAT_CLOUDPICKLE

    sklearn_logger = logging.getLogger(mlflow.sklearn.__name__)
    previous_level = sklearn_logger.level
    with tempfile.TemporaryDirectory(prefix="toolkit-eval-") as tmp:
        sklearn_logger.setLevel(logging.ERROR)  # its "pickle is unsafe to load" warning is about others' files
        try:
            mlflow.sklearn.save_model(
                model, f"{tmp}/model", serialization_format=SERIALIZATION_FORMAT_CLOUDPICKLE, pip_requirements=[]
            )
        finally:
            sklearn_logger.setLevel(previous_level)
        pyfunc_model = mlflow.pyfunc.load_model(f"{tmp}/model")
        pyfunc_model.get_raw_model().features = features
        yield pyfunc_model


def evaluate_on_run(
    *,
    run_id: str,
    model: Any,
    model_id: str | None,
    model_type: ModelType,
    X_test: Any,
    y_test: Any,
    schema: ColumnSchema | None,
    nested: bool,
) -> dict[str, float]:
    """Resume `run_id` and evaluate the fitted `model` there, linked to the logged model `model_id`.

    The run is resumed explicitly (not left to `evaluate`'s "active run or a new one"), so the metrics land
    on this run even when a parent run is active.
    """
    import mlflow
    import numpy as np
    import pandas as pd

    if isinstance(X_test, pd.DataFrame) and schema is not None:
        X_test = check_schema(X_test, schema)
    features = as_array(X_test)
    targets = np.asarray(y_test).reshape(-1)
    if len(targets) != len(features):
        raise ValueError(f"the test set has {len(features)} rows of features but {len(targets)} targets")
    data = pd.DataFrame({TEST_ROW_COLUMN: np.arange(len(features)), TARGET_COLUMN: targets})
    custom_artifacts = [residuals_plot, predicted_vs_actual_plot] if model_type == "regressor" else None
    wrapped = RowIndexedClassifier(model) if hasattr(model, "predict_proba") else RowIndexedRegressor(model)
    with (
        _in_memory_pyfunc(wrapped, features) as pyfunc_model,
        mlflow.start_run(run_id=run_id, nested=nested),
        warnings.catch_warnings(),
    ):
        # The row numbers are integers by nature; MLflow's hint about integer columns and missing values
        # is meant for feature columns.
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column", category=UserWarning)
        result = mlflow.models.evaluate(  # type: ignore[no-untyped-call]
            pyfunc_model,
            data,
            targets=TARGET_COLUMN,
            model_type=model_type,
            evaluators=["default"],
            evaluator_config={"default": EVALUATOR_CONFIG},
            custom_artifacts=custom_artifacts,
            model_id=model_id,
        )
    return {k: float(v) for k, v in result.metrics.items() if isinstance(v, (int, float, np.number))}
