"""NumPy views of training and test data, for the predictions the toolkit makes itself.

scikit-learn validates a DataFrame column by column in Python, which at hundreds of thousands of columns
costs more than the prediction; an array is validated in one step. Every caller has already matched the
frame's columns to the training columns (by `check_schema`, or because it is the training frame), so the
positions of the array's columns are the training names.

NumPy is imported inside the functions, as everywhere in the toolkit, so `import toolkit` stays light.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# scikit-learn's warning when an estimator fitted on a DataFrame is given an array.
_NO_FEATURE_NAMES_WARNING = "X does not have valid feature names"


def n_columns(data: Any) -> int:
    """The column count of a 2-D frame or array; 0 for anything else (None, 1-D data)."""
    shape = getattr(data, "shape", None)
    return int(shape[1]) if shape is not None and len(shape) == 2 else 0


def as_array(X: Any) -> Any:
    """A NumPy view of a frame (no copy where pandas can avoid one), or `X` as an array."""
    import numpy as np

    return X.to_numpy() if hasattr(X, "to_numpy") else np.asarray(X)


@contextmanager
def feature_names_warning_silenced() -> Iterator[None]:
    """Silence scikit-learn's warning that an array has no column names: the caller checked the order."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_NO_FEATURE_NAMES_WARNING, category=UserWarning)
        yield


def predict_array(model: Any, X: Any, *, method: str = "predict") -> Any:
    """`model.<method>` on `as_array(X)`, without the missing-feature-names warning."""
    with feature_names_warning_silenced():
        return getattr(model, method)(as_array(X))
