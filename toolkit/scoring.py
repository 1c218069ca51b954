"""`score`: from a model URI to a Parquet file of predictions, for inputs of hundreds of thousands of columns.

What the production scoring pipeline does, as one function (and `mlflow-platform score`):

1. Resolve the URI (`models:/<name>@<alias>`, `models:/<name>/<version>`, `models:/m-<id>`, `runs:/<run_id>`)
   through the registry and `get_model_s3_path`, and bring the model's files from S3 into the local model
   cache (nothing is downloaded when a verified copy is there).
2. Read the training columns from the model: the toolkit's column schema, else MLflow's input signature.
3. Open the input and check its columns against them from the file's metadata alone: missing columns
   fail before anything is read or written; extra columns are ignored; dtypes are cast only where no
   value changes.
4. Read, predict and write batch by batch: the training columns in the model's order, an id column
   carried through, predictions (and class probabilities) appended to a Parquet file that is written
   aside and moved into place (or uploaded in one go) only once every row is scored. The file's metadata
   records where the scores come from.

For models the toolkit logged in big-schema mode (no input signature), a batch goes to the model as one
NumPy matrix, built by Arrow in C rather than as a DataFrame of hundreds of thousands of columns; models
with an input signature, or with columns that are not numbers, get a DataFrame, as MLflow expects.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit.arrays import feature_names_warning_silenced
from toolkit.errors import ModelNotFoundError, ToolkitError
from toolkit.model_cache import fetch_model
from toolkit.models import get_model_s3_path
from toolkit.s3_files import is_s3_uri, s3_client, s3_filesystem, split_s3_uri
from toolkit.schema import SCHEMA_FILE_NAME, ColumnSchema, model_schema_path
from toolkit.session import current_session
from toolkit.wide_files import (
    ColumnPlan,
    WideFileError,
    WideInput,
    default_batch_rows,
    numpy_dtype,
    open_input,
    publish,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet

    from toolkit.client_config import ClientConfig

# The key of the output file's metadata that holds the provenance (JSON).
PROVENANCE_KEY = "mlflow_platform.scoring"
PREDICTION_COLUMN = "prediction"
PROBABILITY_PREFIX = "probability_"
OUTPUT_EXTENSIONS = (".parquet", ".pq")
_LOGGED_MODEL_ID = re.compile(r"^m-[0-9a-f]+$")
_MODEL_ID_IN_PATH = re.compile(r"/models/(m-[0-9a-f]+)/artifacts/?$")
_URI_FORMS = "models:/<name>@<alias>, models:/<name>/<version>, models:/m-<id> or runs:/<run_id>"


class ScoringError(ToolkitError, ValueError):
    """Scoring cannot run as asked: a malformed model URI, a model without training columns, bad options."""


@dataclass(frozen=True)
class ScoringReport:
    """What one scoring run did."""

    rows: int
    model_uri: str
    model_id: str | None
    registered_model: str | None
    registered_version: str | None
    run_id: str | None
    seconds: float
    output: str
    # 0 when the model came from the local cache.
    model_files_downloaded: int
    # Input columns that are neither training columns nor the id column.
    ignored_columns: int
    batch_rows: int


@dataclass(frozen=True)
class ScoringProgress:
    """Reported while scoring runs: the current step, and rows scored so far (of how many, when known)."""

    message: str
    rows_done: int = 0
    rows_total: int | None = None


@dataclass(frozen=True)
class ResolvedModel:
    """A model URI resolved: where its files are, and what it is in the registry."""

    uri: str
    s3_path: str
    model_id: str | None
    registered_model: str | None
    registered_version: str | None
    run_id: str | None


@dataclass(frozen=True)
class TrainingColumns:
    """The columns a model was trained on, where they were read from, and the digest of that file."""

    schema: ColumnSchema
    source: str
    sha256: str
    # MLflow enforces an input signature on DataFrames: such models get one.
    needs_frame: bool


# --- the model -------------------------------------------------------------------------------------------


def resolve_model_uri(model_uri: str, *, artifact_store_uri: str | None = None) -> ResolvedModel:
    """Resolve one of MLflow's model URI forms to the model's S3 path, id, registered version and run."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    uri = model_uri.strip()
    if uri.startswith("runs:/"):
        parts = [part for part in uri[len("runs:/") :].split("/") if part]
        if not parts or len(parts) > 2:
            raise ScoringError(f"model URI {model_uri!r}: expected runs:/<run_id> (or runs:/<run_id>/<model name>)")
        path, run_id = get_model_s3_path(
            run_id=parts[0], name=parts[1] if len(parts) == 2 else None, artifact_store_uri=artifact_store_uri
        )
        match = _MODEL_ID_IN_PATH.search(path)
        return ResolvedModel(uri, path, match.group(1) if match else None, None, None, run_id or parts[0])
    if not uri.startswith("models:/"):
        raise ScoringError(f"model URI {model_uri!r}: expected {_URI_FORMS}")
    rest = uri[len("models:/") :].strip("/")
    if _LOGGED_MODEL_ID.match(rest):
        path, run_id = get_model_s3_path(model_id=rest, artifact_store_uri=artifact_store_uri)
        return ResolvedModel(uri, path, rest, None, None, run_id or None)
    if "@" in rest and "/" not in rest:
        name, alias = rest.split("@", 1)
        version = None
    elif rest.count("/") == 1 and rest.split("/")[1].isdigit():
        name, version = rest.split("/")
        alias = None
    else:
        raise ScoringError(f"model URI {model_uri!r}: expected {_URI_FORMS}")
    if not name or (alias is not None and not alias):
        raise ScoringError(f"model URI {model_uri!r}: expected {_URI_FORMS}")

    client = MlflowClient()
    try:
        model_version = (
            client.get_model_version_by_alias(name, alias)
            if alias is not None
            else client.get_model_version(name, str(version))
        )
    except MlflowException as exc:
        if getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST" or "not found" in str(exc).lower():
            which = f"alias {alias!r}" if alias is not None else f"version {version}"
            raise ModelNotFoundError(
                f"registered model {name!r} {which} does not exist on {client.tracking_uri}"
            ) from None
        raise
    model_id = getattr(model_version, "model_id", None)
    source = str(getattr(model_version, "source", "") or "")
    if not model_id and source.startswith("models:/") and _LOGGED_MODEL_ID.match(source[len("models:/") :].strip("/")):
        model_id = source[len("models:/") :].strip("/")
    if model_id:
        path, run_id = get_model_s3_path(model_id=model_id, artifact_store_uri=artifact_store_uri)
    else:
        path, run_id = get_model_s3_path(
            model_name=name, version=model_version.version, artifact_store_uri=artifact_store_uri
        )
    return ResolvedModel(
        uri, path, model_id, name, str(model_version.version), run_id or getattr(model_version, "run_id", None)
    )


