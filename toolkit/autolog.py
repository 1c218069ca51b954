"""sklearn autologging while a decorated function runs, so a run holds exactly one model.

- Ordinary widths: autolog keeps logging params and training metrics, but not its own model (the decorator
  logs the one model the run holds).
- Big schema: autolog is paused entirely. Its training-metrics step wraps the training frame in an MLflow
  PandasDataset whatever `log_datasets` says, and that dataset's digest hashes every column; its metric
  calls also predict on the DataFrame, which scikit-learn validates column by column. Both grow with the
  width until they dwarf the fit. The decorator logs params and training metrics itself instead, on a
  NumPy view (toolkit/run_logging.py). The pause is MLflow's own switch (`disable_autologging`, for
  every integration, so nothing else logs a model into the run either), which the patched methods read
  on every call: re-enabling autolog by reconfiguring it would patch every scikit-learn estimator again,
  a noticeable cost on each decorated call.

At ordinary widths the settings in force before the call are restored afterwards.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def sklearn_autolog_for_the_call(*, big_schema: bool) -> Iterator[bool]:
    """Adjust sklearn autologging for the duration of the block; yields whether autolog still logs."""
    import mlflow
    from mlflow.sklearn import FLAVOR_NAME
    from mlflow.utils.autologging_utils import autologging_is_disabled, disable_autologging, get_autologging_config

    if autologging_is_disabled(FLAVOR_NAME):  # type: ignore[no-untyped-call]
        yield False
        return
    if big_schema:
        with disable_autologging():
            yield False
        return
    previous = {
        name: get_autologging_config(FLAVOR_NAME, name, parameter.default)  # type: ignore[no-untyped-call]
        for name, parameter in inspect.signature(mlflow.sklearn.autolog).parameters.items()
    }
    mlflow.sklearn.autolog(**dict(previous, log_models=False))
    try:
        yield True
    finally:
        mlflow.sklearn.autolog(**previous)
