"""Wide files without a server: `write_wide`, and reading the training columns back from each input format."""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Any

import pytest

from tests.toolkit.data import regression


def _frame(rows: int = 12, columns: int = 40) -> Any:
    X, _, _, _ = regression(rows=rows, columns=columns, test_rows=1)
    return X.reset_index(drop=True)


def _padded_and_shuffled(frame: Any) -> Any:
    """The frame's columns in another order, with an id column and two columns the model never saw."""
    import numpy as np

    shuffled = frame[list(np.random.default_rng(3).permutation(frame.columns))].copy()
    shuffled.insert(5, "sample_id", [f"S{i:03d}" for i in range(len(frame))])
    shuffled["age_at_draw"] = 50.0
    shuffled.insert(0, "batch", "plate-7")
    return shuffled


def _write(frame: Any, path: Path) -> Path:
    from toolkit import write_wide

    if path.name.endswith(".csv"):
        frame.to_csv(path, index=False)
    elif path.name.endswith(".csv.gz"):
        with gzip.open(path, "wt") as handle:
            frame.to_csv(handle, index=False)
    else:
        write_wide(frame, path, batch_rows=5)
    return path


def _read_matrix(
    path: Path, schema: Any, *, batch_rows: int, id_column: str | None = "sample_id"
) -> tuple[Any, list[Any]]:
    import numpy as np

    from toolkit.scoring import feature_matrix
    from toolkit.wide_files import open_input

    parts, ids = [], []
    with open_input(str(path)) as wide_input:
        plan = wide_input.plan(schema, id_column=id_column)
        for batch in wide_input.batches(plan, schema, batch_rows):
            assert batch.features.num_rows <= batch_rows
            parts.append(feature_matrix(batch.features, plan, np.dtype("float32")))
            if batch.ids is not None:
                ids.extend(batch.ids.to_pylist())
    return np.vstack(parts), ids


@pytest.mark.parametrize("name", ["in.parquet", "in.arrow", "in.feather", "in.csv", "in.csv.gz"])
def test_training_columns_come_back_in_training_order_from_every_format(tmp_path: Path, name: str) -> None:
    import numpy as np

    from toolkit import ColumnSchema

    frame = _frame()
    schema = ColumnSchema.from_frame(frame)
    path = _write(_padded_and_shuffled(frame), tmp_path / name)
    matrix, ids = _read_matrix(path, schema, batch_rows=4)
    np.testing.assert_array_equal(matrix, frame.to_numpy())
    assert ids == [f"S{i:03d}" for i in range(len(frame))]


def test_write_wide_round_trips_names_dtypes_and_values_in_bounded_record_batches(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.ipc
    import pyarrow.parquet as pq

    from toolkit import write_wide

    frame = _frame(rows=23)
    arrow = write_wide(frame, tmp_path / "x.arrow", batch_rows=10)
    parquet = write_wide(frame, tmp_path / "x.parquet", batch_rows=10)
    with pa.memory_map(str(arrow)) as source:
        reader = pyarrow.ipc.open_file(source)
        assert [reader.get_batch(i).num_rows for i in range(reader.num_record_batches)] == [10, 10, 3]
        assert reader.read_all().to_pandas().equals(frame)
    parquet_file = pq.ParquetFile(parquet)
    assert [parquet_file.metadata.row_group(i).num_rows for i in range(parquet_file.num_row_groups)] == [10, 10, 3]
    assert parquet_file.read().to_pandas().equals(frame)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.arrow", "x.parquet"]  # nothing left aside
    mask = os.umask(0)
    os.umask(mask)
    assert arrow.stat().st_mode & 0o777 == 0o666 & ~mask  # not the temporary file's owner-only mode


def test_missing_columns_are_refused_from_metadata_with_the_count_and_first_names(tmp_path: Path) -> None:
    from toolkit import ColumnSchema, SchemaMismatchError
    from toolkit.wide_files import open_input

    frame = _frame()
    schema = ColumnSchema.from_frame(frame)
    for name in ("in.parquet", "in.arrow", "in.csv"):
        path = _write(frame.drop(columns=list(frame.columns[3:10])), tmp_path / name)
        with open_input(str(path)) as wide_input, pytest.raises(SchemaMismatchError) as caught:
            wide_input.plan(schema, id_column=None)
        assert (
            "7 of 40 training columns missing: 'cg00000003', 'cg00000004', 'cg00000005', 'cg00000006', "
            "'cg00000007', ... (2 more)" in str(caught.value)
        )


def test_lossy_dtype_is_refused_naming_the_column_and_lossless_ones_are_cast(tmp_path: Path) -> None:
    import numpy as np

    from toolkit import ColumnSchema, SchemaMismatchError
    from toolkit.wide_files import open_input

    frame = _frame()
    schema = ColumnSchema.from_frame(frame)
    lossy = frame.astype({"cg00000002": "float64"})
    path = _write(lossy, tmp_path / "lossy.arrow")
    with open_input(str(path)) as wide_input, pytest.raises(SchemaMismatchError) as caught:
        wide_input.plan(schema, id_column=None)
    assert "1 columns would lose precision cast to their training dtype: cg00000002 (double -> float32)" in str(
        caught.value
    )

    counts = frame.copy()
    counts["cg00000001"] = np.arange(len(frame), dtype=np.int16)
    expected = counts.astype({"cg00000001": "float32"}).to_numpy()
    path = _write(counts, tmp_path / "counts.parquet")
    matrix, _ = _read_matrix(path, schema, batch_rows=100, id_column=None)
    np.testing.assert_array_equal(matrix, expected)


def test_id_column_and_file_type_problems_name_what_was_expected(tmp_path: Path) -> None:
    from toolkit import ColumnSchema, WideFileError
    from toolkit.wide_files import open_input

    frame = _frame()
    schema = ColumnSchema.from_frame(frame)
    path = _write(frame, tmp_path / "in.arrow")
    with open_input(str(path)) as wide_input, pytest.raises(WideFileError, match="no id column 'sample' among its 40"):
        wide_input.plan(schema, id_column="sample")
    with pytest.raises(WideFileError, match=r"unknown file type; expected one of \.parquet, .*\.csv\.gz"):
        open_input(str(tmp_path / "in.xlsx"))
    with pytest.raises(WideFileError, match="no such file"):
        open_input(str(tmp_path / "absent.parquet"))
    (tmp_path / "text.arrow").write_text("sample,cg1\n")
    with pytest.raises(WideFileError, match="not an Arrow IPC file or stream"):
        open_input(str(tmp_path / "text.arrow"))


def test_a_bad_csv_value_names_its_column(tmp_path: Path) -> None:
    from toolkit import ColumnSchema, WideFileError
    from toolkit.wide_files import open_input

    frame = _frame()
    schema = ColumnSchema.from_frame(frame)
    broken = frame.astype({"cg00000004": "object"})
    broken.loc[3, "cg00000004"] = "n/a?"
    path = _write(broken, tmp_path / "in.csv")
    with open_input(str(path)) as wide_input:
        plan = wide_input.plan(schema, id_column=None)
        with pytest.raises(WideFileError, match="column 'cg00000004'"):
            list(wide_input.batches(plan, schema, 100))


def test_default_batch_rows_follow_the_width() -> None:
    from toolkit.wide_files import default_batch_rows

    assert default_batch_rows(500_000) == 33
    assert default_batch_rows(500_000, itemsize=8) == 16
    assert default_batch_rows(30) == 65_536
    assert default_batch_rows(10**9) == 1
