"""The model-logging policy without a server: which format a model is saved in, what requirements are
pinned, and which parameters MLflow is given."""

from __future__ import annotations

from importlib.metadata import version

import pytest


@pytest.mark.parametrize(
    ("requested", "big_schema", "expected"),
    [(None, False, "skops"), (None, True, "cloudpickle"), ("pickle", True, "pickle"), ("skops", True, "skops")],
)
def test_serialization_format_follows_the_mode_unless_asked(
    requested: str | None, big_schema: bool, expected: str
) -> None:
    from toolkit.model_logging import serialization_format_for

    assert serialization_format_for(requested=requested, big_schema=big_schema) == expected


def test_pinned_requirements_name_the_installed_versions_and_the_formats_package() -> None:
    from toolkit.model_logging import default_pip_requirements

    pickled = default_pip_requirements("cloudpickle")
    assert f"scikit-learn=={version('scikit-learn')}" in pickled
    assert f"mlflow=={version('mlflow')}" in pickled
    assert f"cloudpickle=={version('cloudpickle')}" in pickled
    assert not any(pin.startswith("skops==") for pin in pickled)
    assert f"skops=={version('skops')}" in default_pip_requirements("skops")


def test_forest_tree_storage_is_trusted_for_skops_and_nothing_outside_sklearn() -> None:
    from sklearn.ensemble import RandomForestRegressor

    from tests.toolkit.data import regression
    from toolkit.model_logging import sklearn_types_skops_refuses

    X_train, y_train, _, _ = regression()
    trusted = sklearn_types_skops_refuses(RandomForestRegressor(n_estimators=2).fit(X_train, y_train))
    assert trusted is not None
    assert "sklearn.tree._tree.Tree" in trusted
    assert all(name.startswith("sklearn.") for name in trusted)


def test_parameters_are_scalars_cut_to_mlflows_length_limit() -> None:
    from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

    from toolkit.run_logging import simple_params

    params = simple_params(
        {"long": "x" * (MAX_PARAM_VAL_LENGTH + 10), "alpha": 0.5, "fit_intercept": True, "seed": None, "est": object()}
    )
    assert params == {"long": "x" * MAX_PARAM_VAL_LENGTH, "alpha": "0.5", "fit_intercept": "True", "seed": "None"}
