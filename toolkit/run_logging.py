"""What a decorated run records besides its model: tags, parameters, training metrics, a search's result.

While autologging is on at ordinary widths it records the parameters and training metrics itself; when it
is paused (big-schema mode, see toolkit/autolog.py) or off, the decorator records the same things here, on
a NumPy view of the training data.

MLflow and scikit-learn are imported inside the functions, so importing this module stays light.
"""

from __future__ import annotations

from typing import Any

from toolkit.arrays import predict_array
from toolkit.estimators import ModelType
from toolkit.schema import ColumnSchema


def log_run_tags(*, model_type: ModelType, estimator_class: str, big_schema: bool, schema: ColumnSchema | None) -> None:
    """The `toolkit.*` tags that say what the run trained and how it was tracked."""
    import mlflow

    mlflow.set_tags(
        {
            "toolkit.model_type": model_type,
            "toolkit.estimator": estimator_class,
            "toolkit.big_schema": str(big_schema).lower(),
            "toolkit.n_features": str(len(schema)) if schema is not None else "unknown",
        }
    )


def simple_params(params: dict[str, Any]) -> dict[str, str]:
    """The parameters MLflow can store: scalars and None, as text cut to MLflow's length limit."""
    from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

    return {
        key: str(value)[:MAX_PARAM_VAL_LENGTH]
        for key, value in params.items()
        if value is None or isinstance(value, (str, int, float, bool))
    }


def log_estimator_params(model: Any) -> None:
    """The estimator's parameters (nested ones included), as autologging records them."""
    import mlflow

    mlflow.log_params(simple_params(model.get_params(deep=True)))


def training_metrics(model: Any, X_train: Any, y_train: Any, *, model_type: ModelType) -> dict[str, float]:
    """What sklearn autologging records as `training_*`, from one prediction on a NumPy view."""
    import numpy as np
    from sklearn import metrics

    y_true = np.asarray(y_train).reshape(-1)
    y_pred = np.asarray(predict_array(model, X_train))
    if model_type == "regressor":
        return {
            "training_r2_score": float(metrics.r2_score(y_true, y_pred)),
            "training_root_mean_squared_error": float(np.sqrt(metrics.mean_squared_error(y_true, y_pred))),
            "training_mean_absolute_error": float(metrics.mean_absolute_error(y_true, y_pred)),
        }
    return {
        "training_accuracy_score": float(metrics.accuracy_score(y_true, y_pred)),
        "training_f1_score": float(metrics.f1_score(y_true, y_pred, average="weighted")),
    }


def log_training_metrics(model: Any, X_train: Any, y_train: Any, *, model_type: ModelType) -> None:
    import mlflow

    mlflow.log_metrics(training_metrics(model, X_train, y_train, model_type=model_type))


def log_search_result(search: Any, *, run_id: str) -> None:
    """Best params (as `best_<name>`) and score; autolog may have logged some already, and MLflow
    refuses to overwrite a parameter, so only the missing ones are logged."""
    import mlflow

    existing = mlflow.get_run(run_id).data.params
    best = {f"best_{k}": v for k, v in search.best_params_.items()}
    missing = {k: v for k, v in simple_params(best).items() if k not in existing}
    if missing:
        mlflow.log_params(missing)
    if getattr(search, "best_score_", None) is not None:
        mlflow.log_metric("best_cv_score", float(search.best_score_))
