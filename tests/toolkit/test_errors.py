"""Every exception the toolkit raises to users derives from `ToolkitError` and keeps the builtin base it
always had, so `except ToolkitError` and older `except ValueError` (etc.) code both catch it."""

from __future__ import annotations

import pytest

# Each public exception and the builtin base it has always had. A new public exception must be added here.
_BUILTIN_BASES: dict[str, type[Exception]] = {
    "ConfigError": ValueError,
    "ModelNotFittedError": ValueError,
    "ModelNotFoundError": LookupError,
    "SchemaMismatchError": ValueError,
    "TrackingServerError": RuntimeError,
    "ScoringError": ValueError,
    "WideFileError": ValueError,
}


def _public_exceptions() -> dict[str, type[BaseException]]:
    import toolkit

    found: dict[str, type[BaseException]] = {}
    for name in toolkit.__all__:
        value = getattr(toolkit, name)
        if isinstance(value, type) and issubclass(value, BaseException) and not issubclass(value, Warning):
            found[name] = value
    return found


def test_every_public_exception_is_a_toolkit_error_and_keeps_its_builtin_base() -> None:
    from toolkit import ToolkitError

    exceptions = _public_exceptions()
    assert set(exceptions) == {"ToolkitError", *_BUILTIN_BASES}
    for name, builtin_base in _BUILTIN_BASES.items():
        assert issubclass(exceptions[name], ToolkitError), f"{name} is not a ToolkitError"
        assert issubclass(exceptions[name], builtin_base), f"{name} is no longer a {builtin_base.__name__}"


def test_aws_access_error_is_a_toolkit_error_and_a_runtime_error() -> None:
    from toolkit import ToolkitError
    from toolkit.aws import explain_aws_error

    error = explain_aws_error(OSError("connection reset"), doing="reading the stack's parameter")
    assert isinstance(error, ToolkitError)
    assert isinstance(error, RuntimeError)
    assert str(error) == "reading the stack's parameter: connection reset"


def test_a_schema_mismatch_is_caught_both_as_toolkit_error_and_as_value_error() -> None:
    import pandas as pd

    from toolkit import ColumnSchema, ToolkitError, check_schema

    schema = ColumnSchema(("a", "b"), ("float64", "float64"))
    frame = pd.DataFrame({"a": [1.0]})
    with pytest.raises(ToolkitError, match="1 of 2 training columns missing: 'b'"):
        check_schema(frame, schema)
    with pytest.raises(ValueError, match="1 of 2 training columns missing: 'b'"):
        check_schema(frame, schema)


def test_an_unfitted_model_is_caught_both_as_toolkit_error_and_as_value_error() -> None:
    from sklearn.linear_model import Ridge

    from toolkit import ModelNotFittedError, ToolkitError
    from toolkit.estimators import detect_model

    with pytest.raises(ToolkitError, match="returned an unfitted Ridge"):
        detect_model(Ridge(), function_name="train")
    with pytest.raises(ValueError, match="returned an unfitted Ridge") as caught:
        detect_model(Ridge(), function_name="train")
    assert caught.type is ModelNotFittedError


def test_tracking_failed_warning_stays_a_warning() -> None:
    from toolkit import ToolkitError, TrackingFailedWarning

    assert issubclass(TrackingFailedWarning, UserWarning)
    assert not issubclass(TrackingFailedWarning, ToolkitError)
