"""What scientists import in notebooks: `from toolkit import mlflow_init, ...`.

Names are resolved lazily (PEP 562) so `import toolkit` stays fast: MLflow alone takes seconds to
import and is loaded only when a function that needs it is first used.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from toolkit.client_config import ClientConfig
    from toolkit.errors import ConfigError, ModelNotFittedError, ModelNotFoundError, SchemaMismatchError, ToolkitError
    from toolkit.fallback import TrackingFailedWarning
    from toolkit.init import TrackingServerError, mlflow_init
    from toolkit.models import get_model_s3_path
    from toolkit.platform_config import PlatformConfig
    from toolkit.resolve import resolve_client_config
    from toolkit.schema import ColumnSchema, check_schema, load_model_schema
    from toolkit.scoring import ScoringError, ScoringReport, score
    from toolkit.session import TrackingSession
    from toolkit.tracking import TrackedRun, last_tracked_run, mlflow_track_classifier, mlflow_track_regressor
    from toolkit.wide_files import WideFileError, write_wide

# Public name -> the module that defines it. Each module imports MLflow only inside the functions that
# need it, so looking a name up here never loads MLflow by itself.
_EXPORTS = {
    # Configuration.
    "ClientConfig": "toolkit.client_config",
    "PlatformConfig": "toolkit.platform_config",
    "resolve_client_config": "toolkit.resolve",
    # Errors: every exception below derives from ToolkitError.
    "ToolkitError": "toolkit.errors",
    "ConfigError": "toolkit.errors",
    "ModelNotFittedError": "toolkit.errors",
    "ModelNotFoundError": "toolkit.errors",
    "SchemaMismatchError": "toolkit.errors",
    "TrackingServerError": "toolkit.init",
    # Tracking.
    "mlflow_init": "toolkit.init",
    "TrackingSession": "toolkit.session",
    "mlflow_track_regressor": "toolkit.tracking",
    "mlflow_track_classifier": "toolkit.tracking",
    "last_tracked_run": "toolkit.tracking",
    "TrackedRun": "toolkit.tracking",
    "TrackingFailedWarning": "toolkit.fallback",
    "get_model_s3_path": "toolkit.models",
    # Big-schema helpers.
    "ColumnSchema": "toolkit.schema",
    "check_schema": "toolkit.schema",
    "load_model_schema": "toolkit.schema",
    # Scoring and wide files.
    "score": "toolkit.scoring",
    "ScoringReport": "toolkit.scoring",
    "ScoringError": "toolkit.scoring",
    "write_wide": "toolkit.wide_files",
    "WideFileError": "toolkit.wide_files",
}

__all__ = [
    "ClientConfig",
    "ColumnSchema",
    "ConfigError",
    "ModelNotFittedError",
    "ModelNotFoundError",
    "PlatformConfig",
    "SchemaMismatchError",
    "ScoringError",
    "ScoringReport",
    "ToolkitError",
    "TrackedRun",
    "TrackingFailedWarning",
    "TrackingServerError",
    "TrackingSession",
    "WideFileError",
    "check_schema",
    "get_model_s3_path",
    "last_tracked_run",
    "load_model_schema",
    "mlflow_init",
    "mlflow_track_classifier",
    "mlflow_track_regressor",
    "resolve_client_config",
    "score",
    "write_wide",
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
