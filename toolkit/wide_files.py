"""Samples x features files at hundreds of thousands of columns: read in batches, checked first, and written fast.

Three input formats, chosen by the file name's extension: Parquet, Arrow IPC (Feather v2) and CSV. Each
reader knows the file's columns before it reads a single value (Parquet's footer, Arrow's schema, CSV's
header line), so a file that lacks training columns is refused at once. Then only the training columns
(and an id column) are read, in batches of rows, so memory follows the batch, not the file:

- Arrow IPC files are memory-mapped. Every record batch is sliced into batches of rows without a copy;
  after each one the mapped pages are handed back to the kernel (`MADV_DONTNEED`), which keeps them in
  its page cache but stops charging them to this process. A record batch is the file's own unit: a file
  written as one giant record batch maps all of its pages at once, which is why `write_wide` writes
  record batches of a bounded size.
- Parquet is read with the columns projected, in the model's order, a batch of rows at a time; memory
  follows the file's row groups.
- CSV goes through Arrow's streaming reader with the columns projected (`include_columns`) and parsed
  straight into the training dtypes.

Values are cast only where no value can change (int16 into float32, float32 into float64, ...); any other
difference in dtype is an error naming the columns, because silently rounding a feature changes the score.

pyarrow and NumPy are imported inside the functions: `import toolkit` stays light.
"""

from __future__ import annotations

import csv
import mmap
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

from toolkit.errors import SchemaMismatchError, ToolkitError
from toolkit.s3_files import filesystem_path, is_s3_uri

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.fs

    from toolkit.schema import ColumnSchema

WideFormat = Literal["parquet", "arrow", "csv"]

# Longest suffix first: `.csv.gz` before `.gz` would matter if `.gz` alone were accepted.
_EXTENSIONS: tuple[tuple[str, WideFormat], ...] = (
    (".parquet", "parquet"),
    (".pq", "parquet"),
    (".arrow", "arrow"),
    (".feather", "arrow"),
    (".ipc", "arrow"),
    (".csv.gz", "csv"),
    (".csv", "csv"),
)
SUPPORTED_EXTENSIONS = tuple(suffix for suffix, _ in _EXTENSIONS)
# A batch holds about this many bytes of feature values; `default_batch_rows` derives the rows from it.
# Scoring holds a batch about three times (the file's pages, Arrow's arrays, the model's matrix).
BATCH_BYTES = 64 * 1024 * 1024
MAX_BATCH_ROWS = 65_536
_WRITE_BUFFER = 8 * 1024 * 1024
# Parquet's footer holds an entry per column per row group, kept in memory while writing and parsed
# before reading: at 500,000 columns, row groups the size of a batch make a footer of gigabytes. Its
# default row groups are this many batches.
PARQUET_GROUP_BATCHES = 8
# Shown per kind of problem in an error; the counts are always complete.
_SHOWN = 5


class WideFileError(ToolkitError, ValueError):
    """An input or output file cannot be used as asked: unknown format, unreadable, no such id column, ..."""


def file_format(location: str) -> WideFormat:
    """The format a path or `s3://` URI names by its extension, or an error listing the supported ones."""
    name = location.rsplit("/", 1)[-1].lower()
    for suffix, kind in _EXTENSIONS:
        if name.endswith(suffix):
            return kind
    raise WideFileError(
        f"{location}: unknown file type; expected one of {', '.join(SUPPORTED_EXTENSIONS)} "
        "(Parquet, Arrow IPC / Feather v2, CSV)"
    )


