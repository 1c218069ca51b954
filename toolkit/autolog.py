"""sklearn autologging while a decorated function runs, so a run holds exactly one model.

- Ordinary widths: autolog keeps logging params and training metrics, but not its own model (the decorator
  logs the one model the run holds).
- Big schema: autolog is paused entirely. Its training-metrics step wraps the training frame in an MLflow
  PandasDataset whatever `log_datasets` says, and that dataset's digest hashes every column; its metric
  calls also predict on the DataFrame, which scikit-learn validates column by column. Both grow with the
  width until they dwarf the fit. The decorator logs params and training metrics itself instead, on a
  NumPy view (toolkit/run_logging.py).

The settings in force before the call are restored afterwards; reconfiguring autolog after its first call
is cheap.
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
    from mlflow.utils.autologging_utils import autologging_is_disabled, get_autologging_config

    if autologging_is_disabled(FLAVOR_NAME):  # type: ignore[no-untyped-call]
        yield False
        return
    previous = {
        name: get_autologging_config(FLAVOR_NAME, name, parameter.default)  # type: ignore[no-untyped-call]
        for name, parameter in inspect.signature(mlflow.sklearn.autolog).parameters.items()
    }
    mlflow.sklearn.autolog(**dict(previous, disable=True) if big_schema else dict(previous, log_models=False))
    try:
        yield not big_schema
    finally:
        mlflow.sklearn.autolog(**previous)
