"""The tracking server goes away after the fit: the model comes back, is saved locally, and loads."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LocalPlatformHandle
from tests.toolkit.data import regression


def test_server_stopped_after_the_fit_keeps_the_model(
    tracking: Callable[..., Any], local_platform: LocalPlatformHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow
    import numpy as np
    from sklearn.linear_model import Ridge

    from toolkit import TrackingFailedWarning, last_tracked_run, load_model_schema, mlflow_track_regressor

    tracking(big_schema=True, autolog=False)
    # MLflow retries a refused connection with exponential backoff (minutes by default).
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    X_train, y_train, X_test, y_test = regression()
    fallback = tmp_path / "kept"

    @mlflow_track_regressor(run_name="doomed", evaluate=True, fallback_dir=fallback)
    def train(X_train: Any, y_train: Any, X_test: Any, y_test: Any) -> Any:
        model = Ridge().fit(X_train, y_train)
        local_platform.platform.stop_server()
        return model

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = train(X_train, y_train, X_test, y_test)
    finally:
        local_platform.platform.start_server()

    assert isinstance(model, Ridge)
    ours = [w for w in caught if issubclass(w.category, TrackingFailedWarning)]
    assert len(ours) == 1, [str(w.message) for w in caught]
    tracked = last_tracked_run()
    assert tracked is not None
    assert tracked.fallback_path is not None
    assert tracked.error is not None
    assert tracked.error.startswith("logging the model")
    message = str(ours[0].message)
    assert str(tracked.fallback_path.resolve()) in message
    assert "logging the model" in message

    assert tracked.fallback_path.is_dir()
    assert tracked.fallback_path.is_relative_to(fallback)
    assert (tracked.fallback_path.parent / "FAILURE.txt").read_text(encoding="utf-8").startswith("logging the model")
    loaded = mlflow.pyfunc.load_model(str(tracked.fallback_path))
    np.testing.assert_allclose(loaded.predict(X_test), model.predict(X_test), rtol=1e-6)
    assert len(load_model_schema(path=tracked.fallback_path)) == X_train.shape[1]
