"""The local copy of a trained model whose tracking failed, so a fit is never lost to a network blip.

Saved as a regular MLflow model directory (loads with `mlflow.pyfunc.load_model(path)` and can be logged
later with `mlflow.log_artifacts`), with the column schema next to it and `FAILURE.txt` saying what failed.
Saving needs no server. If even that fails (an exotic estimator), a plain pickle is written instead.
"""

from __future__ import annotations

import os
import pickle
import re
import time
import warnings
from pathlib import Path
from typing import Any

from toolkit.schema import SCHEMA_FILE_NAME, ColumnSchema

FALLBACK_DIR_ENV = "MLFLOW_PLATFORM_FALLBACK_DIR"
DEFAULT_FALLBACK_DIR = "mlflow-fallback"


class TrackingFailedWarning(UserWarning):
    """Tracking failed after the fit; the model was kept locally (the message gives the path and cause)."""


def fallback_root(configured: str | os.PathLike[str] | None) -> Path:
    """The decorator's `fallback_dir`, else `MLFLOW_PLATFORM_FALLBACK_DIR`, else `./mlflow-fallback`."""
    return Path(configured or os.environ.get(FALLBACK_DIR_ENV) or DEFAULT_FALLBACK_DIR)


def save_fallback(
    model: Any,
    *,
    root: Path,
    label: str,
    run_id: str | None,
    schema: ColumnSchema | None,
    cause: str,
    save_kwargs: dict[str, Any],
) -> Path:
    """Save `model` under `root/<label>-<UTC time>-<run id>/` and return the model's path."""
    safe_label = re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-") or "model"
    folder = root / f"{safe_label}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{run_id or 'no-run'}"
    folder.mkdir(parents=True, exist_ok=True)
    extra_files: list[str] = []
    if schema is not None:
        extra_files.append(str(schema.write(folder / SCHEMA_FILE_NAME)))
    (folder / "FAILURE.txt").write_text(cause + "\n", encoding="utf-8")
    model_path = folder / "model"
    try:
        import mlflow

        mlflow.sklearn.save_model(model, str(model_path), extra_files=extra_files or None, **save_kwargs)
    except Exception as exc:
        model_path = folder / "model.pkl"
        with model_path.open("wb") as handle:
            pickle.dump(model, handle)
        (folder / "FAILURE.txt").write_text(
            f"{cause}\nsaving as an MLflow model failed too ({exc}); pickled instead\n", encoding="utf-8"
        )
    return model_path


def warn_tracking_failed(*, doing: str, exc: BaseException, model_path: Path | None, run_id: str | None) -> None:
    where = f"saved locally at {model_path.resolve()}" if model_path else "NOT saved locally (saving failed too)"
    run = f" (run {run_id})" if run_id else ""
    warnings.warn(
        f"MLflow tracking failed while {doing}{run}: {type(exc).__name__}: {exc}. The trained model is "
        f"returned as usual and {where}.",
        TrackingFailedWarning,
        stacklevel=5,  # the caller of the decorated function
    )
