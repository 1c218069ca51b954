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

Round trips: the evaluation runs inside the decorated run while it is still open (no resuming and
closing it again), and is given no model id: resolving one costs a request, and the decorator links the
metrics to the logged model in the run's one `log_batch` instead (`Evaluation.dataset` says which dataset
they were computed on). The plots are drawn into the caller's folder and handed back rather than logged
by MLflow, which reads the run back for each artifact it logs; the decorator uploads them together with
the model's files.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.arrays import as_array, feature_names_warning_silenced, predict_array
from toolkit.estimators import ModelType
from toolkit.schema import ColumnSchema, check_schema

EVALUATOR_CONFIG: dict[str, Any] = {"log_model_explainability": False}


def _figure() -> Any:
    """A Matplotlib figure without pyplot, so a notebook's backend and open figures are left alone.

    Fixed margins rather than a layout engine: the labels are the same on every plot, and a layout engine
    measures every text box again before each plot is drawn, a cost the evaluation pays on every call.
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 4.5), dpi=100)
    figure.set_layout_engine("none")  # not "tight", from the rcParams MLflow's evaluator sets
    figure.subplots_adjust(left=0.13, right=0.97, bottom=0.12, top=0.92)
    return figure


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
    scikit-learn's per-column DataFrame validation. The fitted model and the matrix are attached after
    the wrapper round-trips through MLflow's loader, never pickled: a wide model's pickle (all its
    feature names) would cost as much to write and read back as the rest of the evaluation.
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self.features: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"model": None, "features": None}

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


@dataclass(frozen=True)
class Evaluation:
    """What an evaluation produced: its metrics, the dataset `(name, digest)` MLflow recorded for them,
    and the plot files still to be uploaded to the run's artifacts."""

    metrics: dict[str, float]
    dataset: tuple[str, str]
    plots: list[Path] = field(default_factory=list)


class _DrawInto:
    """A custom artifact for MLflow's evaluator that draws into our folder and gives MLflow nothing to
    log: the decorator uploads the file with the model's files (see the module docstring)."""

    def __init__(self, draw: Callable[[Any, dict[str, float], str], dict[str, str]], folder: Path) -> None:
        self.draw = draw
        self.folder = folder
        self.__name__ = draw.__name__
        self.drawn: list[Path] = []

    def __call__(self, eval_df: Any, builtin_metrics: dict[str, float], _artifacts_dir: str) -> dict[str, str]:
        self.drawn.extend(Path(p) for p in self.draw(eval_df, builtin_metrics, str(self.folder)).values())
        return {}


@contextmanager
def _in_memory_pyfunc(model: RowIndexedRegressor, fitted: Any, features: Any) -> Iterator[Any]:
    """The wrapper as a PyFuncModel, through a private temporary copy rather than a download.

    `evaluate` needs a PyFuncModel of the sklearn flavor (that is how it finds `predict_proba` for ROC/PR).
    Loading the logged model back costs one listing plus one request per file and the model's size in
    transfer; saving the wrapper (without the fitted model, see `RowIndexedRegressor`) into our own temp
    dir and reading it straight back is small, safe and local.
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
        raw = pyfunc_model.get_raw_model()
        raw.model = fitted
        raw.features = features
        yield pyfunc_model


def _same_columns(X_test: Any, X_train: Any) -> bool:
    """Whether the test frame has the training frame's columns, in order and with the same dtypes,
    decided by pandas without a Python object per column (the same Index object answers at once)."""
    import pandas as pd

    return (
        isinstance(X_train, pd.DataFrame)
        and X_test.columns.equals(X_train.columns)
        and X_test.dtypes.equals(X_train.dtypes)
    )


def evaluate_in_run(
    *,
    model: Any,
    model_type: ModelType,
    X_test: Any,
    y_test: Any,
    X_train: Any,
    schema: ColumnSchema | None,
    plots_dir: Path,
) -> Evaluation:
    """Evaluate the fitted `model` on the test set into the active run (the decorated one, still open).

    The test frame is checked against the training columns first (unless it has the training frame's
    very columns), so the matrix's positions are the training names. Plots are drawn into `plots_dir`.
    """
    import mlflow
    import numpy as np
    import pandas as pd
    from mlflow.data.pandas_dataset import from_pandas

    if isinstance(X_test, pd.DataFrame) and schema is not None and not _same_columns(X_test, X_train):
        X_test = check_schema(X_test, schema)
    features = as_array(X_test)
    targets = np.asarray(y_test).reshape(-1)
    if len(targets) != len(features):
        raise ValueError(f"the test set has {len(features)} rows of features but {len(targets)} targets")
    data = pd.DataFrame({TEST_ROW_COLUMN: np.arange(len(features)), TARGET_COLUMN: targets})
    dataset = from_pandas(data, targets=TARGET_COLUMN)
    plots_dir.mkdir(parents=True, exist_ok=True)
    plots = (
        [_DrawInto(residuals_plot, plots_dir), _DrawInto(predicted_vs_actual_plot, plots_dir)]
        if model_type == "regressor"
        else []
    )
    wrapped = RowIndexedClassifier(model) if hasattr(model, "predict_proba") else RowIndexedRegressor(model)
    with _in_memory_pyfunc(wrapped, model, features) as pyfunc_model, warnings.catch_warnings():
        # The row numbers are integers by nature; MLflow's hint about integer columns and missing values
        # is meant for feature columns.
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column", category=UserWarning)
        result = mlflow.models.evaluate(  # type: ignore[no-untyped-call]
            pyfunc_model,
            dataset,
            model_type=model_type,
            evaluators=["default"],
            evaluator_config={"default": EVALUATOR_CONFIG},
            custom_artifacts=plots or None,
        )
    metrics = {k: float(v) for k, v in result.metrics.items() if isinstance(v, (int, float, np.number))}
    return Evaluation(
        metrics=metrics,
        dataset=(dataset.name, dataset.digest),
        plots=[path for plot in plots for path in plot.drawn],
    )
