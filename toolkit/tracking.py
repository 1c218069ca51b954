"""`mlflow_track_regressor` / `mlflow_track_classifier`: decorators that track a `train(...)` function.

One decorated call = one MLflow run (nested under the active run, if any) holding exactly one logged model:
the fitted estimator, a search's `best_estimator_`, or a Pipeline. The flow of a call is here: open the
run, call the function with autologging adjusted (toolkit/autolog.py), check what it returned
(toolkit/estimators.py), create the logged model and save its files locally (toolkit/model_logging.py),
optionally evaluate on the test set (toolkit/evaluation.py), then send what the run records
(toolkit/run_logging.py) and the model's files, finalize the model, close the run; and keep the model
locally if tracking failed (toolkit/fallback.py).

Round trips: a notebook talks to the server across a network, where every request the call waits for
costs a round trip, so the call sends few and waits for fewer. Requests that do not depend on each other
go out together (`_send_together`), after the evaluation: the model's files, the run's one `log_batch`
(tags, parameters, metrics linked to the model), the run's output link to the model, its input link
(with evaluation) and the evaluation's plots. Nothing the call wrote is read back. `mlflow.end_run`
would read the run back only to print its link; the decorator prints the same lines from what
`start_run` returned (`_end_run`).

Failure policy: the function's own exceptions propagate unchanged (the run is marked FAILED); a return
value that is not a fitted model raises before anything is logged; any tracking failure after a good fit
(server down, network, permissions) returns the model anyway, saves it locally and warns once.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from toolkit.arrays import n_columns
from toolkit.autolog import sklearn_autolog_for_the_call
from toolkit.estimators import DetectedModel, ModelType, detect_model
from toolkit.evaluation import Evaluation, evaluate_in_run
from toolkit.fallback import fallback_root, save_fallback, warn_tracking_failed
from toolkit.model_logging import (
    create_logged_model,
    file_uploads,
    finalize_logged_model,
    register_logged_model,
    save_model_files,
    schema_uri,
    sklearn_save_kwargs,
)
from toolkit.run_logging import batch_entities, linked_metrics, run_record
from toolkit.schema import RUN_SCHEMA_TAG, ColumnSchema
from toolkit.session import current_session

if TYPE_CHECKING:
    from mlflow.entities import RunInfo

_logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

# Wider than this, a decorated run uses big-schema mode even if not asked: a per-column signature and
# dataset record grow linearly with the width, and nobody wants that by accident.
AUTO_BIG_SCHEMA_COLUMNS = 5_000
# Requests in flight at once: below MLflow's HTTP connection pool size (`MLFLOW_HTTP_POOL_MAXSIZE`), so
# no connection is opened only to be thrown away.
MAX_CONCURRENT_REQUESTS = 8


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


def _send_together(pool: ThreadPoolExecutor, requests: list[Callable[[], Any]]) -> list[Future[Any]]:
    """Start independent requests at once; `_wait_for` collects them."""
    return [pool.submit(request) for request in requests]


def _wait_for(futures: list[Future[Any]]) -> None:
    """Wait for every request, then raise the first failure (all have finished by then)."""
    wait(futures)
    for future in futures:
        error = future.exception()
        if error is not None:
            raise error


@contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    """Set an environment variable for the duration of the block, then put back what was there."""
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


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
        self.run_info: RunInfo | None = None
        self.model_id: str | None = None
        self.model_uri: str | None = None

    @property
    def run_id(self) -> str | None:
        return self.run_info.run_id if self.run_info is not None else None

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
            self.run_info = mlflow.start_run(run_name=self.label, nested=nested).info
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
            with tempfile.TemporaryDirectory(prefix="toolkit-track-") as tmp:
                failure, metrics = self._track(
                    detected,
                    data=(X_train, y_train, X_test, y_test),
                    schema=schema,
                    big_schema=big_schema,
                    autolog_logged=autolog_logs,
                    workdir=Path(tmp),
                )

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

    def _track(
        self,
        detected: DetectedModel,
        *,
        data: tuple[Any, Any, Any, Any],
        schema: ColumnSchema | None,
        big_schema: bool,
        autolog_logged: bool,
        workdir: Path,
    ) -> tuple[tuple[str, BaseException] | None, dict[str, float]]:
        """Everything after a good fit, in the open run: `(failure or None, evaluation metrics)`.

        A failed evaluation still lets the model and the run's record be sent (the run then ends FAILED);
        a failure to log anything ends the run FAILED at once.
        """
        import mlflow
        from mlflow.entities import LoggedModelInput, LoggedModelOutput

        options = self.options
        X_train, y_train, X_test, y_test = data
        assert self.run_info is not None
        run_id = self.run_info.run_id
        client = mlflow.MlflowClient()
        with ThreadPoolExecutor(MAX_CONCURRENT_REQUESTS, thread_name_prefix="toolkit-upload") as pool:
            try:
                record = run_record(
                    detected,
                    X_train=X_train,
                    y_train=y_train,
                    model_type=options.model_type,
                    big_schema=big_schema,
                    schema=schema,
                    autolog_data=client.get_run(run_id).data if autolog_logged else None,
                )
                logged = create_logged_model(
                    name=options.model_name,
                    run_id=run_id,
                    experiment_id=self.run_info.experiment_id,
                    params=record.model_params,
                )
                self.model_id, self.model_uri = logged.model_id, f"models:/{logged.model_id}"
                model_dir = save_model_files(
                    detected.model,
                    workdir / "logged",
                    logged=logged,
                    run_id=run_id,
                    X_train=X_train,
                    schema=schema,
                    big_schema=big_schema,
                    model_type=options.model_type,
                    serialization_format=options.serialization_format,
                    pip_requirements=options.pip_requirements,
                )
                if schema is not None:
                    record.tags[RUN_SCHEMA_TAG] = schema_uri(logged)
            except Exception as exc:
                self._finalize_quietly(ready=False)
                self._end_run_quietly("FAILED")
                return ("logging the model", exc), {}

            # Nothing is in flight while the evaluation runs: MLflow's `evaluate` imports modules and
            # reconfigures autologging while holding its import-hook lock, and a first import in another
            # thread at that moment can deadlock against it.
            evaluation: Evaluation | None = None
            evaluation_failure: tuple[str, BaseException] | None = None
            if options.evaluate:
                try:
                    evaluation = evaluate_in_run(
                        model=detected.model,
                        model_type=options.model_type,
                        X_test=X_test,
                        y_test=y_test,
                        X_train=X_train,
                        schema=schema,
                        plots_dir=workdir / "plots",
                    )
                except Exception as exc:
                    evaluation_failure = ("evaluating the model", exc)

            try:
                now = int(time.time() * 1000)
                metrics = linked_metrics(record.metrics, run_id=run_id, model_id=logged.model_id, timestamp=now)
                params, tags = batch_entities(record)
                requests: list[Callable[[], Any]] = [
                    functools.partial(client.log_outputs, run_id, [LoggedModelOutput(logged.model_id, step=0)])
                ]
                if evaluation is not None:
                    metrics += linked_metrics(
                        evaluation.metrics,
                        run_id=run_id,
                        model_id=logged.model_id,
                        timestamp=now,
                        dataset=evaluation.dataset,
                    )
                    # As `evaluate` records the model it evaluated among the run's inputs.
                    requests.append(
                        functools.partial(client.log_inputs, run_id, models=[LoggedModelInput(logged.model_id)])
                    )
                    if evaluation.plots:
                        requests += file_uploads(workdir / "plots", self.run_info.artifact_uri)
                requests.append(functools.partial(client.log_batch, run_id, metrics=metrics, params=params, tags=tags))
                requests += file_uploads(model_dir, logged.artifact_location)
                _wait_for(_send_together(pool, requests))
                finalize_logged_model(logged.model_id, ready=True)
                if options.registered_model_name:
                    register_logged_model(logged.model_id, options.registered_model_name)
                self._end_run("FAILED" if evaluation_failure else "FINISHED")
            except Exception as exc:
                self._finalize_quietly(ready=False)
                self._end_run_quietly("FAILED")
                return evaluation_failure or ("logging the model", exc), {}
        if evaluation_failure is not None:
            return evaluation_failure, {}
        return None, evaluation.metrics if evaluation is not None else {}

    def _end_run(self, status: str) -> None:
        """`mlflow.end_run(status)` for our run, then the run's links, as MLflow prints them.

        MLflow reads the run back from the server only to print those two lines; everything in them is
        known from `start_run`, so the read is switched off with MLflow's own setting for the duration of
        the call and the lines are printed here. A user who switched the printing off keeps it off.
        """
        import mlflow
        from mlflow.environment_variables import MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT

        quiet = MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT.get()  # type: ignore[no-untyped-call]
        with _environment(MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT.name, "true"):
            mlflow.end_run(status)
        tracking_uri = mlflow.get_tracking_uri().rstrip("/")
        if not quiet and self.run_info is not None and tracking_uri.startswith(("http://", "https://")):
            experiment_url = f"{tracking_uri}/#/experiments/{self.run_info.experiment_id}"
            sys.stdout.write(f"🏃 View run {self.run_info.run_name} at: {experiment_url}/runs/{self.run_id}\n")
            sys.stdout.write(f"🧪 View experiment at: {experiment_url}\n")

    def _end_run_quietly(self, status: str) -> None:
        """End our run (if it is the active one) without letting a dead server raise from here."""
        import mlflow

        active = mlflow.active_run()
        if active is None or self.run_id is None or active.info.run_id != self.run_id:
            return
        try:
            self._end_run(status)
        except Exception as exc:
            _logger.debug("could not mark run %s %s: %s", self.run_id, status, exc)

    def _finalize_quietly(self, *, ready: bool) -> None:
        """Mark our logged model (if one was created) as MLflow's `log_model` does when logging fails."""
        if self.model_id is None:
            return
        try:
            finalize_logged_model(self.model_id, ready=ready)
        except Exception as exc:
            _logger.debug("could not finalize logged model %s: %s", self.model_id, exc)

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
