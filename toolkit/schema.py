"""The column schema of a wide model: training columns' names and dtypes, in order, as gzip'd JSON.

MLflow's own signature stores one JSON object per column inside the `MLmodel` file, so both its size and
the time to infer it grow with the width. In big-schema mode the toolkit stores this compact artifact
instead: two flat lists (names; dtypes run-length encoded, since wide data is nearly always one dtype),
compressed. It is stored once, inside the model (among MLflow's `extra_files/`), where a scoring
pipeline that has only the model's path finds it; the run's tag `toolkit.column_schema` points at that
file, so a run-based lookup needs no second copy. `check_schema` uses it to vet a scoring frame before
`predict`.

Nothing here imports MLflow at module level: reading a schema file needs only the stdlib.
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit.errors import SchemaMismatchError

if TYPE_CHECKING:
    import pandas as pd

SCHEMA_FILE_NAME = "column_schema.json.gz"
# The run tag holding the artifact URI of the schema inside the run's logged model.
RUN_SCHEMA_TAG = "toolkit.column_schema"
SCHEMA_FORMAT = "toolkit.column_schema"
SCHEMA_VERSION = 1
# Shown per kind of problem in an error; the counts are always complete.
_SHOWN = 5
# Probe-like column names (`cg00000000`, ...) compress nearly as well at the fastest level as at the
# default one, in a fraction of the time; the level was chosen by measurement (README, Performance).
GZIP_LEVEL = 1


def model_schema_path() -> str:
    """Where the schema sits inside a logged model's directory: MLflow copies `extra_files` into its own
    folder of the model."""
    from mlflow.utils.model_utils import EXTRA_FILES_KEY

    return f"{EXTRA_FILES_KEY}/{SCHEMA_FILE_NAME}"


@dataclass(frozen=True)
class ColumnSchema:
    """Training columns in order. `dtypes[i]` is numpy's name for column i's dtype (e.g. `float32`)."""

    names: tuple[str, ...]
    dtypes: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.names) != len(self.dtypes):
            raise ValueError(f"{len(self.names)} names but {len(self.dtypes)} dtypes")

    def __len__(self) -> int:
        return len(self.names)

    @classmethod
    def from_frame(cls, frame: Any) -> ColumnSchema:
        """Read names and dtypes from a DataFrame; a 2-D array gets positional names `0..n-1`."""
        import pandas as pd

        if not isinstance(frame, pd.DataFrame):
            frame = pd.DataFrame(frame)
        return cls(tuple(column_names(frame)), tuple(dtype_names(frame)))

    def to_json_bytes(self) -> bytes:
        return json.dumps(
            {
                "format": SCHEMA_FORMAT,
                "version": SCHEMA_VERSION,
                "n_columns": len(self.names),
                "names": list(self.names),
                "dtypes": _run_length_encode(self.dtypes),
            },
            separators=(",", ":"),
        ).encode("utf-8")

    @classmethod
    def from_json_bytes(cls, data: bytes, *, source: str = "column schema") -> ColumnSchema:
        payload = json.loads(data)
        if not isinstance(payload, dict) or payload.get("format") != SCHEMA_FORMAT:
            raise ValueError(f"{source}: not a toolkit column schema (format {SCHEMA_FORMAT!r} expected)")
        if payload.get("version") != SCHEMA_VERSION:
            raise ValueError(
                f"{source}: schema version {payload.get('version')!r}, this toolkit reads {SCHEMA_VERSION}"
            )
        names = tuple(str(n) for n in payload["names"])
        dtypes = tuple(_run_length_decode(payload["dtypes"]))
        return cls(names, dtypes)

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write gzip'd JSON at `GZIP_LEVEL`."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        # mtime=0 keeps the bytes reproducible for identical schemas.
        target.write_bytes(gzip.compress(self.to_json_bytes(), compresslevel=GZIP_LEVEL, mtime=0))
        return target

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> ColumnSchema:
        """Read a schema file, or the schema inside a model directory (MLmodel next to `extra_files/`)."""
        source = Path(path)
        if source.is_dir():
            in_model = model_schema_path()
            for candidate in (source / in_model, source / SCHEMA_FILE_NAME):
                if candidate.is_file():
                    source = candidate
                    break
            else:
                raise FileNotFoundError(f"{path}: no {in_model} or {SCHEMA_FILE_NAME} in this directory")
        data = source.read_bytes()
        # The file is stored gzip'd, but MLflow uploads it with `Content-Encoding: gzip` (mimetypes' guess
        # for `.gz`), so an HTTP download through the tracking server arrives already decompressed.
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        return cls.from_json_bytes(data, source=str(source))


def column_names(frame: pd.DataFrame) -> list[str]:
    """The frame's column names as text. `tolist` builds the list in C; iterating pandas' (Arrow) string
    index in Python costs about a microsecond a column."""
    names: list[Any] = frame.columns.tolist()
    if all(type(name) is str for name in names):
        return names
    return [str(name) for name in names]


def dtype_names(frame: pd.DataFrame) -> list[str]:
    """numpy's name of each column's dtype. `str(dtype)` is slow enough to matter once per column of a
    wide frame, and wide frames have a handful of distinct dtypes, so each is named once; a frame of one
    dtype, the usual wide case, needs no loop at all."""
    dtypes = frame.dtypes
    if len(dtypes) and dtypes.nunique() == 1:
        return [str(dtypes.iloc[0])] * len(dtypes)
    names: dict[Any, str] = {}
    return [names[d] if d in names else names.setdefault(d, str(d)) for d in dtypes]


def _run_length_encode(values: Sequence[str]) -> list[list[Any]]:
    runs: list[list[Any]] = []
    for value in values:
        if runs and runs[-1][0] == value:
            runs[-1][1] += 1
        else:
            runs.append([value, 1])
    return runs


def _run_length_decode(runs: list[list[Any]]) -> list[str]:
    values: list[str] = []
    for value, count in runs:
        values.extend([str(value)] * int(count))
    return values


def _shown(items: Sequence[str]) -> str:
    return ", ".join(repr(i) for i in items[:_SHOWN]) + _more(items)


def check_schema(frame: pd.DataFrame, schema: ColumnSchema, *, reorder: bool = True) -> pd.DataFrame:
    """Return `frame` with exactly the training columns in the training order, or raise.

    Same columns in another order: reordered (a copy) when `reorder`, else an error. Missing, extra or
    duplicated columns and dtype changes: `SchemaMismatchError` naming the first few of each, with counts.
    The checks are set and list operations, linear in the column count.
    """
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(frame).__name__}")
    raw_columns = frame.columns.tolist()
    columns = column_names(frame) if not all(type(c) is str for c in raw_columns) else raw_columns
    expected = list(schema.names)
    in_order = columns == expected
    actual_dtypes = dtype_names(frame)
    # The usual case, a frame already in training order and types, is two list comparisons in C.
    if in_order and actual_dtypes == list(schema.dtypes):
        return frame

    problems: list[str] = []
    if not in_order:
        present = set(columns)
        wanted = set(expected)
        missing = [c for c in expected if c not in present]
        extra = [c for c in columns if c not in wanted]
        if missing:
            problems.append(f"{len(missing)} of {len(expected)} training columns missing: {_shown(missing)}")
        if extra:
            problems.append(f"{len(extra)} columns not seen in training: {_shown(extra)}")
        if len(present) != len(columns):
            duplicated = sorted(name for name, count in Counter(columns).items() if count > 1)
            problems.append(f"{len(duplicated)} duplicated column names: {_shown(duplicated)}")
    dtype_of = dict(zip(columns, actual_dtypes, strict=True))
    changed = [
        f"{name} ({dtype} -> {dtype_of[name]})"
        for name, dtype in zip(expected, schema.dtypes, strict=True)
        if name in dtype_of and dtype_of[name] != dtype
    ]
    if changed:
        problems.append(f"{len(changed)} columns changed dtype: {', '.join(changed[:_SHOWN])}{_more(changed)}")
    if not problems and not in_order and not reorder:
        first = next(i for i, (a, b) in enumerate(zip(columns, expected, strict=True)) if a != b)
        problems.append(
            f"same columns in another order (first difference at position {first}: "
            f"{columns[first]!r} where training had {expected[first]!r}); pass reorder=True to reorder"
        )
    if problems:
        raise SchemaMismatchError(problems)
    if in_order:
        return frame
    if columns is not raw_columns:
        frame = frame.set_axis(columns, axis=1)
    return frame[expected]


def _more(items: Sequence[str]) -> str:
    return f", ... ({len(items) - _SHOWN} more)" if len(items) > _SHOWN else ""


def load_model_schema(
    run_id: str | None = None,
    model_id: str | None = None,
    *,
    path: str | os.PathLike[str] | None = None,
    model_uri: str | None = None,
) -> ColumnSchema:
    """The training column schema of a run, a logged model (`m-...`), a model URI, or a local path.

    Exactly one source. Remote reads go through MLflow (credentials from `mlflow_init`); `s3://` model
    paths, such as `get_model_s3_path` returns, are read from S3 directly. A run is found through its
    `toolkit.column_schema` tag (or, for runs tracked by older toolkits, its own schema artifact).
    """
    given = [
        name
        for name, value in (("run_id", run_id), ("model_id", model_id), ("path", path), ("model_uri", model_uri))
        if value
    ]
    if len(given) != 1:
        raise ValueError(f"pass exactly one of run_id, model_id, path, model_uri (got {given or 'none'})")
    if path is not None:
        return ColumnSchema.read(path)

    import mlflow

    with tempfile.TemporaryDirectory(prefix="toolkit-schema-") as tmp:
        if run_id is not None:
            # The run's tag points at the schema inside its model; runs tracked before the schema was
            # stored once carry their own copy among the run's artifacts instead.
            try:
                pointer = mlflow.MlflowClient().get_run(run_id).data.tags.get(RUN_SCHEMA_TAG)
                if pointer:
                    local = mlflow.artifacts.download_artifacts(artifact_uri=pointer, dst_path=tmp)
                else:
                    local = mlflow.artifacts.download_artifacts(
                        run_id=run_id, artifact_path=SCHEMA_FILE_NAME, dst_path=tmp
                    )
            except Exception as exc:
                raise LookupError(f"run {run_id}: no column schema could be read ({exc})") from exc
            return ColumnSchema.read(local)
        if model_id is not None:
            uri = mlflow.MlflowClient().get_logged_model(model_id).artifact_location
        else:
            assert model_uri is not None
            uri = model_uri
        in_model = model_schema_path()
        try:
            local = mlflow.artifacts.download_artifacts(artifact_uri=f"{uri.rstrip('/')}/{in_model}", dst_path=tmp)
        except Exception as exc:
            raise LookupError(f"{model_id or uri}: no {in_model} could be read ({exc})") from exc
        return ColumnSchema.read(local)