def training_columns(model_dir: Path, pyfunc_model: Any, *, model_uri: str) -> TrainingColumns:
    """The toolkit's column schema beside the model, else the names and types of MLflow's input signature."""
    input_schema = pyfunc_model.metadata.get_input_schema()
    has_signature = input_schema is not None and input_schema.has_input_names()
    schema_file = model_dir / model_schema_path()
    if schema_file.is_file():
        schema = ColumnSchema.read(schema_file)
        digest = hashlib.sha256(schema_file.read_bytes()).hexdigest()
        source = SCHEMA_FILE_NAME
    elif has_signature:
        names = tuple(str(name) for name in input_schema.input_names())
        dtypes = tuple(str(dtype) if dtype.kind in "biuf" else "object" for dtype in input_schema.numpy_types())
        schema = ColumnSchema(names, dtypes)
        digest = hashlib.sha256((model_dir / "MLmodel").read_bytes()).hexdigest()
        source = "MLmodel signature"
    else:
        raise ScoringError(
            f"{model_uri}: the model records no training columns (no {SCHEMA_FILE_NAME} and no input "
            "signature), so the input's columns cannot be checked; log it with the toolkit's decorators, or "
            "with a signature"
        )
    needs_frame = has_signature or any(numpy_dtype(dtype) is None for dtype in schema.dtypes)
    return TrainingColumns(schema, source, digest, needs_frame)


def _classes_and_probabilities(pyfunc_model: Any) -> Any | None:
    """The scikit-learn classifier behind the model, if it gives class probabilities."""
    try:
        raw = pyfunc_model.get_raw_model()
    except Exception:
        return None
    from sklearn.base import is_classifier

    if is_classifier(raw) and hasattr(raw, "predict_proba") and hasattr(raw, "classes_"):
        return raw
    return None


# --- batches into model inputs ---------------------------------------------------------------------------


