"""`mlflow_track_regressor` / `mlflow_track_classifier`: decorators that track a `train(...)` function.

One decorated call = one MLflow run (nested under the active run, if any) holding exactly one logged model:
the fitted estimator, a search's `best_estimator_`, or a Pipeline. The flow of a call is here: open the
run, call the function with autologging adjusted (toolkit/autolog.py), check what it returned
(toolkit/estimators.py), record tags, params and metrics (toolkit/run_logging.py), log the model
(toolkit/model_logging.py), optionally evaluate on the test set (toolkit/evaluation.py), and keep the
model locally if tracking failed (toolkit/fallback.py).

Failure policy: the function's own exceptions propagate unchanged (the run is marked FAILED); a return
value that is not a fitted model raises before anything is logged; any tracking failure after a good fit
(server down, network, permissions) returns the model anyway, saves it locally and warns once.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from toolkit.arrays import n_columns
from toolkit.autolog import sklearn_autolog_for_the_call
from toolkit.estimators import DetectedModel, ModelType, detect_model
from toolkit.evaluation import evaluate_on_run
from toolkit.fallback import fallback_root, save_fallback, warn_tracking_failed
from toolkit.model_logging import log_sklearn_model, sklearn_save_kwargs
from toolkit.run_logging import log_estimator_params, log_run_tags, log_search_result, log_training_metrics
from toolkit.schema import ColumnSchema
from toolkit.session import current_session

_logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

# Wider than this, a decorated run uses big-schema mode even if not asked: a per-column signature and
# dataset record grow linearly with the width, and nobody wants that by accident.
AUTO_BIG_SCHEMA_COLUMNS = 5_000


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
    """The `TrackedRun` of this process's most recent decorated call, or None before the first."""
    return _last


@dataclass(frozen=True, kw_only=True)
class TrackingOptions:
    """The decorator's arguments, as given (None: decide per call)."""

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
    width; loading runs code from the artifact); see toolkit/model_logging.py.
    `fallback_dir`: where a model goes if tracking fails (default `$MLFLOW_PLATFORM_FALLBACK_DIR` or
    `./mlflow-fallback`).
    """
    return _decorator(
        TrackingOptions(
            model_type="regressor",
            run_name=run_name,
            big_schema=big_schema,
            evaluate=evaluate,
            train_set=train_set,
            test_set=test_set,
            model_name=model_name,
            registered_model_name=registered_model_name,
            serialization_format=serialization_format,
            pip_requirements=pip_requirements,
            fallback_dir=fallback_dir,
        )
    )


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
            model_type="classifier",
            run_name=run_name,
            big_schema=big_schema,
            evaluate=evaluate,
            train_set=train_set,
            test_set=test_set,
            model_name=model_name,
            registered_model_name=registered_model_name,
            serialization_format=serialization_format,
            pip_requirements=pip_requirements,
            fallback_dir=fallback_dir,
        )
    )


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
            with sklearn_autolog_for_the_call(big_schema=big_schema) as autolog_logs:
                result = self.function(*args, **kwargs)
        except BaseException:
            self._end_run_quietly("FAILED")
            raise
        try:
            detected = detect_model(result, function_name=self.function.__qualname__)
        except (TypeError, ValueError):
            self._end_run_quietly("FAILED")
            raise

        schema = ColumnSchema.from_frame(X_train) if n_columns(X_train) else None
        metrics: dict[str, float] = {}
        if failure is None:
            try:
                self._log(
                    detected,
                    X_train=X_train,
                    y_train=y_train,
                    schema=schema,
                    big_schema=big_schema,
                    autolog_logged=autolog_logs,
                )
                mlflow.end_run()
            except Exception as exc:
                failure = ("logging the model", exc)
                self._end_run_quietly("FAILED")
        if failure is None and options.evaluate:
            try:
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
            fallback_path = self._save_fallback(detected, schema=schema, failure=failure, big_schema=big_schema)
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
        """The decorator's choice, else `mlflow_init`'s; forced on beyond `AUTO_BIG_SCHEMA_COLUMNS`."""
        if self.options.big_schema is not None:
            chosen = self.options.big_schema
        else:
            session = current_session()
            chosen = bool(session and session.big_schema)
        width = n_columns(X_train)
        if not chosen and width > AUTO_BIG_SCHEMA_COLUMNS:
            _logger.info("%d training columns > %d: using big-schema mode", width, AUTO_BIG_SCHEMA_COLUMNS)
            return True
        return chosen

    def _log(
        self,
        detected: DetectedModel,
        *,
        X_train: Any,
        y_train: Any,
        schema: ColumnSchema | None,
        big_schema: bool,
        autolog_logged: bool,
    ) -> None:
        """Everything the open run records: tags, search result, params and metrics (unless autolog did),
        then the model."""
        options = self.options
        log_run_tags(
            model_type=options.model_type, estimator_class=detected.class_name, big_schema=big_schema, schema=schema
        )
        if detected.search is not None:
            assert self.run_id is not None
            log_search_result(detected.search, run_id=self.run_id)
        if not autolog_logged:
            log_estimator_params(detected.model)
            if X_train is not None and y_train is not None:
                log_training_metrics(detected.model, X_train, y_train, model_type=options.model_type)
        info = log_sklearn_model(
            detected.model,
            X_train=X_train,
            schema=schema,
            big_schema=big_schema,
            model_type=options.model_type,
            model_name=options.model_name,
            registered_model_name=options.registered_model_name,
            serialization_format=options.serialization_format,
            pip_requirements=options.pip_requirements,
        )
        self.model_id = info.model_id
        self.model_uri = info.model_uri

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
        self,
        detected: DetectedModel,
        *,
        schema: ColumnSchema | None,
        failure: tuple[str, BaseException],
        big_schema: bool,
    ) -> Path | None:
        """Keep the model locally and warn once. Called straight from `run`: the warning's stack level
        points at the caller of the decorated function."""
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
                save_kwargs=sklearn_save_kwargs(
                    detected.model,
                    signature=None,
                    big_schema=big_schema,
                    serialization_format=self.options.serialization_format,
                    pip_requirements=self.options.pip_requirements,
                ),
            )
        except Exception as save_exc:
            _logger.error("saving the fallback copy of the model failed: %s", save_exc)
        warn_tracking_failed(doing=doing, exc=exc, model_path=path, run_id=self.run_id)
        return path
