"""What a decorated run records besides its model: tags, parameters, training metrics, a search's result.

Everything is gathered here as plain values (`RunRecord`) and sent in one `log_batch`, together with the
model's files (toolkit/tracking.py): one request instead of one per kind. Metrics are sent with the
logged model's id, so the run and the model show them without the read-back MLflow's `log_model` does to
link them.

While autologging is on at ordinary widths it records the parameters and training metrics itself during
the fit; the decorator then reads the run back once (`autolog_data` below), to give the logged model
the same parameters and metrics, and adds only what autolog did not record. When autolog is paused
(big-schema mode, see toolkit/autolog.py) or off, the decorator computes the same values here, on a NumPy
view of the training data, and reads nothing back.

MLflow and scikit-learn are imported inside the functions, so importing this module stays light.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from toolkit.arrays import predict_array
from toolkit.estimators import DetectedModel, ModelType
from toolkit.schema import ColumnSchema

if TYPE_CHECKING:
    from mlflow.entities import Metric, Param, RunData, RunTag


@dataclass
class RunRecord:
    """What the run's one `log_batch` sends, and what the logged model is created with.

    `params` go to the run; `model_params` are every parameter of the run (autolog's too), which the
    logged model gets as `log_model` would give it; `metrics` are logged on the run linked to the model.
    """

    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    model_params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


def run_tags(
    *, model_type: ModelType, estimator_class: str, big_schema: bool, schema: ColumnSchema | None
) -> dict[str, str]:
    """The `toolkit.*` tags that say what the run trained and how it was tracked."""
    return {
        "toolkit.model_type": model_type,
        "toolkit.estimator": estimator_class,
        "toolkit.big_schema": str(big_schema).lower(),
        "toolkit.n_features": str(len(schema)) if schema is not None else "unknown",
    }


def simple_params(params: dict[str, Any]) -> dict[str, str]:
    """The parameters MLflow can store: scalars and None, as text cut to MLflow's length limit."""
    from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

    return {
        key: str(value)[:MAX_PARAM_VAL_LENGTH]
        for key, value in params.items()
        if value is None or isinstance(value, (str, int, float, bool))
    }


def estimator_params(model: Any) -> dict[str, str]:
    """The estimator's parameters (nested ones included), as autologging records them."""
    return simple_params(model.get_params(deep=True))


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


def run_record(
    detected: DetectedModel,
    *,
    X_train: Any,
    y_train: Any,
    model_type: ModelType,
    big_schema: bool,
    schema: ColumnSchema | None,
    autolog_data: RunData | None,
) -> RunRecord:
    """Tags, parameters and metrics of a decorated run. `autolog_data`: what autolog recorded during the
    fit (the run read back once), or None when autolog did not log (paused or off).

    A search adds its best parameters (as `best_<name>`, unless autolog logged them: MLflow refuses to
    overwrite a parameter) and its best cross-validation score.
    """
    record = RunRecord(
        tags=run_tags(model_type=model_type, estimator_class=detected.class_name, big_schema=big_schema, schema=schema)
    )
    existing: dict[str, str] = {}
    if autolog_data is None:
        record.params.update(estimator_params(detected.model))
        if X_train is not None and y_train is not None:
            record.metrics.update(training_metrics(detected.model, X_train, y_train, model_type=model_type))
    else:
        existing = dict(autolog_data.params)
        record.metrics.update(autolog_data.metrics)
    search = detected.search
    if search is not None:
        best = simple_params({f"best_{k}": v for k, v in search.best_params_.items()})
        record.params.update({k: v for k, v in best.items() if k not in existing})
        if getattr(search, "best_score_", None) is not None:
            record.metrics["best_cv_score"] = float(search.best_score_)
    record.model_params = {**existing, **record.params}
    return record


def linked_metrics(
    values: dict[str, float],
    *,
    run_id: str,
    model_id: str,
    timestamp: int,
    dataset: tuple[str, str] | None = None,
) -> list[Metric]:
    """Metrics of the run at step 0, linked to the logged model (and to a dataset `(name, digest)`),
    as MLflow links a run's metrics to the model it logs."""
    from mlflow.entities import Metric

    name, digest = dataset if dataset is not None else (None, None)
    return [
        Metric(
            key=key,
            value=value,
            timestamp=timestamp,
            step=0,
            model_id=model_id,
            dataset_name=name,
            dataset_digest=digest,
            run_id=run_id,
        )
        for key, value in values.items()
    ]


def batch_entities(record: RunRecord) -> tuple[list[Param], list[RunTag]]:
    """The record's parameters and tags as MLflow entities, for `log_batch`."""
    from mlflow.entities import Param, RunTag

    return (
        [Param(key, value) for key, value in record.params.items()],
        [RunTag(key, value) for key, value in record.tags.items()],
    )
