"""Find the model in what a training function returned, and refuse anything that is not a fitted one.

Checked before anything is logged, so a wrong return value costs one clear error instead of a run holding a
useless artifact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from toolkit.errors import ModelNotFittedError

# What a tracked function trains: chooses the training and evaluation metrics.
ModelType = Literal["regressor", "classifier"]


@dataclass(frozen=True)
class DetectedModel:
    """`model` is what gets logged: the estimator itself, or a search's `best_estimator_`."""

    model: Any
    search: Any | None
    kind: str  # "estimator", "pipeline" or "search"

    @property
    def class_name(self) -> str:
        return type(self.model).__name__


def _describe(value: Any) -> str:
    kind = type(value)
    text = repr(value)
    return f"{kind.__module__}.{kind.__qualname__}" + (f" ({text[:80]}...)" if len(text) > 80 else f" ({text})")


def _is_estimator(value: Any) -> bool:
    from sklearn.base import BaseEstimator

    return isinstance(value, BaseEstimator) or (
        callable(getattr(value, "fit", None)) and callable(getattr(value, "predict", None))
    )


def detect_model(value: Any, *, function_name: str = "the training function") -> DetectedModel:
    """The fitted model in `value`: an estimator, a Pipeline, a fitted search, or the one such item of a tuple."""
    from sklearn.exceptions import NotFittedError
    from sklearn.model_selection._search import BaseSearchCV
    from sklearn.pipeline import Pipeline
    from sklearn.utils.validation import check_is_fitted

    candidate = value
    if isinstance(value, (tuple, list)) and not _is_estimator(value):
        found = [item for item in value if _is_estimator(item)]
        if len(found) != 1:
            raise TypeError(
                f"{function_name} returned a {type(value).__name__} holding {len(found)} estimators; expected "
                "a fitted scikit-learn estimator, GridSearchCV/RandomizedSearchCV or Pipeline (or exactly one of them)"
            )
        candidate = found[0]
    if not _is_estimator(candidate):
        raise TypeError(
            f"{function_name} returned {_describe(candidate)}; expected a fitted scikit-learn estimator, "
            "GridSearchCV/RandomizedSearchCV or Pipeline"
        )
    name = type(candidate).__name__
    if isinstance(candidate, BaseSearchCV):
        if not hasattr(candidate, "cv_results_"):
            raise ModelNotFittedError(
                f"{function_name} returned an unfitted {name}: call .fit(X, y) before returning it"
            )
        if not hasattr(candidate, "best_estimator_"):
            raise ModelNotFittedError(
                f"{function_name} returned a {name} fitted with refit=False, so it has no best_estimator_ "
                "to log; use refit=True (the default) or return the refitted estimator"
            )
        return DetectedModel(model=candidate.best_estimator_, search=candidate, kind="search")
    try:
        check_is_fitted(candidate)
    except NotFittedError:
        raise ModelNotFittedError(
            f"{function_name} returned an unfitted {name}: call .fit(X_train, y_train) before returning it"
        ) from None
    except TypeError as exc:  # not a scikit-learn estimator after all (check_is_fitted says so)
        raise TypeError(f"{function_name} returned {_describe(candidate)}: {exc}") from None
    return DetectedModel(
        model=candidate, search=None, kind="pipeline" if isinstance(candidate, Pipeline) else "estimator"
    )
