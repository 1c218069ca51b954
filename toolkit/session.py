"""What `mlflow_init` decided for this process, read back by the decorators and `get_model_s3_path`.

One small module owns this state so the others need not import each other. It holds no secret: the
credentials live only in MLflow's own environment variables of this process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from toolkit.client_config import ClientConfig


@dataclass(frozen=True)
class TrackingSession:
    """The outcome of `mlflow_init`. `config` is None only when no profile/env/SSM config was found and a
    tracking host with MLflow credentials in the environment was enough to proceed."""

    tracking_uri: str
    experiment_id: str
    experiment_name: str
    config: ClientConfig | None
    credentials_source: str
    big_schema: bool
    autolog: bool
    # The keyword arguments `mlflow_init` called `mlflow.sklearn.autolog` with (empty with autolog off).
    autolog_settings: dict[str, Any] = field(default_factory=dict)


_current: TrackingSession | None = None


def current_session() -> TrackingSession | None:
    return _current


def set_current_session(session: TrackingSession | None) -> None:
    global _current
    _current = session
