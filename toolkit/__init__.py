"""What scientists import in notebooks: `from toolkit import mlflow_init, ...`.

Names are resolved lazily (PEP 562) so `import toolkit` stays fast: MLflow alone takes seconds to
import and is loaded only when a function that needs it is first used.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from toolkit.client_config import ClientConfig
    from toolkit.errors import ConfigError
    from toolkit.estimators import ModelNotFittedError
    from toolkit.fallback import TrackingFailedWarning
    from toolkit.init import TrackingServerError, mlflow_init
    from toolkit.models import ModelNotFoundError, get_model_s3_path
    from toolkit.platform_config import PlatformConfig
    from toolkit.resolve import resolve_client_config
    from toolkit.schema import ColumnSchema, SchemaMismatchError, check_schema, load_model_schema
    from toolkit.session import TrackingSession
    from toolkit.tracking import TrackedRun, last_tracked_run, mlflow_track_classifier, mlflow_track_regressor

_EXPORTS = {
    "ClientConfig": "toolkit.client_config",
    "ConfigError": "toolkit.errors",
    "PlatformConfig": "toolkit.platform_config",
    "resolve_client_config": "toolkit.resolve",
    # Tracking (issue 5). Each module imports MLflow only inside the functions that need it.
    "mlflow_init": "toolkit.init",
    "TrackingServerError": "toolkit.init",
    "TrackingSession": "toolkit.session",
    "mlflow_track_regressor": "toolkit.tracking",
    "mlflow_track_classifier": "toolkit.tracking",
    "last_tracked_run": "toolkit.tracking",
    "TrackedRun": "toolkit.tracking",
    "TrackingFailedWarning": "toolkit.fallback",
    "ModelNotFittedError": "toolkit.estimators",
    "get_model_s3_path": "toolkit.models",
    "ModelNotFoundError": "toolkit.models",
    # Big-schema helpers.
    "ColumnSchema": "toolkit.schema",
    "SchemaMismatchError": "toolkit.schema",
    "check_schema": "toolkit.schema",
    "load_model_schema": "toolkit.schema",
}

__all__ = [
    "ClientConfig",
    "ColumnSchema",
    "ConfigError",
    "ModelNotFittedError",
    "ModelNotFoundError",
    "PlatformConfig",
    "SchemaMismatchError",
    "TrackedRun",
    "TrackingFailedWarning",
    "TrackingServerError",
    "TrackingSession",
    "check_schema",
    "get_model_s3_path",
    "last_tracked_run",
    "load_model_schema",
    "mlflow_init",
    "mlflow_track_classifier",
    "mlflow_track_regressor",
    "resolve_client_config",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'toolkit' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
