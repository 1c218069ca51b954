"""Read the running stack's Pulumi config into a validated `PlatformConfig`."""

from __future__ import annotations

import pulumi
from pulumi.runtime.config import CONFIG, get_config_env

from toolkit.errors import ConfigError
from toolkit.platform_config import PlatformConfig


def load_platform_config() -> PlatformConfig:
    """Every `<project>:<key>` of the stack, validated before any resource is declared.

    Pulumi's public `Config` reads one key at a time and cannot list them; the runtime's map can, and
    listing is what lets a misspelt key fail instead of being silently ignored. A bad config ends the
    program with `RunError`: Pulumi then prints the message (each bad key on its line), not a traceback.
    """
    values = {**get_config_env(), **CONFIG.get()}
    try:
        return PlatformConfig.from_stack_config(
            values, namespace=pulumi.get_project(), source=f"config of stack {pulumi.get_stack()!r}"
        )
    except ConfigError as exc:
        raise pulumi.RunError(str(exc)) from None
