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
    from toolkit.platform_config import PlatformConfig
    from toolkit.resolve import resolve_client_config

_EXPORTS = {
    "ClientConfig": "toolkit.client_config",
    "ConfigError": "toolkit.errors",
    "PlatformConfig": "toolkit.platform_config",
    "resolve_client_config": "toolkit.resolve",
}

__all__ = ["ClientConfig", "ConfigError", "PlatformConfig", "resolve_client_config"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'toolkit' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