def feature_matrix(features: pa.RecordBatch, plan: ColumnPlan, dtype: np.dtype[Any]) -> np.ndarray:
    """The batch as one matrix in the model's column order. Arrow copies the columns side by side in C
    (column-major, one copy); a row-major copy or a DataFrame would cost several times more."""
    import numpy as np
    import pyarrow as pa

    try:
        matrix = np.asarray(features.to_tensor(null_to_nan=dtype.kind == "f", row_major=False))
    except (pa.ArrowTypeError, pa.ArrowNotImplementedError, pa.ArrowInvalid):
        matrix = _column_by_column(features, dtype)
    if matrix.dtype != dtype:
        matrix = matrix.astype(dtype)  # lossless: checked against the file's types before reading
    if plan.to_model_order is not None:
        # Column-major like the DataFrame MLflow would be given: the same layout, the same sums, the same
        # predictions to the last bit. `clip` (the indices are valid) lets NumPy write straight into `out`.
        ordered = np.empty((matrix.shape[0], len(plan.to_model_order)), dtype=matrix.dtype, order="F")
        np.take(matrix, plan.to_model_order, axis=1, out=ordered, mode="clip")
        matrix = ordered
    return matrix


def _column_by_column(features: pa.RecordBatch, dtype: np.dtype[Any]) -> np.ndarray:
    """The slow way, for what Arrow's tensor conversion refuses (booleans, missing integers)."""
    import numpy as np

    matrix = np.empty((features.num_rows, features.num_columns), dtype=dtype, order="F")
    for index, column in enumerate(features.columns):
        if column.null_count and dtype.kind != "f":
            raise WideFileError(
                f"column {features.schema.names[index]!r}: {column.null_count} missing values, but the model's "
                f"{dtype} columns have none"
            )
        matrix[:, index] = column.to_numpy(zero_copy_only=False)
    return matrix


def feature_frame(features: pa.RecordBatch, plan: ColumnPlan, schema: ColumnSchema) -> pd.DataFrame:
    """The batch as a DataFrame with the training columns, order and (numeric) dtypes."""
    frame = features.to_pandas()
    if plan.to_model_order is not None:
        frame = frame.iloc[:, plan.to_model_order]
    casts = {
        name: dtype
        for name, dtype, actual in zip(schema.names, schema.dtypes, frame.dtypes, strict=True)
        if numpy_dtype(dtype) is not None and str(actual) != dtype
    }
    return frame.astype(casts) if casts else frame


def _matrix_dtype(schema: ColumnSchema) -> np.dtype[Any]:
    import numpy as np

    dtypes = {dtype for dtype in schema.dtypes}
    return np.result_type(*(np.dtype(dtype) for dtype in dtypes)) if dtypes else np.dtype("float64")


# --- the output ------------------------------------------------------------------------------------------


def _prediction_columns(predictions: Any, classifier: Any, model_input: Any) -> dict[str, Any]:
    """`prediction` (or `prediction_<i>` for several outputs) and, for classifiers, `probability_<class>`."""
    import numpy as np
    import pandas as pd

    columns: dict[str, Any] = {}
    if isinstance(predictions, pd.DataFrame):
        if predictions.shape[1] == 1:
            columns[PREDICTION_COLUMN] = predictions.iloc[:, 0].to_numpy()
        else:
            for name in predictions.columns:
                columns[f"{PREDICTION_COLUMN}_{name}"] = predictions[name].to_numpy()
    else:
        values = np.asarray(predictions)
        if values.ndim == 2 and values.shape[1] == 1:
            values = values[:, 0]
        if values.ndim == 2:
            for index in range(values.shape[1]):
                columns[f"{PREDICTION_COLUMN}_{index}"] = values[:, index]
        else:
            columns[PREDICTION_COLUMN] = values
    if classifier is not None:
        with feature_names_warning_silenced():
            probabilities = np.asarray(classifier.predict_proba(model_input))
        for index, label in enumerate(classifier.classes_):
            columns[f"{PROBABILITY_PREFIX}{label}"] = probabilities[:, index]
    return columns


