"""The exceptions the toolkit raises to users, under one base class `ToolkitError`.

`except ToolkitError` catches everything the toolkit itself refuses or fails at. Each class also keeps the
builtin base it always had (`ValueError`, `LookupError`, `RuntimeError`), so code written against those
keeps working. Messages are one line per problem, naming the key, the value and the fix.

Two classes live next to the code that raises them and derive from `ToolkitError` too: `TrackingServerError`
(toolkit/init.py) and `AwsAccessError` (toolkit/aws.py). Warnings (`TrackingFailedWarning`) stay warnings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError

__all__ = [
    "ConfigError",
    "ModelNotFittedError",
    "ModelNotFoundError",
    "SchemaMismatchError",
    "ToolkitError",
    "config_error_from_validation",
]

_EXPECTATIONS = {
    "missing": "required, but not set",
    "extra_forbidden": "unknown key (check its spelling against the documented keys)",
}


class ToolkitError(Exception):
    """Base of every exception the toolkit raises on purpose."""


class ConfigError(ToolkitError, ValueError):
    """A configuration value is missing or wrong. `problems` holds one `key: explanation` per entry."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"invalid {source}:\n{lines}")


class ModelNotFittedError(ToolkitError, ValueError):
    """A tracked function returned an estimator (or search) that was never fitted."""


class ModelNotFoundError(ToolkitError, LookupError):
    """No such run or model, a run without a model, or a run with several; the message says which."""


class SchemaMismatchError(ToolkitError, ValueError):
    """A scoring frame does not match the training columns; the message lists what differs."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"the frame does not match the model's training columns:\n{lines}")


def config_error_from_validation(exc: ValidationError, *, source: str) -> ConfigError:
    """Turn pydantic's error list into lines such as `server.cpu: got 300, expected one of 256, 512, ...`."""
    problems: list[str] = []
    for error in exc.errors(include_url=False):
        key = ".".join(str(part) for part in error["loc"])
        kind = error["type"]
        message = _EXPECTATIONS.get(kind, _plain(error["msg"]))
        if kind == "missing":
            problems.append(f"{key}: {message}")
        elif kind == "value_error" and isinstance(error["input"], dict):
            # A cross-field check of a whole section: its message lines already start with the field.
            problems.extend(f"{key}.{line}" if key else line for line in message.splitlines())
        else:
            problems.append(f"{key}: got {error['input']!r}, {message}")
    return ConfigError(source, problems)


def _plain(message: str) -> str:
    """pydantic says 'Input should be ...'; our messages say what was expected."""
    message = message.removeprefix("Value error, ")
    for prefix, replacement in (("Input should be ", "expected "), ("Input is not a valid ", "expected a valid ")):
        if message.startswith(prefix):
            return replacement + message[len(prefix) :]
    return message
