"""How the toolkit logs a tracked model: serialization format, signature, pinned requirements, `log_model`.

Serialization format (the decorator's `serialization_format=` overrides both defaults):
- skops (MLflow's default, and ours at ordinary widths) stores no code, so loading a tampered file cannot
  run arbitrary code. scikit-learn's own types that skops does not trust by default (the tree node storage
  of forests and boosting) are trusted explicitly, for models this process trained.
- cloudpickle is the big-schema default. skops writes `feature_names_in_` element by element, so its dump
  and MLflow's verifying load grow with the width until they cost more than the fit; a pickle writes that
  array in one piece. Loading a pickle runs code from the artifact: load models only from the platform's
  bucket, which only the server's role writes (proxied mode). MLflow gates every format behind
  MLFLOW_ALLOW_PICKLE_DESERIALIZATION, skops included, because skops' allow-list is itself read from the
  model's MLmodel file.

Signature: at ordinary widths MLflow's inferred signature and an input example. In big-schema mode an
outputs-only signature, because MLflow's signature holds one entry per column; the compact column schema
is stored next to the model and on the run instead, and `check_schema` enforces it.

Requirements are pinned explicitly, so MLflow need not infer them: inference re-imports and probes the
model, which is a large part of `log_model` for a wide one.

MLflow is imported inside the functions, so importing this module stays light.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit.arrays import predict_array
from toolkit.estimators import ModelType
from toolkit.schema import SCHEMA_FILE_NAME, ColumnSchema, model_schema_path

if TYPE_CHECKING:
    from mlflow.models.model import ModelInfo
    from mlflow.models.signature import ModelSignature
    from mlflow.types import DataType

# Rows of the training data kept as the input example (ordinary widths only).
_INPUT_EXAMPLE_ROWS = 5
# Packages a scikit-learn model needs to load, whatever its format; the format's own package is added.
_PINNED_PACKAGES = ("mlflow", "scikit-learn", "numpy", "scipy", "pandas")


def serialization_format_for(*, requested: str | None, big_schema: bool) -> str:
    """The format asked for on the decorator, else cloudpickle in big-schema mode and skops otherwise."""
    from mlflow.sklearn import SERIALIZATION_FORMAT_CLOUDPICKLE, SERIALIZATION_FORMAT_SKOPS

    if requested:
        return requested
    return SERIALIZATION_FORMAT_CLOUDPICKLE if big_schema else SERIALIZATION_FORMAT_SKOPS


def default_pip_requirements(serialization_format: str) -> list[str]:
    """Pinned requirements of a scikit-learn model in `serialization_format`, given explicitly so MLflow
    need not infer them. Packages that are not installed are left out."""
    from importlib.metadata import PackageNotFoundError, version

    from mlflow.sklearn import SERIALIZATION_FORMAT_CLOUDPICKLE, SERIALIZATION_FORMAT_SKOPS

    format_packages = {SERIALIZATION_FORMAT_SKOPS: ["skops"], SERIALIZATION_FORMAT_CLOUDPICKLE: ["cloudpickle"]}
    packages = [*_PINNED_PACKAGES, *format_packages.get(serialization_format, [])]
    pins = []
    for package in packages:
        try:
            pins.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            continue
    return pins


def sklearn_types_skops_refuses(model: Any) -> list[str] | None:
    """scikit-learn's own types in `model` that skops does not trust by default (e.g. the tree storage
    `sklearn.tree._tree.Tree`). skops' warning is about files from others; this model was trained in this
    process. Types from other packages stay untrusted, so saving such a model fails loudly (and the
    fallback keeps it) instead of silently trusting foreign code. Costs one in-memory skops dump."""
    import skops.io

    untrusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    return [name for name in untrusted if name.startswith("sklearn.")] or None


def _output_data_type(dtype: Any) -> DataType:
    """MLflow's column type for a 1-D prediction of NumPy `dtype`; anything not numeric is a string."""
    from mlflow.types import DataType

    kind, size = dtype.kind, dtype.itemsize
    if kind == "f":
        return DataType.float if size <= 4 else DataType.double
    if kind in "iu":
        return DataType.integer if size <= 4 else DataType.long
    if kind == "b":
        return DataType.boolean
    return DataType.string


