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
is stored inside the model instead (once: the run's tag points at it), and `check_schema` enforces it.

Requirements are pinned explicitly, so MLflow need not infer them: inference re-imports and probes the
model, which is a large part of `log_model` for a wide one.

The model is logged through MLflow's LoggedModel protocol step by step rather than `log_model`, because
each round trip costs a notebook far from the server real time and `log_model` makes several it need
not: it reads the run back for its parameters and every metric's history (to link them to the model),
looks the new model up again to find where its files go, and uploads the files one at a time. Here:
create the model with the parameters in hand (`create_logged_model`), save its files locally with
`mlflow.sklearn.save_model` (`save_model_files`), upload them concurrently (`file_uploads`), finalize it
(`finalize_logged_model`), and register it if asked. Metrics are linked to the model by the run's one
`log_batch` (toolkit/run_logging.py), the run's output link is `log_outputs`, as in `log_model`.

MLflow is imported inside the functions, so importing this module stays light.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit.arrays import predict_array
from toolkit.estimators import ModelType
from toolkit.schema import SCHEMA_FILE_NAME, ColumnSchema, model_schema_path

if TYPE_CHECKING:
    from mlflow.entities import LoggedModel
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


def create_logged_model(*, name: str, run_id: str, experiment_id: str, params: dict[str, str]) -> LoggedModel:
    """A LoggedModel in the PENDING state, created from what this process already knows.

    MLflow's `log_model` first reads the run back for its parameters; the decorator has them in hand,
    so one request creates the model with them (and MLflow's usual source tags).
    """
    import mlflow

    return mlflow.initialize_logged_model(name=name, source_run_id=run_id, params=params, experiment_id=experiment_id)


def save_model_files(
    model: Any,
    directory: Path,
    *,
    logged: LoggedModel,
    run_id: str,
    X_train: Any,
    schema: ColumnSchema | None,
    big_schema: bool,
    model_type: ModelType,
    serialization_format: str | None,
    pip_requirements: list[str] | None,
) -> Path:
    """Save `model` as the MLflow model directory `directory/model`, ready to upload, and return it.

    `mlflow.sklearn.save_model` writes the files; the `MLmodel` file gets the same ids and location
    `log_model` would give it. With a schema, it is the model's only copy (`extra_files/`), and the
    model's metadata records where it sits and how many columns it holds.
    """
    import mlflow
    from mlflow.models import Model

    signature, input_example = signature_and_input_example(model, X_train, big_schema=big_schema)
    extra_files = None
    metadata: dict[str, Any] = {"toolkit_model_type": model_type}
    if schema is not None:
        extra_files = [str(schema.write(directory / SCHEMA_FILE_NAME))]
        metadata.update(toolkit_column_schema=model_schema_path(), toolkit_n_columns=len(schema))
    mlflow_model = Model(
        artifact_path=logged.artifact_location,
        model_uuid=logged.model_id,
        run_id=run_id,
        model_id=logged.model_id,
    )
    path = directory / "model"
    mlflow.sklearn.save_model(
        model,
        str(path),
        mlflow_model=mlflow_model,
        input_example=input_example,
        extra_files=extra_files,
        metadata=metadata,
        **sklearn_save_kwargs(
            model,
            signature=signature,
            big_schema=big_schema,
            serialization_format=serialization_format,
            pip_requirements=pip_requirements,
        ),
    )
    return path


def schema_uri(logged: LoggedModel) -> str:
    """The artifact URI of the column schema inside `logged`'s files (the run's `toolkit.column_schema`)."""
    return f"{logged.artifact_location.rstrip('/')}/{model_schema_path()}"


def file_uploads(local_dir: Path, artifact_uri: str) -> list[Callable[[], None]]:
    """One upload per file under `local_dir`, to the same relative path under `artifact_uri`.

    Each is one request to the server (proxied artifacts) and none depends on another, so the caller
    sends them concurrently; MLflow's `log_artifacts` sends them one after the other. The repository is
    built from the URI the caller already has, where MLflow's client would first look the run or model
    up again to find it.
    """
    import mlflow
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    repository = get_artifact_repository(artifact_uri, tracking_uri=mlflow.get_tracking_uri())
    uploads: list[Callable[[], None]] = []
    for path in sorted(p for p in local_dir.rglob("*") if p.is_file()):
        folder = path.parent.relative_to(local_dir).as_posix()
        uploads.append(functools.partial(repository.log_artifact, str(path), None if folder == "." else folder))
    return uploads


def finalize_logged_model(model_id: str, *, ready: bool) -> None:
    """READY once every file is uploaded; FAILED if logging broke off (as MLflow's `log_model` does)."""
    import mlflow
    from mlflow.entities import LoggedModelStatus

    mlflow.MlflowClient().finalize_logged_model(
        model_id, LoggedModelStatus.READY if ready else LoggedModelStatus.FAILED
    )


def register_logged_model(model_id: str, registered_model_name: str) -> None:
    """A new version of `registered_model_name` from the logged model, as `log_model` registers one."""
    import mlflow

    mlflow.register_model(f"models:/{model_id}", registered_model_name)