def default_batch_rows(n_columns: int, itemsize: int = 4) -> int:
    """Rows per batch so that a batch holds about `BATCH_BYTES` of feature values (at least one row)."""
    per_row = max(1, n_columns) * max(1, itemsize)
    return max(1, min(MAX_BATCH_ROWS, BATCH_BYTES // per_row))


def _shown(items: Sequence[str]) -> str:
    more = f", ... ({len(items) - _SHOWN} more)" if len(items) > _SHOWN else ""
    return ", ".join(repr(item) for item in items[:_SHOWN]) + more


# --- checking a file's columns against the training columns ----------------------------------------------


@dataclass(frozen=True)
class ColumnPlan:
    """How the training columns are found in one file, decided from its metadata alone.

    `read_names`: the training columns in the order the reader yields them (the model's order for
    Parquet and CSV; the file's order for Arrow, where reordering happens on the matrix instead).
    `to_model_order`: positions into `read_names` that give the model's order, or None when they already
    do. `ignored`: how many of the file's columns are neither training columns nor the id column.
    """

    model_names: tuple[str, ...]
    read_names: tuple[str, ...]
    read_indices: tuple[int, ...]
    to_model_order: np.ndarray | None
    id_column: str | None
    id_index: int | None
    ignored: int
    # True when the file holds exactly the columns that are read (no select needed).
    only_read_columns: bool


def numpy_dtype(name: str) -> np.dtype[Any] | None:
    """numpy's dtype for a schema dtype name, or None for what is not a plain number (object, category)."""
    import numpy as np

    try:
        dtype = np.dtype(name)
    except TypeError:
        return None
    return dtype if dtype.kind in "biuf" else None


def lossless(source: pa.DataType, target: np.dtype[Any]) -> bool:
    """Whether every value of Arrow type `source` is exactly representable in `target`."""
    import numpy as np
    import pyarrow as pa

    if pa.types.is_null(source):
        return target.kind == "f"  # an all-missing column: NaN
    try:
        src: np.dtype[Any] = np.dtype(source.to_pandas_dtype())
    except (NotImplementedError, TypeError):
        return False
    if src == target:
        return True
    if src.kind not in "biuf":
        return False
    if src.kind == "b":
        return target.kind in "biuf"
    if target.kind == "f":
        if src.kind == "f":
            return src.itemsize <= target.itemsize
        # A float's mantissa holds integers up to 11, 24 and 53 bits exactly.
        exact_bits = {2: 8, 4: 16, 8: 32}.get(target.itemsize, 0)
        return src.itemsize * 8 <= exact_bits
    if target.kind == "i":
        return (src.kind == "i" and src.itemsize <= target.itemsize) or (
            src.kind == "u" and src.itemsize < target.itemsize
        )
    if target.kind == "u":
        return src.kind == "u" and src.itemsize <= target.itemsize
    return False


def plan_columns(
    names: Sequence[str],
    types: Sequence[pa.DataType] | None,
    schema: ColumnSchema,
    *,
    id_column: str | None,
    source: str,
    model_order_reads: bool,
) -> ColumnPlan:
    """Match a file's columns (from its metadata) to the training columns, or raise naming what is wrong.

    Missing training columns and dtypes that cannot be cast without loss raise `SchemaMismatchError` with
    the counts and the first names; a missing id column raises `WideFileError`. Extra columns are fine.
    """
    import numpy as np

    positions: dict[str, int] = {}
    duplicated: list[str] = []
    for index, name in enumerate(names):
        if name in positions:
            duplicated.append(name)
        positions.setdefault(name, index)
    if id_column is not None and id_column not in positions:
        raise WideFileError(f"{source}: no id column {id_column!r} among its {len(names)} columns")
    if id_column is not None and id_column in schema.names:
        raise WideFileError(f"{source}: id column {id_column!r} is one of the model's training columns")
    problems: list[str] = []
    missing = [name for name in schema.names if name not in positions]
    if missing:
        problems.append(f"{len(missing)} of {len(schema)} training columns missing: {_shown(missing)}")
    wanted = set(schema.names)
    duplicated = [name for name in dict.fromkeys(duplicated) if name in wanted]
    if duplicated:
        problems.append(f"{len(duplicated)} training columns appear more than once: {_shown(duplicated)}")
    if types is not None and not missing:
        lossy = []
        known: dict[tuple[Any, str], bool] = {}
        for name, dtype_name in zip(schema.names, schema.dtypes, strict=True):
            target = numpy_dtype(dtype_name)
            if target is None:
                continue  # not a number (strings, categories): passed through as the file has it
            source_type = types[positions[name]]
            key = (source_type, dtype_name)
            ok = known[key] if key in known else known.setdefault(key, lossless(source_type, target))
            if not ok:
                lossy.append(f"{name} ({source_type} -> {dtype_name})")
        if lossy:
            problems.append(
                f"{len(lossy)} columns would lose precision cast to their training dtype: "
                + ", ".join(lossy[:_SHOWN])
                + (f", ... ({len(lossy) - _SHOWN} more)" if len(lossy) > _SHOWN else "")
            )
    if problems:
        raise SchemaMismatchError([f"{source}: {problem}" for problem in problems])

    in_model_order = [positions[name] for name in schema.names]
    if model_order_reads:
        read_indices = tuple(in_model_order)
        to_model_order = None
    else:
        read_indices = tuple(sorted(in_model_order))
        rank = np.empty(len(names), dtype=np.int64)
        rank[np.asarray(read_indices, dtype=np.int64)] = np.arange(len(read_indices))
        order = rank[np.asarray(in_model_order, dtype=np.int64)]
        to_model_order = None if bool(np.all(order == np.arange(len(order)))) else order
    id_index = positions[id_column] if id_column is not None else None
    used = len(schema) + (1 if id_column is not None else 0)
    return ColumnPlan(
        model_names=tuple(schema.names),
        read_names=tuple(names[i] for i in read_indices),
        read_indices=read_indices,
        to_model_order=to_model_order,
        id_column=id_column,
        id_index=id_index,
        ignored=len(names) - used,
        only_read_columns=len(names) == len(schema) and id_column is None,
    )


# --- readers ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InputBatch:
    """A batch of rows: the training columns in `ColumnPlan.read_names` order, and the ids if asked."""

    features: pa.RecordBatch
    ids: pa.Array | None


class _SchemaTypes(Sequence["pa.DataType"]):
    """A schema's column types, looked up one at a time: a list of 500,000 type objects costs tens of MB
    for the whole run, where only the training columns are looked at, once."""

    def __init__(self, schema: pa.Schema) -> None:
        self._schema = schema

    def __len__(self) -> int:
        return len(self._schema)

    @overload
    def __getitem__(self, index: int) -> pa.DataType: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[pa.DataType]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self._schema.field(i).type for i in range(len(self._schema))[index]]
        return self._schema.field(index).type


class WideInput:
    """An open input file. `names`/`types` come from its metadata; `batches` reads the planned columns."""

    location: str
    format: WideFormat
    names: list[str]
    # None for CSV: text has no types until it is parsed (into the training dtypes).
    types: Sequence[pa.DataType] | None
    # Known from the metadata for Parquet; None where counting would mean reading.
    num_rows: int | None = None

    def plan(self, schema: ColumnSchema, *, id_column: str | None) -> ColumnPlan:
        return plan_columns(
            self.names,
            self.types,
            schema,
            id_column=id_column,
            source=self.location,
            model_order_reads=self.format != "arrow",
        )

    def batches(self, plan: ColumnPlan, schema: ColumnSchema, batch_rows: int) -> Iterator[InputBatch]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the file (and its mapping)."""

    def __enter__(self) -> WideInput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _split_id(batch: pa.RecordBatch, plan: ColumnPlan) -> InputBatch:
    """Parquet and CSV batches hold the training columns, then the id column last."""
    if plan.id_column is None:
        return InputBatch(batch, None)
    ids = batch.column(batch.num_columns - 1)
    return InputBatch(batch.drop_columns([plan.id_column]), ids)


class _ArrowInput(WideInput):
    def __init__(self, location: str, filesystem: pyarrow.fs.FileSystem | None) -> None:
        import pyarrow as pa

        self.location = location
        self.format = "arrow"
        self._map: mmap.mmap | None = None
        self._handle: Any = None
        try:
            if filesystem is None:
                self._handle = open(location, "rb")  # noqa: SIM115 - closed in close()
                try:
                    self._map = mmap.mmap(self._handle.fileno(), 0, access=mmap.ACCESS_READ)
                except ValueError:
                    raise WideFileError(f"{location}: empty file, expected Arrow IPC") from None
                source: Any = pa.BufferReader(pa.py_buffer(self._map))
            else:
                self._handle = filesystem.open_input_file(filesystem_path(location))
                source = self._handle
            self._reader = _open_ipc(source, location)
        except BaseException:
            self.close()
            raise
        schema = self._reader.schema
        self.names = list(schema.names)
        self.types = _SchemaTypes(schema)

    def batches(self, plan: ColumnPlan, schema: ColumnSchema, batch_rows: int) -> Iterator[InputBatch]:
        reader = self._reader
        select = None if plan.only_read_columns else list(plan.read_indices)
        for batch in _ipc_batches(reader):
            features = batch if select is None else batch.select(select)
            ids = batch.column(plan.id_index) if plan.id_index is not None else None
            for start in range(0, batch.num_rows, batch_rows):
                length = min(batch_rows, batch.num_rows - start)
                yield InputBatch(features.slice(start, length), None if ids is None else ids.slice(start, length))
                self._release_pages()
            del batch, features, ids

    def _release_pages(self) -> None:
        """The consumer has copied what it needed: stop charging the mapped pages to this process."""
        if self._map is not None and hasattr(mmap, "MADV_DONTNEED"):
            self._map.madvise(mmap.MADV_DONTNEED)

    def close(self) -> None:
        self._reader = None
        if self._map is not None:
            # BufferError: Arrow objects still point into the mapping; it goes when they do.
            with suppress(BufferError):
                self._map.close()
            self._map = None
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _open_ipc(source: Any, location: str) -> Any:
    """Arrow's file format (with a footer), else its stream format; both start with the schema."""
    import pyarrow as pa
    import pyarrow.ipc

    try:
        return pyarrow.ipc.open_file(source)
    except pa.ArrowInvalid:
        pass
    try:
        source.seek(0)
        return pyarrow.ipc.open_stream(source)
    except pa.ArrowInvalid as exc:
        raise WideFileError(f"{location}: not an Arrow IPC file or stream ({exc})") from None


def _ipc_batches(reader: Any) -> Iterator[pa.RecordBatch]:
    if hasattr(reader, "num_record_batches"):
        for index in range(reader.num_record_batches):
            yield reader.get_batch(index)
    else:
        yield from reader


class _ParquetInput(WideInput):
    def __init__(self, location: str, filesystem: pyarrow.fs.FileSystem | None) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.location = location
        self.format = "parquet"
        self._handle = None if filesystem is None else filesystem.open_input_file(filesystem_path(location))
        try:
            self._file = pq.ParquetFile(location if self._handle is None else self._handle)
        except (pa.ArrowInvalid, OSError) as exc:
            self.close()
            raise WideFileError(f"{location}: not a readable Parquet file ({exc})") from None
        schema = self._file.schema_arrow
        self.names = list(schema.names)
        self.types = _SchemaTypes(schema)
        self.num_rows = int(self._file.metadata.num_rows)

    def batches(self, plan: ColumnPlan, schema: ColumnSchema, batch_rows: int) -> Iterator[InputBatch]:
        columns = list(plan.read_names) + ([plan.id_column] if plan.id_column is not None else [])
        # A row group at a time, then sliced: streaming a few rows at a time through 500,000 column
        # readers costs far more time and memory than decoding each column chunk once.
        for group in range(self._file.num_row_groups):
            table = self._file.read_row_group(group, columns=columns, use_threads=False)
            for batch in table.to_batches(max_chunksize=batch_rows):
                yield _split_id(batch, plan)
            del table

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


class _CsvInput(WideInput):
    def __init__(self, location: str, filesystem: pyarrow.fs.FileSystem | None) -> None:
        self.location = location
        self.format = "csv"
        self._filesystem = filesystem
        self._compressed = location.lower().endswith(".gz")
        with self._open() as stream:
            header = _first_line(stream, location)
        self._header_bytes = len(header)
        try:
            self.names = next(csv.reader([header.decode("utf-8")]))
        except (UnicodeDecodeError, StopIteration, csv.Error) as exc:
            raise WideFileError(f"{location}: the first line is not a CSV header ({exc})") from None
        self.types = None

    def _open(self) -> Any:
        """A binary stream of the file's text (decompressed for `.csv.gz`)."""
        import pyarrow as pa

        if self._filesystem is None:
            try:
                raw: Any = pa.OSFile(self.location, "rb")
            except FileNotFoundError:
                raise WideFileError(f"{self.location}: no such file") from None
        else:
            raw = self._filesystem.open_input_stream(filesystem_path(self.location), compression=None)
        return pa.CompressedInputStream(raw, "gzip") if self._compressed else raw

    def batches(self, plan: ColumnPlan, schema: ColumnSchema, batch_rows: int) -> Iterator[InputBatch]:
        import pyarrow as pa
        import pyarrow.csv as pcsv

        column_types: dict[str, pa.DataType] = {}
        for name, dtype_name in zip(schema.names, schema.dtypes, strict=True):
            target = numpy_dtype(dtype_name)
            if target is not None:
                column_types[name] = pa.from_numpy_dtype(target)
        include = list(plan.read_names) + ([plan.id_column] if plan.id_column is not None else [])
        # A block is Arrow's unit of parsing: it must hold whole rows. A row is about as long as the header.
        block_rows = max(1, min(batch_rows, 64))
        block_size = int(min(2**31 - 1, max(1 << 20, 2 * self._header_bytes * block_rows)))
        stream = self._open()
        try:
            reader = pcsv.open_csv(
                stream,
                read_options=pcsv.ReadOptions(block_size=block_size),
                convert_options=pcsv.ConvertOptions(include_columns=include, column_types=column_types),
            )
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    break
                except pa.ArrowInvalid as exc:
                    raise WideFileError(f"{self.location}: {_csv_problem(str(exc), self.names)}") from None
                # Arrow's blocks are sized in bytes; the caller asked for rows.
                for start in range(0, batch.num_rows, batch_rows):
                    yield _split_id(batch.slice(start, batch_rows), plan)
        except pa.ArrowInvalid as exc:
            raise WideFileError(f"{self.location}: {_csv_problem(str(exc), self.names)}") from None
        finally:
            stream.close()


def _first_line(stream: Any, location: str) -> bytes:
    """Read up to the first newline, a chunk at a time (a 500,000-column header is several MB)."""
    chunks: list[bytes] = []
    while True:
        chunk = stream.read(1 << 20)
        if not chunk:
            break
        end = chunk.find(b"\n")
        if end >= 0:
            chunks.append(chunk[:end])
            break
        chunks.append(chunk)
    header = b"".join(chunks).rstrip(b"\r")
    if not header:
        raise WideFileError(f"{location}: empty file, expected a CSV header line")
    return header


def _csv_problem(message: str, names: Sequence[str]) -> str:
    """Arrow names a CSV column by its number; say its name too."""
    import re

    match = re.search(r"column #(\d+)", message)
    if match and int(match.group(1)) < len(names):
        return f"column {names[int(match.group(1))]!r}: {message}"
    return message


def open_input(location: str, *, filesystem: pyarrow.fs.FileSystem | None = None) -> WideInput:
    """Open a local path or `s3://` URI (then `filesystem` must be an S3 filesystem) by its extension."""
    kind = file_format(location)
    if is_s3_uri(location):
        if filesystem is None:
            raise WideFileError(f"{location}: reading from S3 needs an S3 filesystem")
    else:
        filesystem = None
        if not Path(location).is_file():
            raise WideFileError(f"{location}: no such file")
    try:
        if kind == "arrow":
            return _ArrowInput(location, filesystem)
        if kind == "parquet":
            return _ParquetInput(location, filesystem)
        return _CsvInput(location, filesystem)
    except FileNotFoundError:
        raise WideFileError(f"{location}: no such file") from None


# --- writing ---------------------------------------------------------------------------------------------


def write_wide(
    frame: pd.DataFrame,
    path: str | os.PathLike[str],
    *,
    format: WideFormat | None = None,
    batch_rows: int | None = None,
) -> Path:
    """Write a samples x features frame the fast way: Arrow IPC by default, Parquet when asked.

    The format comes from `format`, else the extension (`.arrow`/`.feather`/`.ipc` or `.parquet`); any
    other extension gets Arrow IPC. Columns keep their names and dtypes; the index is not written (make
    sample ids a column). Rows go in record batches of `batch_rows`, by default about 64 MB of values
    each, so that a reader's memory follows one batch; Parquet's row groups are `batch_rows` too, by
    default `PARQUET_GROUP_BATCHES` batches (see there). Parquet is written without
    compression or dictionary encoding and without statistics: at this width those are what makes it
    slow, and random methylation values do not compress anyway. Written aside and renamed into place.
    """
    import pandas as pd
    import pyarrow as pa

    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"write_wide expects a pandas DataFrame, got {type(frame).__name__}")
    target = Path(path)
    kind: WideFormat
    if format is not None:
        kind = format
    else:
        try:
            kind = file_format(str(target))
        except WideFileError:
            kind = "arrow"
    if kind == "csv":
        raise WideFileError(f"{target}: write_wide writes Arrow IPC or Parquet; CSV is the slow format it avoids")
    columns = [str(c) for c in frame.columns]
    if len(set(columns)) != len(columns):
        raise WideFileError(f"{target}: column names must be unique to be written")
    schema = pa.schema([pa.field(name, _arrow_type(dtype)) for name, dtype in zip(columns, frame.dtypes, strict=True)])
    itemsize = max((int(getattr(dtype, "itemsize", 8)) for dtype in set(frame.dtypes)), default=8)
    rows = batch_rows or default_batch_rows(len(columns), itemsize) * (
        PARQUET_GROUP_BATCHES if kind == "parquet" else 1
    )
    if rows < 1:
        raise WideFileError(f"batch_rows: got {rows}, expected a positive number of rows")
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(handle)
    try:
        if kind == "arrow":
            _write_ipc(frame, schema, temporary, rows)
        else:
            _write_parquet(frame, schema, temporary, rows)
        publish(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def publish(temporary: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Move a finished temporary file into place in one step, with the permissions a new file gets
    (a temporary file is private to its owner until then)."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(temporary, 0o666 & ~mask)
    os.replace(temporary, target)


def _arrow_type(dtype: Any) -> pa.DataType:
    import pyarrow as pa

    try:
        return pa.from_numpy_dtype(dtype)
    except (pa.ArrowNotImplementedError, TypeError):
        return pa.string() if str(dtype) in ("object", "string", "str") else pa.from_numpy_dtype(object)


def _record_batches(frame: pd.DataFrame, schema: pa.Schema, rows: int) -> Iterator[pa.RecordBatch]:
    """Record batches of `rows` rows. The columns of each numeric dtype come from one column-major copy of
    the rows, sliced without a copy per column; only the few other columns (sample ids, labels) are
    converted one by one. Converting 500,000 columns one by one is what makes `Table.from_pandas` take
    most of a minute."""
    import numpy as np
    import pyarrow as pa

    groups: dict[Any, list[int]] = {}
    for position, dtype in enumerate(frame.dtypes):
        groups.setdefault(dtype if dtype.kind in "biuf" else None, []).append(position)
    for start in range(0, max(len(frame), 1), rows):
        part = frame.iloc[start : start + rows]
        n = len(part)
        arrays: list[Any] = [None] * len(schema)
        for dtype, positions in groups.items():
            if dtype is None:
                for j in positions:
                    arrays[j] = pa.array(part.iloc[:, j].to_numpy(), type=schema.field(j).type)
                continue
            values = part.to_numpy() if len(positions) == len(schema) else part.iloc[:, positions].to_numpy()
            # Column-major: each column's values one after the other (no copy when pandas holds them so).
            column_major = values.reshape(-1, order="F") if values.flags.f_contiguous else values.T.reshape(-1)
            flat = pa.array(np.ascontiguousarray(column_major))
            for k, j in enumerate(positions):
                arrays[j] = flat.slice(k * n, n)
        yield pa.RecordBatch.from_arrays(arrays, schema=schema)
        if len(frame) == 0:
            break


def _write_ipc(frame: pd.DataFrame, schema: pa.Schema, path: str, rows: int) -> None:
    import pyarrow as pa
    import pyarrow.ipc

    # Buffered: the writer emits two small writes per column and batch, a million system calls otherwise.
    with (
        pa.BufferedOutputStream(pa.OSFile(path, "wb"), _WRITE_BUFFER) as sink,
        pyarrow.ipc.new_file(sink, schema) as writer,
    ):
        for batch in _record_batches(frame, schema, rows):
            writer.write_batch(batch)


def _write_parquet(frame: pd.DataFrame, schema: pa.Schema, path: str, rows: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with (
        pa.BufferedOutputStream(pa.OSFile(path, "wb"), _WRITE_BUFFER) as sink,
        pq.ParquetWriter(
            sink,
            schema,
            compression="none",
            use_dictionary=False,
            write_statistics=False,
            store_schema=False,
        ) as writer,
    ):
        inner = min(rows, default_batch_rows(len(schema)))
        for start in range(0, max(len(frame), 1), rows):
            part = frame.iloc[start : start + rows]
            group = pa.Table.from_batches(list(_record_batches(part, schema, inner)), schema=schema)
            writer.write_table(group, row_group_size=max(1, group.num_rows))
            if len(frame) == 0:
                break