def placeholder_signature(model: Any, X_train: Any) -> ModelSignature:
    """An outputs-only signature: MLflow then enforces no input schema (the column schema artifact and
    `check_schema` do that job), and the MLmodel file stays small at any width. The output type comes
    from predicting one training row."""
    import numpy as np
    from mlflow.models.signature import ModelSignature
    from mlflow.types import ColSpec, Schema, TensorSpec

    prediction = np.asarray(predict_array(model, X_train[:1]))
    if prediction.ndim > 1 and prediction.shape[1] > 1:
        outputs = Schema([TensorSpec(prediction.dtype, (-1, int(prediction.shape[1])))])
    else:
        outputs = Schema([ColSpec(_output_data_type(prediction.dtype))])
    return ModelSignature(inputs=None, outputs=outputs)


def signature_and_input_example(model: Any, X_train: Any, *, big_schema: bool) -> tuple[Any, Any]:
    """`(signature, input_example)` for `log_model`: both None without training data, the placeholder
    signature and no example in big-schema mode, else MLflow's inferred signature of the first rows."""
    if X_train is None:
        return None, None
    if big_schema:
        return placeholder_signature(model, X_train), None
    from mlflow.models import infer_signature

    input_example = X_train.iloc[:_INPUT_EXAMPLE_ROWS] if hasattr(X_train, "iloc") else X_train[:_INPUT_EXAMPLE_ROWS]
    return infer_signature(input_example, model.predict(input_example)), input_example


def sklearn_save_kwargs(
    model: Any,
    *,
    signature: Any,
    big_schema: bool,
    serialization_format: str | None,
    pip_requirements: list[str] | None,
) -> dict[str, Any]:
    """The format-dependent arguments shared by `mlflow.sklearn.log_model` and the fallback's `save_model`.

    `serialization_format` and `pip_requirements` are the decorator's (None: the defaults above)."""
    from mlflow.sklearn import SERIALIZATION_FORMAT_SKOPS

    chosen_format = serialization_format_for(requested=serialization_format, big_schema=big_schema)
    kwargs: dict[str, Any] = {
        "serialization_format": chosen_format,
        "pip_requirements": pip_requirements or default_pip_requirements(chosen_format),
        "signature": signature,
    }
    if chosen_format == SERIALIZATION_FORMAT_SKOPS:
        kwargs["skops_trusted_types"] = sklearn_types_skops_refuses(model)
    return kwargs


def log_sklearn_model(
    model: Any,
    *,
    X_train: Any,
    schema: ColumnSchema | None,
    big_schema: bool,
    model_type: ModelType,
    model_name: str,
    registered_model_name: str | None,
    serialization_format: str | None,
    pip_requirements: list[str] | None,
) -> ModelInfo:
    """Log `model` into the active run, with the column schema (if any) on the run and inside the model.

    The model's metadata records the model type and, with a schema, where it sits in the model directory
    and how many columns it holds.
    """
    import mlflow

    signature, input_example = signature_and_input_example(model, X_train, big_schema=big_schema)
    with tempfile.TemporaryDirectory(prefix="toolkit-log-") as tmp:
        extra_files = None
        metadata: dict[str, Any] = {"toolkit_model_type": model_type}
        if schema is not None:
            schema_path = schema.write(Path(tmp) / SCHEMA_FILE_NAME)
            mlflow.log_artifact(str(schema_path))
            extra_files = [str(schema_path)]
            metadata.update(toolkit_column_schema=model_schema_path(), toolkit_n_columns=len(schema))
        info: ModelInfo = mlflow.sklearn.log_model(
            model,
            name=model_name,
            input_example=input_example,
            extra_files=extra_files,
            metadata=metadata,
            registered_model_name=registered_model_name,
            **sklearn_save_kwargs(
                model,
                signature=signature,
                big_schema=big_schema,
                serialization_format=serialization_format,
                pip_requirements=pip_requirements,
            ),
        )
    return info
