"""`mlflow_track_regressor` / `mlflow_track_classifier`: decorators that track a `train(...)` function.

One decorated call = one MLflow run (nested under the active run, if any) holding exactly one logged model:
the fitted estimator, a search's `best_estimator_`, or a Pipeline. At ordinary widths autologging, when
on, still records parameters and training metrics, but not its own model, so the run never holds two
models; in big-schema mode autologging is paused for the call and the toolkit records params and training
metrics itself (see `_autolog_for_the_call` for why). The model is always logged here: explicit pip
requirements (requirement inference costs 13 s at 500,000 columns), and in big-schema mode a tiny
outputs-only signature plus the compressed column schema instead of MLflow's per-column signature.

Measured at 100 x 500,000 float32, Ridge, 2 cores, local basic-auth server: tracked fit 12.4 s against a
bare fit of 7.9-10.4 s (most of the rest is ~40 REST round trips of ~0.2 s, the server's per-request
password hashing), 19.1 s with `evaluate=True`; peak RSS 852 / 957 MB against 771 MB bare; MLmodel 1,035 B;
column schema 1.16 MB; model pickle 8.5 MB.

Failure policy: the function's own exceptions propagate unchanged (the run is marked FAILED); a return
value that is not a fitted model raises before anything is logged; any tracking failure after a good fit
(server down, network, permissions) returns the model anyway, saves it locally and warns once.
"""

from __future__ import annotations

import functools
import inspect
import logging
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, ParamSpec, TypeVar

from toolkit.estimators import DetectedModel, detect_model
from toolkit.fallback import fallback_root, save_fallback, warn_tracking_failed
from toolkit.schema import MODEL_SCHEMA_PATH, SCHEMA_FILE_NAME, ColumnSchema
from toolkit.session import current_session

_logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")
ModelType = Literal["regressor", "classifier"]

# Wider than this, a decorated run uses big-schema mode even if not asked: a per-column signature and
# dataset record grow linearly (30 MB at 500,000 columns) and nobody wants that by accident.
AUTO_BIG_SCHEMA_COLUMNS = 5_000
# How the estimator is serialized; `serialization_format=` on the decorator overrides both defaults.
# - "skops" (MLflow's default, and ours for ordinary widths) stores no code, so loading a tampered file
#   cannot run arbitrary code. scikit-learn's own types that skops does not trust by default (the tree
#   node storage of forests and boosting) are trusted explicitly for models this process trained.
# - "cloudpickle" is the big-schema default: skops writes `feature_names_in_` element by element, 24.5 MB
#   and 1.4 s (dump plus MLflow's verifying load) per 100,000 columns, against 1.7 MB and 10 ms for a
#   pickle; at 500,000 columns skops alone would cost more than the fit. Loading a pickle runs code from
#   the artifact: load models only from the platform's bucket, which only the server's role writes
#   (proxied mode). MLflow gates every format behind MLFLOW_ALLOW_PICKLE_DESERIALIZATION, skops included,
#   because skops' allow-list is itself read from the model's MLmodel file.
DEFAULT_SERIALIZATION_FORMAT = "skops"
BIG_SCHEMA_SERIALIZATION_FORMAT = "cloudpickle"
_MAX_PARAM_LENGTH = 6000  # MLflow's limit for a parameter value


@dataclass(frozen=True)
class TrackedRun:
    """What the last decorated call tracked (also when a parent run makes `mlflow.last_active_run()`
    return the parent): ids, evaluation metrics, and the fallback path if tracking failed."""

    run_id: str | None
    model_id: str | None
    model_uri: str | None
    big_schema: bool
    metrics: dict[str, float] = field(default_factory=dict)
    fallback_path: Path | None = None
    error: str | None = None


_last: TrackedRun | None = None


def last_tracked_run() -> TrackedRun | None:
    return _last


@dataclass(frozen=True)
class TrackingOptions:
    model_type: ModelType
    run_name: str | None
    big_schema: bool | None
    evaluate: bool
    train_set: tuple[str, str]
    test_set: tuple[str, str]
    model_name: str
    registered_model_name: str | None
    serialization_format: str | None
    pip_requirements: list[str] | None
    fallback_dir: str | Path | None


