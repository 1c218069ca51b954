"""Read the running stack's Pulumi config into a validated `PlatformConfig`."""

from __future__ import annotations

import pulumi
from pulumi.runtime.config import CONFIG, get_config_env

from toolkit.platform_config import PlatformConfig


def load_platform_config() -> PlatformConfig:
    """Every `<project>:<key>` of the stack, validated before any resource is declared.

    Pulumi's public `Config` reads one key at a time and cannot list them; the runtime's map can, and
    listing is what lets a misspelt key fail instead of being silently ignored.
    """
    values = {**get_config_env(), **CONFIG.get()}
    return PlatformConfig.from_stack_config(
        values, namespace=pulumi.get_project(), source=f"config of stack {pulumi.get_stack()!r}"
    )
