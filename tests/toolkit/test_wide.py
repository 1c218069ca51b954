"""Width: a 20,000-column model through the whole path, and a guard that nothing logged in big-schema
mode (MLmodel, signature, input example, dataset records, other artifacts) grows with the column count.
Bytes are counted, never seconds: the guard must be fast and deterministic."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.toolkit.data import regression

# Model weights and the column schema are allowed to grow with the width; nothing else is.
_WIDTH_DEPENDENT = ("model.skops", "model.pkl", "column_schema.json.gz")


def _train_wide(columns: int, *, evaluate: bool) -> tuple[Any, Any, Any]:
    import mlflow
    from sklearn.linear_model import Ridge

    from toolkit import mlflow_track_regressor

    X_train, y_train, X_test, y_test = regression(rows=60, columns=columns, test_rows=20)

    @mlflow_track_regressor(run_name=f"ridge-{columns}", big_schema=True, evaluate=evaluate)
    def train(X_train: Any, y_train: Any, X_test: Any, y_test: Any) -> Any:
        return Ridge(alpha=1.0).fit(X_train, y_train)

    model = train(X_train, y_train, X_test, y_test)
    run = mlflow.last_active_run()
    assert run is not None
    return model, run, X_test


def _artifact_sizes(client: Any, run_id: str | None = None, model_uri: str | None = None) -> dict[str, int]:
    """Every file's size, walking a run's artifacts or a model's directory."""
    from mlflow.artifacts import list_artifacts

    sizes: dict[str, int] = {}
    pending = [""]
    while pending:
        folder = pending.pop()
        if run_id:
            entries = client.list_artifacts(run_id, folder or None)
        else:
            assert model_uri is not None
            entries = list_artifacts(artifact_uri=f"{model_uri}/{folder}" if folder else model_uri)
        for entry in entries:
            if entry.is_dir:
                # A model listing names entries after the listed folder's last part: keep the relative path.
                name = entry.path.rsplit("/", 1)[-1]
                pending.append(entry.path if run_id else f"{folder}/{name}".lstrip("/"))
            else:
                sizes[entry.path.rsplit("/", 1)[-1] if model_uri else entry.path] = int(entry.file_size or 0)
    return sizes


def test_twenty_thousand_columns_whole_path(tracking: Callable[..., Any]) -> None:
    import mlflow
    import numpy as np

    from toolkit import SchemaMismatchError, check_schema, get_model_s3_path, load_model_schema

    tracking(big_schema=True)
    model, run, X_test = _train_wide(20_000, evaluate=True)

    assert run.data.tags["toolkit.n_features"] == "20000"
    assert "r2_score" in run.data.metrics
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)}
    assert {"residuals.png", "predicted_vs_actual.png"} <= artifacts
    # The schema is stored once, inside the model; the run points at it.
    assert "column_schema.json.gz" not in artifacts
    assert run.data.tags["toolkit.column_schema"].endswith("/extra_files/column_schema.json.gz")

    path, run_id = get_model_s3_path(run_id=run.info.run_id)
    schema = load_model_schema(model_uri=path)
    assert schema == load_model_schema(run_id=run_id)
    assert len(schema) == 20_000
    assert schema.names[:2] == ("cg00000000", "cg00000001")
    assert set(schema.dtypes) == {"float32"}

    # A scoring frame in another order is put back in training order, then scored from S3.
    shuffled = X_test[list(reversed(X_test.columns))]
    ready = check_schema(shuffled, schema)
    loaded = mlflow.pyfunc.load_model(path)
    np.testing.assert_allclose(loaded.predict(ready), model.predict(X_test), rtol=1e-5)

    broken = X_test.drop(columns=X_test.columns[:7]).assign(extra=1.0)
    with pytest.raises(SchemaMismatchError, match=r"7 of 20000 training columns missing: 'cg00000000'"):
        check_schema(broken, schema)


def test_big_schema_logs_nothing_that_grows_with_the_columns(tracking: Callable[..., Any]) -> None:
    import mlflow
    import yaml

    tracking(big_schema=True, autolog=True)
    client = mlflow.MlflowClient()
    measured: dict[int, dict[str, int]] = {}
    for columns in (500, 8_000):
        _model, run, _ = _train_wide(columns, evaluate=True)
        model = next(
            iter(client.search_logged_models([run.info.experiment_id], f"source_run_id = '{run.info.run_id}'"))
        )
        model_files = _artifact_sizes(client, model_uri=model.artifact_location)
        run_files = _artifact_sizes(client, run_id=run.info.run_id)

        mlmodel_path = mlflow.artifacts.download_artifacts(artifact_uri=f"{model.artifact_location}/MLmodel")
        mlmodel = yaml.safe_load(Path(mlmodel_path).read_text(encoding="utf-8"))
        assert mlmodel["signature"]["inputs"] is None, "big schema must not store a per-column signature"
        assert json.loads(mlmodel["signature"]["outputs"]) == [{"type": "float", "required": True}]
        assert "saved_input_example_info" not in mlmodel
        assert not any("input_example" in name for name in model_files)

        inputs = client.get_run(run.info.run_id).inputs
        assert inputs is not None
        dataset_bytes = 0
        for dataset_input in inputs.dataset_inputs:
            dataset_bytes += len(str(dataset_input.dataset.schema or "")) + len(
                str(dataset_input.dataset.profile or "")
            )
        params_and_tags = json.dumps([run.data.params, run.data.tags])
        measured[columns] = {
            "MLmodel": model_files["MLmodel"],
            "datasets": dataset_bytes,
            "params and tags": len(params_and_tags),
            "other model files": sum(v for k, v in model_files.items() if k not in _WIDTH_DEPENDENT),
            "other run artifacts": sum(v for k, v in run_files.items() if k.rsplit("/", 1)[-1] not in _WIDTH_DEPENDENT),
            "schema": model_files["column_schema.json.gz"],
        }

    narrow, wide = measured[500], measured[8_000]
    assert wide["MLmodel"] <= 10_000
    for key in ("MLmodel", "datasets", "params and tags", "other model files"):
        assert wide[key] - narrow[key] <= 64, (key, narrow[key], wide[key])
    # Plots are PNGs of the same 20 test rows; allow compression noise, not growth with width.
    assert wide["other run artifacts"] <= narrow["other run artifacts"] * 1.2 + 2_000, measured
    # 1.5 MB at 500,000 columns is 3 bytes a column; names like cg00000000 compress to about 2.
    assert wide["schema"] <= 3 * 8_000, measured


def test_schema_of_a_run_that_kept_its_own_copy(tracking: Callable[..., Any], tmp_path: Path) -> None:
    """Runs tracked before the schema was stored once hold it among their own artifacts: still read."""
    import mlflow

    from toolkit import ColumnSchema, load_model_schema

    tracking(autolog=False)
    X_train, _, _, _ = regression(rows=5, columns=50, test_rows=1)
    schema = ColumnSchema.from_frame(X_train)
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(schema.write(tmp_path / "column_schema.json.gz")))
    assert load_model_schema(run_id=run.info.run_id) == schema