class _ScoresFile:
    """The output Parquet file, written to a temporary file and published only by `commit`."""

    def __init__(self, destination: str, provenance: dict[str, Any], s3: Callable[[], Any]) -> None:
        self.destination = destination
        self.provenance = provenance
        self._s3 = s3
        self._writer: pyarrow.parquet.ParquetWriter | None = None
        self._schema: pa.Schema | None = None
        if is_s3_uri(destination):
            split_s3_uri(destination)  # a bad URI fails before any work
            handle, name = tempfile.mkstemp(prefix="mlflow-platform-scores-", suffix=".parquet.partial")
        else:
            parent = Path(destination).resolve().parent
            parent.mkdir(parents=True, exist_ok=True)
            handle, name = tempfile.mkstemp(prefix=f".{Path(destination).name}.", suffix=".partial", dir=parent)
        os.close(handle)
        self._temporary = Path(name)

    def write(self, ids: pa.Array | None, id_column: str | None, columns: dict[str, Any]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        arrays: dict[str, pa.Array] = {}
        if id_column is not None and ids is not None:
            arrays[id_column] = ids
        for name, values in columns.items():
            field_type = self._schema.field(name).type if self._schema is not None else None
            arrays[name] = pa.array(values, type=field_type)
        table = pa.table(arrays)
        if self._writer is None or self._schema is None:
            metadata = {PROVENANCE_KEY: json.dumps(self.provenance, sort_keys=True)}
            self._schema = table.schema.with_metadata(metadata)
            self._writer = pq.ParquetWriter(self._temporary, self._schema)
        self._writer.write_table(table.replace_schema_metadata(self._schema.metadata))

    def commit(self, *, id_type: pa.DataType | None, id_column: str | None) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._writer is None:  # no rows: an empty file with the columns that would be there
            fields = [pa.field(id_column, id_type)] if id_column is not None and id_type is not None else []
            fields.append(pa.field(PREDICTION_COLUMN, pa.float64()))
            schema = pa.schema(fields, metadata={PROVENANCE_KEY: json.dumps(self.provenance, sort_keys=True)})
            self._writer = pq.ParquetWriter(self._temporary, schema)
        self._writer.close()
        if is_s3_uri(self.destination):
            from toolkit.aws import explain_aws_error

            bucket, key = split_s3_uri(self.destination)
            try:
                # Multipart above boto3's threshold: the object appears only when the upload completes.
                self._s3().upload_file(str(self._temporary), bucket, key)
            except Exception as exc:
                raise explain_aws_error(exc, doing=f"uploading the scores to {self.destination}") from exc
            finally:
                self._temporary.unlink(missing_ok=True)
        else:
            publish(self._temporary, self.destination)

    def abort(self) -> None:
        if self._writer is not None:
            # The file is deleted next; the error that stopped the scoring is the one that matters.
            with suppress(Exception):
                self._writer.close()
        self._temporary.unlink(missing_ok=True)


# --- score -----------------------------------------------------------------------------------------------


def _connection(stack: str | None) -> ClientConfig | None:
    """The client config of the signed-in session, or sign in (without autologging) to `stack`/the active profile."""
    session = current_session()
    if session is not None and (stack is None or (session.config is not None and session.config.stack == stack)):
        return session.config
    from toolkit.init import mlflow_init

    return mlflow_init(stack=stack, autolog=False).config


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mlflow-platform")
    except PackageNotFoundError:
        return "unknown"


@contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """MLflow warns at load time about environment details a scoring run cannot act on."""
    import logging

    logger = logging.getLogger("mlflow")
    previous = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(previous)


def score(
    model_uri: str,
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    id_column: str | None = None,
    batch_rows: int | None = None,
    stack: str | None = None,
    progress: Callable[[ScoringProgress], None] | None = None,
) -> ScoringReport:
    """Score `input` with the model `model_uri` into the Parquet file `output`; return what was done.

    `input`: a local path or `s3://` URI; the format comes from the extension (`.parquet`, `.arrow`,
    `.feather`, `.ipc`, `.csv`, `.csv.gz`). `output`: a `.parquet` path or `s3://` URI, replaced only
    once every row is scored. `id_column`: an input column copied into the output (e.g. the sample id).
    `batch_rows`: rows per batch (default: about 64 MB of feature values). `stack`: whose platform
    (default: the session of `mlflow_init`, else the active profile). Bad input raises a `ToolkitError`
    (`SchemaMismatchError` for missing columns or lossy dtypes) before anything is written.
    """
    started = time.perf_counter()
    source, destination = str(input), str(output)

    def tell(message: str, rows_done: int = 0, rows_total: int | None = None) -> None:
        if progress is not None:
            progress(ScoringProgress(message, rows_done, rows_total))

    if batch_rows is not None and batch_rows < 1:
        raise ScoringError(f"batch_rows: got {batch_rows}, expected a positive number of rows")
    if not destination.lower().endswith(OUTPUT_EXTENSIONS):
        raise WideFileError(f"{destination}: the output is Parquet; expected a name ending in .parquet")
    if id_column == "" or id_column == PREDICTION_COLUMN or (id_column or "").startswith(PROBABILITY_PREFIX):
        raise ScoringError(f"id_column: got {id_column!r}, expected an input column name other than the outputs'")
    from toolkit.wide_files import file_format

    file_format(source)  # an unknown input type fails before any request

    tell(f"resolving {model_uri}")
    config = _connection(stack)
    resolved = resolve_model_uri(model_uri, artifact_store_uri=config.artifact_store_uri if config else None)
    s3 = s3_client(config)
    cached = fetch_model(resolved.s3_path, model_id=resolved.model_id, s3=s3, report=lambda message: tell(message))
    tell(f"loading model {resolved.model_id or resolved.s3_path}")
    import mlflow.pyfunc

    with _quiet_mlflow():
        model = mlflow.pyfunc.load_model(str(cached.path))
    columns = training_columns(cached.path, model, model_uri=model_uri)
    classifier = _classes_and_probabilities(model)

    tell(f"checking the columns of {source}")
    filesystem = s3_filesystem(config) if is_s3_uri(source) or is_s3_uri(destination) else None
    with open_input(source, filesystem=filesystem) as wide_input:
        plan = wide_input.plan(columns.schema, id_column=id_column)
        dtype = _matrix_dtype(columns.schema)
        rows_per_batch = batch_rows or default_batch_rows(len(columns.schema), dtype.itemsize)
        provenance = {
            "model_uri": model_uri,
            "model_id": resolved.model_id,
            "registered_model": resolved.registered_model,
            "registered_version": resolved.registered_version,
            "run_id": resolved.run_id,
            "model_s3_path": resolved.s3_path,
            "schema_source": columns.source,
            "schema_sha256": columns.sha256,
            "input": source,
            "package": "mlflow-platform",
            "package_version": _package_version(),
            "scored_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        rows = _score_batches(
            wide_input,
            plan,
            columns,
            model,
            classifier,
            dtype,
            rows_per_batch,
            _ScoresFile(destination, provenance, lambda: s3),
            tell,
        )
    tell(f"wrote {rows} rows to {destination}", rows, rows)
    return ScoringReport(
        rows=rows,
        model_uri=model_uri,
        model_id=resolved.model_id,
        registered_model=resolved.registered_model,
        registered_version=resolved.registered_version,
        run_id=resolved.run_id,
        seconds=time.perf_counter() - started,
        output=destination,
        model_files_downloaded=cached.downloaded_files,
        ignored_columns=plan.ignored,
        batch_rows=rows_per_batch,
    )


def _score_batches(
    wide_input: WideInput,
    plan: ColumnPlan,
    columns: TrainingColumns,
    model: Any,
    classifier: Any,
    dtype: np.dtype[Any],
    batch_rows: int,
    scores: _ScoresFile,
    tell: Callable[[str, int, int | None], None],
) -> int:
    """Read, predict and append batch by batch; the output is published only after the last batch."""
    rows = 0
    id_type = None
    total = wide_input.num_rows
    try:
        tell(f"scoring {wide_input.location}", 0, total)
        for batch in wide_input.batches(plan, columns.schema, batch_rows):
            # Hold on to nothing of a batch once it is converted: the reader's next batch would otherwise
            # be in memory next to this one.
            features, ids, count = batch.features, batch.ids, batch.features.num_rows
            del batch
            if ids is not None:
                id_type = ids.type
            if count == 0:
                continue
            model_input: Any
            if columns.needs_frame:
                model_input = feature_frame(features, plan, columns.schema)
            else:
                model_input = feature_matrix(features, plan, dtype)
            del features
            with feature_names_warning_silenced():
                predictions = model.predict(model_input)
            scores.write(ids, plan.id_column, _prediction_columns(predictions, classifier, model_input))
            rows += count
            del model_input, predictions, ids
            tell(f"scoring {wide_input.location}", rows, total)
        scores.commit(id_type=id_type, id_column=plan.id_column)
    except BaseException:
        scores.abort()
        raise
    return rows
