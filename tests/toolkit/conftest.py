"""Toolkit fixtures: a signed-in MLflow per test against the session's local platform, and small data.

`mlflow_init` changes process-wide state on purpose (MLflow's credential variables, tracking URI,
autologging); `tracking` puts all of it back after each test so the server tests sharing the session
see the environment the `local_platform` fixture made.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.conftest import LocalPlatformHandle
    from toolkit.session import TrackingSession

# Variables `mlflow_init` or MLflow may set in this process; restored after each test.
_PROCESS_VARIABLES = (
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_AUTH",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_S3_ENDPOINT_URL",
    "MLFLOW_EXPERIMENT_NAME",
    "MLFLOW_EXPERIMENT_ID",
    "MLFLOW_RUN_ID",
    "MLFLOW_PLATFORM_FALLBACK_DIR",
)


def _end_all_runs() -> None:
    import mlflow

    while mlflow.active_run() is not None:
        try:
            mlflow.end_run()
        except Exception:
            # The server may be down (fallback test); the run stack is popped before the request.
            if mlflow.active_run() is not None:
                raise


@pytest.fixture
def tracking(
    local_platform: LocalPlatformHandle, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., TrackingSession]]:
    """`init(**kwargs)` calls `mlflow_init` with an experiment named after the test; cleanup afterwards."""
    from toolkit import mlflow_init
    from toolkit.session import set_current_session

    saved = {name: os.environ.get(name) for name in _PROCESS_VARIABLES}
    for name in _PROCESS_VARIABLES:
        os.environ.pop(name, None)
    os.environ["MLFLOW_PLATFORM_FALLBACK_DIR"] = str(tmp_path / "fallback")
    experiment = "toolkit-" + re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name)

    def init(**kwargs: Any) -> TrackingSession:
        kwargs.setdefault("experiment_name", experiment)
        return mlflow_init(**kwargs)

    try:
        yield init
    finally:
        import mlflow

        _end_all_runs()
        mlflow.sklearn.autolog(disable=True)
        set_current_session(None)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
