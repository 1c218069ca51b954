"""The column schema file and `check_schema`, without a server."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from tests.toolkit.data import regression


def test_round_trip_is_compact_and_ordered(tmp_path: Path) -> None:
    import pandas as pd

    from toolkit import ColumnSchema

    frame = pd.DataFrame({"b": [1.0], "a": [2], "c": ["x"]}).astype({"b": "float32"})
    schema = ColumnSchema.from_frame(frame)
    assert schema.names == ("b", "a", "c")
    assert schema.dtypes[:2] == ("float32", "int64")
    path = schema.write(tmp_path / "schema.json.gz")
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    assert ColumnSchema.read(path) == schema
    # Read back also when an HTTP download already undid the gzip content encoding.
    plain = tmp_path / "plain.json.gz"
    plain.write_bytes(gzip.decompress(path.read_bytes()))
    assert ColumnSchema.read(plain) == schema


def test_wide_schema_size_is_a_few_bytes_a_column(tmp_path: Path) -> None:
    from toolkit import ColumnSchema

    X_train, _, _, _ = regression(rows=2, columns=50_000, test_rows=1)
    path = ColumnSchema.from_frame(X_train).write(tmp_path / "s.json.gz")
    assert path.stat().st_size < 3 * 50_000


def test_check_schema_reorders_and_reports() -> None:
    import numpy as np

    from toolkit import ColumnSchema, SchemaMismatchError, check_schema

    X_train, _, X_test, _ = regression(rows=10, columns=40, test_rows=5)
    schema = ColumnSchema.from_frame(X_train)
    assert check_schema(X_test, schema) is X_test

    shuffled = X_test[list(np.random.default_rng(0).permutation(X_test.columns))]
    assert list(check_schema(shuffled, schema).columns) == list(X_train.columns)
    with pytest.raises(SchemaMismatchError, match=r"same columns in another order .* reorder=True"):
        check_schema(shuffled, schema, reorder=False)

    broken = X_test.drop(columns=list(X_test.columns[:8])).assign(age=1.0, sex=0.0)
    broken["cg00000010"] = broken["cg00000010"].astype("float64")
    with pytest.raises(SchemaMismatchError) as error:
        check_schema(broken, schema)
    message = str(error.value)
    assert "8 of 40 training columns missing: 'cg00000000', 'cg00000001', 'cg00000002', 'cg00000003', " in message
    assert "... (3 more)" in message
    assert "2 columns not seen in training: 'age', 'sex'" in message
    assert "1 columns changed dtype: cg00000010 (float32 -> float64)" in message


def test_load_model_schema_needs_one_source() -> None:
    from toolkit import load_model_schema

    with pytest.raises(ValueError, match="exactly one of"):
        load_model_schema()
    with pytest.raises(ValueError, match="exactly one of"):
        load_model_schema(run_id="a", model_id="m-b")