def mlflow_track_regressor(
    run_name: str | None = None,
    big_schema: bool | None = None,
    evaluate: bool = False,
    *,
    train_set: tuple[str, str] = ("X_train", "y_train"),
    test_set: tuple[str, str] = ("X_test", "y_test"),
    model_name: str = "model",
    registered_model_name: str | None = None,
    serialization_format: str | None = None,
    pip_requirements: list[str] | None = None,
    fallback_dir: str | Path | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Track a function `train(X_train, y_train, X_test, y_test)` that returns a fitted regressor.

    `run_name`: default the function's name. `big_schema`: default inherits `mlflow_init(big_schema=...)`,
    and is forced on beyond `AUTO_BIG_SCHEMA_COLUMNS` training columns. `evaluate`: after the run closes,
    evaluate on the test set into this run (regression metrics, residual and predicted-vs-actual plots).
    `train_set`/`test_set`: the parameter names holding the data (else positions 0,1 / 2,3).
    `serialization_format`: default "skops" (safe to load), "cloudpickle" in big-schema mode (fast at any
    width; loading runs code from the artifact); see `BIG_SCHEMA_SERIALIZATION_FORMAT`.
    `fallback_dir`: where a model goes if tracking fails (default `$MLFLOW_PLATFORM_FALLBACK_DIR` or
    `./mlflow-fallback`).
    """
    return _decorator(
        TrackingOptions(
            "regressor", run_name, big_schema, evaluate, train_set, test_set, model_name, registered_model_name,
            serialization_format, pip_requirements, fallback_dir,
        )
    )  # fmt: skip


def mlflow_track_classifier(
    run_name: str | None = None,
    big_schema: bool | None = None,
    evaluate: bool = False,
    *,
    train_set: tuple[str, str] = ("X_train", "y_train"),
    test_set: tuple[str, str] = ("X_test", "y_test"),
    model_name: str = "model",
    registered_model_name: str | None = None,
    serialization_format: str | None = None,
    pip_requirements: list[str] | None = None,
    fallback_dir: str | Path | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """As `mlflow_track_regressor`, for a classifier: evaluation logs classification metrics, the
    confusion matrix and, for two classes, ROC and precision-recall curves."""
    return _decorator(
        TrackingOptions(
            "classifier", run_name, big_schema, evaluate, train_set, test_set, model_name, registered_model_name,
            serialization_format, pip_requirements, fallback_dir,
        )
    )  # fmt: skip


def _decorator(options: TrackingOptions) -> Callable[[Callable[P, R]], Callable[P, R]]:
    if callable(options.run_name):
        raise TypeError("use the decorator with parentheses: @mlflow_track_regressor() or @mlflow_track_regressor(...)")

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        signature = inspect.signature(function)

        @functools.wraps(function)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            result: R = _TrackedCall(function, signature, options).run(args, kwargs)
            return result

        return wrapper

    return decorate


def _argument(bound: inspect.BoundArguments, name: str, position: int) -> Any:
    """The argument named `name`, else the `position`-th positional one, else None."""
    if name in bound.arguments:
        return bound.arguments[name]
    positional = [
        value
        for param_name, value in bound.arguments.items()
        if bound.signature.parameters[param_name].kind
        in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    return positional[position] if position < len(positional) else None


def _n_columns(data: Any) -> int:
    shape = getattr(data, "shape", None)
    return int(shape[1]) if shape is not None and len(shape) == 2 else 0


@contextmanager
def _autolog_for_the_call(big_schema: bool) -> Iterator[bool]:
    """Adjust sklearn autologging while the decorated function runs; yields whether autolog still logs.

    - Ordinary widths: autolog keeps logging params and training metrics, but not its own model (we log
      the one model the run holds).
    - Big schema: autolog is paused entirely. Its training-metrics step wraps the training frame in an
      MLflow PandasDataset whatever `log_datasets` says, and that dataset's digest hashes every column
      (64 s at 100 x 500,000); its metric calls also predict on the DataFrame, which scikit-learn
      validates column by column (6 s per call at 500,000). The toolkit logs params and training
      metrics itself instead, on a NumPy view.
    Previous settings are restored afterwards (reconfiguring autolog after its first call takes ~30 ms).
    """
    import mlflow
    from mlflow.utils.autologging_utils import autologging_is_disabled, get_autologging_config

    if autologging_is_disabled("sklearn"):  # type: ignore[no-untyped-call]
        yield False
        return
    previous = {
        name: get_autologging_config("sklearn", name, parameter.default)  # type: ignore[no-untyped-call]
        for name, parameter in inspect.signature(mlflow.sklearn.autolog).parameters.items()
    }
    mlflow.sklearn.autolog(**dict(previous, disable=True) if big_schema else dict(previous, log_models=False))
    try:
        yield not big_schema
    finally:
        mlflow.sklearn.autolog(**previous)


def as_array(X: Any) -> Any:
    """A NumPy view of a frame for scikit-learn: its DataFrame validation loops over columns in Python
    (6 s per call at 500,000 columns), an array's does not. Callers guarantee training column order."""
    import numpy as np

    return X.to_numpy() if hasattr(X, "to_numpy") else np.asarray(X)


def predict_array(model: Any, X: Any, method: str = "predict") -> Any:
    """`model.<method>` on `as_array(X)`, without scikit-learn's warning that the array has no column
    names (the order was checked against the training columns)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="X does not have valid feature names", category=UserWarning)
        return getattr(model, method)(as_array(X))


def default_pip_requirements(serialization_format: str) -> list[str]:
    """Pinned requirements of a scikit-learn model, given explicitly so MLflow need not infer them
    (inference re-imports and probes the model: 13 s of a 26 s `log_model` at 500,000 columns)."""
    from importlib.metadata import PackageNotFoundError, version

    packages = ["mlflow", "scikit-learn", "numpy", "scipy", "pandas"]
    packages += {"skops": ["skops"], "cloudpickle": ["cloudpickle"]}.get(serialization_format, [])
    pins = []
    for package in packages:
        try:
            pins.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            continue
    return pins


def sklearn_types_skops_refuses(model: Any) -> list[str] | None:
    """scikit-learn's own types in `model` that skops does not trust by default (e.g. the tree storage
    `sklearn.tree._tree.Tree`). skops' warning is about files from others; this model was trained in this
    process. Types from other packages stay untrusted, so saving such a model fails loudly (and the
    fallback keeps it) instead of silently trusting foreign code. Costs one in-memory skops dump."""
    import skops.io

    untrusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    return [name for name in untrusted if name.startswith("sklearn.")] or None


def _colspec_type(dtype: Any) -> str:
    kind, size = dtype.kind, dtype.itemsize
    if kind == "f":
        return "float" if size <= 4 else "double"
    if kind in "iu":
        return "integer" if size <= 4 else "long"
    if kind == "b":
        return "boolean"
    return "string"


def placeholder_signature(model: Any, X_train: Any) -> Any:
    """An outputs-only signature: MLflow then enforces no input schema (the column schema artifact and
    `check_schema` do that job), and the MLmodel file stays a few hundred bytes at any width. The output
    type comes from predicting one training row."""
    import numpy as np
    from mlflow.models.signature import ModelSignature
    from mlflow.types import ColSpec, Schema, TensorSpec

    prediction = np.asarray(predict_array(model, X_train[:1]))
    if prediction.ndim > 1 and prediction.shape[1] > 1:
        outputs = Schema([TensorSpec(prediction.dtype, (-1, int(prediction.shape[1])))])
    else:
        outputs = Schema([ColSpec(_colspec_type(prediction.dtype))])
    return ModelSignature(inputs=None, outputs=outputs)


def training_metrics(model: Any, X_train: Any, y_train: Any, model_type: ModelType) -> dict[str, float]:
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


def _simple_params(params: dict[str, Any]) -> dict[str, str]:
    return {
        key: str(value)[:_MAX_PARAM_LENGTH]
        for key, value in params.items()
        if value is None or isinstance(value, (str, int, float, bool))
    }


class _TrackedCall:
    """One call of a decorated function: the run, the fit, the logging, the evaluation, the fallback."""

    def __init__(self, function: Callable[..., Any], signature: inspect.Signature, options: TrackingOptions) -> None:
        self.function = function
        self.signature = signature
        self.options = options
        self.label = options.run_name or function.__name__
        self.run_id: str | None = None
        self.model_id: str | None = None
        self.model_uri: str | None = None
        self.big_schema = False

    def run(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        import mlflow

        options = self.options
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        X_train = _argument(bound, options.train_set[0], 0)
        y_train = _argument(bound, options.train_set[1], 1)
        X_test = _argument(bound, options.test_set[0], 2)
        y_test = _argument(bound, options.test_set[1], 3)
        if options.evaluate and (X_test is None or y_test is None):
            raise ValueError(
                f"{self.function.__qualname__}: evaluate=True needs a test set, but no "
                f"{options.test_set[0]!r}/{options.test_set[1]!r} argument was given (rename them with "
                "test_set=(...), or use evaluate=False)"
            )
        big_schema = self._big_schema(X_train)

        failure: tuple[str, BaseException] | None = None
        nested = mlflow.active_run() is not None
        try:
            run = mlflow.start_run(run_name=self.label, nested=nested)
            self.run_id = run.info.run_id
        except Exception as exc:
            failure = ("starting the run", exc)

        try:
            with _autolog_for_the_call(big_schema) as autolog_logs:
                result = self.function(*args, **kwargs)
        except BaseException:
            self._end_run_quietly("FAILED")
            raise
        try:
            detected = detect_model(result, function_name=self.function.__qualname__)
        except (TypeError, ValueError):
            self._end_run_quietly("FAILED")
            raise

        schema = ColumnSchema.from_frame(X_train) if _n_columns(X_train) else None
        self.big_schema = big_schema
        metrics: dict[str, float] = {}
        if failure is None:
            try:
                self._log(detected, X_train, y_train, schema, big_schema, autolog_logs)
                mlflow.end_run()
            except Exception as exc:
                failure = ("logging the model", exc)
                self._end_run_quietly("FAILED")
        if failure is None and options.evaluate:
            try:
                from toolkit.evaluation import evaluate_on_run

                assert self.run_id is not None
                metrics = evaluate_on_run(
                    run_id=self.run_id,
                    model=detected.model,
                    model_id=self.model_id,
                    model_type=options.model_type,
                    X_test=X_test,
                    y_test=y_test,
                    schema=schema,
                    nested=mlflow.active_run() is not None,
                )
            except Exception as exc:
                failure = ("evaluating the model", exc)
                self._end_run_quietly("FAILED")

        fallback_path = None
        if failure is not None:
            fallback_path = self._save_fallback(detected, schema, failure)
        global _last
        _last = TrackedRun(
            run_id=self.run_id,
            model_id=self.model_id,
            model_uri=self.model_uri,
            big_schema=big_schema,
            metrics=metrics,
            fallback_path=fallback_path,
            error=None if failure is None else f"{failure[0]}: {type(failure[1]).__name__}: {failure[1]}",
        )
        return result

    def _big_schema(self, X_train: Any) -> bool:
        if self.options.big_schema is not None:
            chosen = self.options.big_schema
        else:
            session = current_session()
            chosen = bool(session and session.big_schema)
        width = _n_columns(X_train)
        if not chosen and width > AUTO_BIG_SCHEMA_COLUMNS:
            _logger.info("%d training columns > %d: using big-schema mode", width, AUTO_BIG_SCHEMA_COLUMNS)
            return True
        return chosen

    def _save_kwargs(self, model: Any, signature: Any, big_schema: bool) -> dict[str, Any]:
        fmt = self.options.serialization_format or (
            BIG_SCHEMA_SERIALIZATION_FORMAT if big_schema else DEFAULT_SERIALIZATION_FORMAT
        )
        kwargs: dict[str, Any] = {
            "serialization_format": fmt,
            "pip_requirements": self.options.pip_requirements or default_pip_requirements(fmt),
            "signature": signature,
        }
        if fmt == "skops":
            kwargs["skops_trusted_types"] = sklearn_types_skops_refuses(model)
        return kwargs

    def _log(
        self,
        detected: DetectedModel,
        X_train: Any,
        y_train: Any,
        schema: ColumnSchema | None,
        big_schema: bool,
        autolog_logged: bool,
    ) -> None:
        import mlflow

        options = self.options
        mlflow.set_tags(
            {
                "toolkit.model_type": options.model_type,
                "toolkit.estimator": detected.class_name,
                "toolkit.big_schema": str(big_schema).lower(),
                "toolkit.n_features": str(len(schema)) if schema is not None else "unknown",
            }
        )
        if detected.search is not None:
            self._log_search(detected.search)
        if not autolog_logged:
            mlflow.log_params(_simple_params(detected.model.get_params(deep=True)))
            if X_train is not None and y_train is not None:
                mlflow.log_metrics(training_metrics(detected.model, X_train, y_train, options.model_type))

        signature = None
        input_example = None
        if X_train is not None and big_schema:
            signature = placeholder_signature(detected.model, X_train)
        elif X_train is not None:
            from mlflow.models import infer_signature

            input_example = X_train.iloc[:5] if hasattr(X_train, "iloc") else X_train[:5]
            signature = infer_signature(input_example, detected.model.predict(input_example))
        with tempfile.TemporaryDirectory(prefix="toolkit-log-") as tmp:
            extra_files = None
            metadata: dict[str, Any] = {"toolkit_model_type": options.model_type}
            if schema is not None:
                schema_path = schema.write(Path(tmp) / SCHEMA_FILE_NAME)
                mlflow.log_artifact(str(schema_path))
                extra_files = [str(schema_path)]
                metadata.update(toolkit_column_schema=MODEL_SCHEMA_PATH, toolkit_n_columns=len(schema))
            info = mlflow.sklearn.log_model(
                detected.model,
                name=options.model_name,
                input_example=input_example,
                extra_files=extra_files,
                metadata=metadata,
                registered_model_name=options.registered_model_name,
                **self._save_kwargs(detected.model, signature, big_schema),
            )
        self.model_id = info.model_id
        self.model_uri = info.model_uri

    def _log_search(self, search: Any) -> None:
        """Best params (as `best_<name>`) and score; autolog may have logged some already, and MLflow
        refuses to overwrite a parameter, so only the missing ones are logged."""
        import mlflow

        assert self.run_id is not None
        existing = mlflow.get_run(self.run_id).data.params
        best = {f"best_{k}": v for k, v in search.best_params_.items()}
        missing = {k: v for k, v in _simple_params(best).items() if k not in existing}
        if missing:
            mlflow.log_params(missing)
        if getattr(search, "best_score_", None) is not None:
            mlflow.log_metric("best_cv_score", float(search.best_score_))

    def _end_run_quietly(self, status: str) -> None:
        """End our run (if it is the active one) without letting a dead server raise from here."""
        import mlflow

        active = mlflow.active_run()
        if active is None or self.run_id is None or active.info.run_id != self.run_id:
            return
        try:
            mlflow.end_run(status)
        except Exception as exc:
            _logger.debug("could not mark run %s %s: %s", self.run_id, status, exc)

    def _save_fallback(
        self, detected: DetectedModel, schema: ColumnSchema | None, failure: tuple[str, BaseException]
    ) -> Path | None:
        doing, exc = failure
        cause = f"{doing}: {type(exc).__name__}: {exc}"
        path: Path | None = None
        try:
            path = save_fallback(
                detected.model,
                root=fallback_root(self.options.fallback_dir),
                label=self.label,
                run_id=self.run_id,
                schema=schema,
                cause=cause,
                save_kwargs=self._save_kwargs(detected.model, None, self.big_schema),
            )
        except Exception as save_exc:
            _logger.error("saving the fallback copy of the model failed: %s", save_exc)
        warn_tracking_failed(doing=doing, exc=exc, model_path=path, run_id=self.run_id)
        return path
