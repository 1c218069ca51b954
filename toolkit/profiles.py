"""Profile files: a `ClientConfig` per stack in the user's config directory, and which one is active.

`mlflow-platform config pull` and `local up` write them; the toolkit reads the active one so that a
notebook's `mlflow_init()` needs no URL. `MLFLOW_PLATFORM_CONFIG_DIR` moves the directory (tests, CI).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from toolkit.client_config import ClientConfig
from toolkit.errors import ConfigError

CONFIG_DIR_ENV = "MLFLOW_PLATFORM_CONFIG_DIR"
PROFILE_ENV = "MLFLOW_PLATFORM_PROFILE"
_PROFILE_NAME = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


def config_dir() -> Path:
    override = os.environ.get(CONFIG_DIR_ENV)
    if override:
        return Path(override)
    from platformdirs import user_config_path

    return user_config_path("mlflow-platform")


def _profile_path(name: str) -> Path:
    if not _PROFILE_NAME.match(name) or name.startswith("."):
        raise ConfigError("profile name", [f"name: got {name!r}, expected letters, digits, '.', '_' or '-'"])
    return config_dir() / "profiles" / f"{name}.json"


def save_profile(config: ClientConfig, name: str | None = None, *, activate: bool = True) -> Path:
    """Write the profile (named after the stack unless `name` is given), atomically; optionally activate it."""
    path = _profile_path(name or config.stack)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(config.model_dump_json(indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    if activate:
        use_profile(path.stem)
    return path


def list_profiles() -> list[str]:
    folder = config_dir() / "profiles"
    return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []


def profile_exists(name: str) -> bool:
    return _profile_path(name).is_file()


def load_profile(name: str) -> ClientConfig:
    path = _profile_path(name)
    if not path.is_file():
        known = ", ".join(list_profiles()) or "none yet"
        raise ConfigError(
            "profile",
            [f"{name}: no such profile (known: {known}); run `mlflow-platform config pull --stack {name}`"],
        )
    return ClientConfig.parse(path.read_text(encoding="utf-8"), source=f"profile {path}")


def use_profile(name: str) -> None:
    """Make `name` the active profile (it must exist)."""
    if not _profile_path(name).is_file():
        load_profile(name)  # raises the error that lists the known profiles
    (config_dir() / "active").write_text(name + "\n", encoding="utf-8")


def active_profile_name() -> str | None:
    """`MLFLOW_PLATFORM_PROFILE` if set, else the one `config use` / `config pull` last activated."""
    from_env = os.environ.get(PROFILE_ENV)
    if from_env:
        return from_env
    marker = config_dir() / "active"
    if marker.is_file():
        return marker.read_text(encoding="utf-8").strip() or None
    return None
