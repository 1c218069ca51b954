"""`score` / `mlflow-platform score` against the local platform: from a registered model to a Parquet file of
predictions, from shuffled and padded Parquet, Arrow and CSV inputs, local or in S3."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.toolkit.data import classification, regression

runner = CliRunner()


@pytest.fixture(autouse=True)
def model_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "model-cache"
    monkeypatch.setenv("MLFLOW_PLATFORM_CACHE_DIR", str(cache))
    return cache


def _padded_and_shuffled(frame: Any) -> Any:
    """Scoring data as it arrives: other column order, a sample id, and columns the model never saw."""
    import numpy as np

    shuffled = frame[list(np.random.default_rng(7).permutation(frame.columns))].copy()
    shuffled.insert(3, "sample_id", [f"GSM{i:05d}" for i in range(len(frame))])
    shuffled["sex"] = "F"
    shuffled.insert(0, "age_at_draw", 61.5)
    return shuffled.reset_index(drop=True)


def _write_input(frame: Any, path: Path) -> Path:
    from toolkit import write_wide

    if path.name.endswith(".csv"):
        frame.to_csv(path, index=False)
    else:
        write_wide(frame, path, batch_rows=6)
    return path


def _train(name: str | None, columns: int = 300) -> tuple[Any, Any, str]:
    """A big-schema Ridge (registered as `name` with alias `champion` when a name is given); the test
    frame and the model's S3 path."""
    from sklearn.linear_model import Ridge

    from toolkit import get_model_s3_path, last_tracked_run, mlflow_track_regressor

    X_train, y_train, X_test, y_test = regression(rows=50, columns=columns, test_rows=20)

    @mlflow_track_regressor(run_name="clock", big_schema=True, registered_model_name=name)
    def train(X_train: Any, y_train: Any, X_test: Any, y_test: Any) -> Any:
        return Ridge(alpha=0.5).fit(X_train, y_train)

    train(X_train, y_train, X_test, y_test)
    tracked = last_tracked_run()
    assert tracked is not None
    assert tracked.model_id is not None
    if name is not None:
        import mlflow

        client = mlflow.MlflowClient()
        [version] = client.search_model_versions(f"name = '{name}'")
        client.set_registered_model_alias(name, "champion", version.version)
    path, _ = get_model_s3_path(model_id=tracked.model_id)
    return tracked, X_test.reset_index(drop=True), path


def _read_scores(path: Path) -> tuple[Any, dict[str, Any]]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    provenance = json.loads(table.schema.metadata[b"mlflow_platform.scoring"])
    return table, provenance


def _s3_object_sha256(local_platform: Any, s3_path: str, relative: str) -> str:
    bucket, prefix = s3_path.removeprefix("s3://").split("/", 1)
    body = local_platform.aws_client("s3").get_object(Bucket=bucket, Key=f"{prefix}/{relative}")["Body"].read()
    return hashlib.sha256(body).hexdigest()


def test_registered_alias_scores_shuffled_padded_inputs_like_pyfunc_on_the_ordered_frame(
    tracking: Callable[..., Any], local_platform: Any, tmp_path: Path
) -> None:
    import mlflow
    import numpy as np

    from toolkit import score

    tracking(big_schema=True, autolog=False)
    tracked, X_test, s3_path = _train("scoring-test-clock")
    expected = np.asarray(mlflow.pyfunc.load_model(s3_path).predict(X_test))
    scoring_input = _padded_and_shuffled(X_test)
    started = datetime.now(UTC)

    downloads = []
    for name in ("samples.parquet", "samples.arrow", "samples.csv"):
        source = _write_input(scoring_input, tmp_path / name)
        output = tmp_path / f"scores-{name.split('.')[1]}.parquet"
        report = score("models:/scoring-test-clock@champion", source, output, id_column="sample_id", batch_rows=7)
        downloads.append(report.model_files_downloaded)
        table, provenance = _read_scores(output)

        assert table.column_names == ["sample_id", "prediction"]
        assert table.column("sample_id").to_pylist() == [f"GSM{i:05d}" for i in range(len(X_test))]
        # Equal up to float32 rounding: BLAS may sum a 7-row batch in another order than all 20 rows at once.
        np.testing.assert_allclose(table.column("prediction").to_numpy(), expected, rtol=1e-6)
        assert (report.rows, report.ignored_columns, report.batch_rows) == (len(X_test), 2, 7)
        assert (report.model_id, report.run_id) == (tracked.model_id, tracked.run_id)
        assert (report.registered_model, report.registered_version) == ("scoring-test-clock", "1")
        assert report.output == str(output)

        assert provenance["model_uri"] == "models:/scoring-test-clock@champion"
        assert provenance["model_id"] == tracked.model_id
        assert provenance["registered_version"] == "1"
        assert provenance["run_id"] == tracked.run_id
        assert provenance["schema_source"] == "column_schema.json.gz"
        assert provenance["schema_sha256"] == _s3_object_sha256(
            local_platform, s3_path, "extra_files/column_schema.json.gz"
        )
        from importlib.metadata import version

        assert provenance["package_version"] == version("mlflow-platform")
        scored_at = datetime.fromisoformat(provenance["scored_at"])
        assert started - timedelta(seconds=1) <= scored_at <= datetime.now(UTC)
    # The first run brought the model's files into the cache; the next two downloaded nothing.
    assert downloads[0] >= 3
    assert downloads[1:] == [0, 0]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("scores")) == [
        "scores-arrow.parquet",
        "scores-csv.parquet",
        "scores-parquet.parquet",
    ]


def test_cli_missing_columns_exit_non_zero_and_leave_no_output(tracking: Callable[..., Any], tmp_path: Path) -> None:
    from mlflow_platform.cli import app

    tracking(big_schema=True, autolog=False)
    _, X_test, _ = _train("scoring-test-cli")
    source = _write_input(_padded_and_shuffled(X_test).drop(columns=["cg00000010", "cg00000200", "cg00000299"]),
                          tmp_path / "in.arrow")  # fmt: skip
    output = tmp_path / "out" / "scores.parquet"

    # Every training column there: scores; the second run says the model came from the cache.
    complete = _write_input(_padded_and_shuffled(X_test), tmp_path / "in.csv")
    scores = tmp_path / "scores.parquet"
    arguments = ["score", "models:/scoring-test-cli/1", str(complete), str(scores), "--id-column", "sample_id"]
    first = runner.invoke(app, arguments)
    assert first.exit_code == 0, first.output
    assert "Scored 20 rows in" in first.output
    assert "model downloaded" in first.output
    second = runner.invoke(app, [*arguments, "--batch-rows", "3"])
    assert second.exit_code == 0, second.output
    assert "model from the local cache, 2 input columns ignored" in second.output

    result = runner.invoke(app, ["score", "models:/scoring-test-cli@champion", str(source), str(output)])
    assert result.exit_code == 1
    assert "3 of 300 training columns missing: 'cg00000010', 'cg00000200', 'cg00000299'" in result.output
    assert "Traceback" not in result.output
    assert not output.exists()
    assert not output.parent.exists() or list(output.parent.iterdir()) == []

    unknown = runner.invoke(app, ["score", "models:/scoring-test-cli@nope", str(source), str(output)])
    assert unknown.exit_code == 1
    assert "registered model 'scoring-test-cli' alias 'nope' does not exist" in unknown.output
    malformed = runner.invoke(app, ["score", "scoring-test-cli", str(source), str(output)])
    assert malformed.exit_code == 1
    assert "expected models:/<name>@<alias>, models:/<name>/<version>, models:/m-<id> or runs:/" in malformed.output


def test_classifier_probabilities_by_run_and_by_model_id(tracking: Callable[..., Any], tmp_path: Path) -> None:
    import mlflow
    import numpy as np
    import pyarrow.parquet as pq
    from sklearn.linear_model import LogisticRegression

    from toolkit import last_tracked_run, mlflow_track_classifier, score

    tracking(big_schema=True, autolog=False)
    X_train, y_train, X_test, y_test = classification(rows=60, columns=40, classes=3, test_rows=15)

    @mlflow_track_classifier(run_name="subtype", big_schema=True)
    def train(X_train: Any, y_train: Any, X_test: Any, y_test: Any) -> Any:
        return LogisticRegression(max_iter=500).fit(X_train, y_train)

    train(X_train, y_train, X_test, y_test)
    tracked = last_tracked_run()
    assert tracked is not None
    X_test = X_test.reset_index(drop=True)
    model = mlflow.pyfunc.load_model(f"models:/{tracked.model_id}")
    source = _write_input(_padded_and_shuffled(X_test), tmp_path / "in.parquet")

    by_run = score(f"runs:/{tracked.run_id}", source, tmp_path / "by-run.parquet")
    by_id = score(f"models:/{tracked.model_id}", source, tmp_path / "by-id.parquet", id_column="sample_id")
    assert by_run.model_id == by_id.model_id == tracked.model_id
    assert by_run.run_id == by_id.run_id == tracked.run_id
    assert by_run.registered_version is None
    scores = pq.read_table(tmp_path / "by-id.parquet")
    assert scores.column_names == ["sample_id", "prediction", "probability_0", "probability_1", "probability_2"]
    np.testing.assert_array_equal(scores.column("prediction").to_numpy(), model.predict(X_test))
    probabilities = model.get_raw_model().predict_proba(X_test)
    for label in range(3):  # float32: the matrix's layout decides BLAS's summation order, hence the last bit
        np.testing.assert_allclose(
            scores.column(f"probability_{label}").to_numpy(), probabilities[:, label], rtol=1e-5, atol=1e-7
        )
    assert pq.read_table(tmp_path / "by-run.parquet").column_names[0] == "prediction"


def test_s3_input_and_output_and_a_damaged_cache_is_downloaded_again(
    tracking: Callable[..., Any], local_platform: Any, tmp_path: Path, model_cache: Path
) -> None:
    import mlflow
    import numpy as np
    import pyarrow.parquet as pq

    from toolkit import score

    tracking(big_schema=True, autolog=False)
    tracked, X_test, s3_path = _train(None, columns=120)
    expected = np.asarray(mlflow.pyfunc.load_model(s3_path).predict(X_test))
    s3 = local_platform.aws_client("s3")
    s3.create_bucket(Bucket="scoring-test-data")
    source = _write_input(_padded_and_shuffled(X_test), tmp_path / "in.arrow")
    s3.upload_file(str(source), "scoring-test-data", "incoming/batch-1.arrow")

    report = score(
        f"models:/{tracked.model_id}",
        "s3://scoring-test-data/incoming/batch-1.arrow",
        "s3://scoring-test-data/scores/batch-1.parquet",
        id_column="sample_id",
    )
    assert report.rows == len(X_test)
    s3.download_file("scoring-test-data", "scores/batch-1.parquet", str(tmp_path / "scores.parquet"))
    scores = pq.read_table(tmp_path / "scores.parquet")
    np.testing.assert_allclose(scores.column("prediction").to_numpy(), expected, rtol=1e-6, atol=1e-6)
    listed = s3.list_objects_v2(Bucket="scoring-test-data", Prefix="scores/")["Contents"]
    assert [item["Key"] for item in listed] == ["scores/batch-1.parquet"]

    # Compressed CSV from S3, streamed (and decompressed once).
    with gzip.open(tmp_path / "in.csv.gz", "wt") as handle:
        _padded_and_shuffled(X_test).to_csv(handle, index=False)
    s3.upload_file(str(tmp_path / "in.csv.gz"), "scoring-test-data", "incoming/batch-2.csv.gz")
    score(f"models:/{tracked.model_id}", "s3://scoring-test-data/incoming/batch-2.csv.gz", tmp_path / "csv.parquet")
    np.testing.assert_allclose(
        pq.read_table(tmp_path / "csv.parquet").column("prediction").to_numpy(), expected, rtol=1e-6, atol=1e-6
    )

    # A cached file cut short no longer matches the size S3 lists: the model is downloaded again.
    [cached] = [p for p in model_cache.rglob("*") if p.is_file() and p.suffix in (".pkl", ".skops")]
    cached.write_bytes(cached.read_bytes()[:100])
    again = score(f"models:/{tracked.model_id}", source, tmp_path / "again.parquet")
    assert again.model_files_downloaded >= 3
    np.testing.assert_allclose(
        pq.read_table(tmp_path / "again.parquet").column("prediction").to_numpy(), expected, rtol=1e-6, atol=1e-6
    )
    assert score(f"models:/{tracked.model_id}", source, tmp_path / "third.parquet").model_files_downloaded == 0


def test_signature_columns_without_a_schema_artifact_and_a_model_with_neither(
    tracking: Callable[..., Any], tmp_path: Path
) -> None:
    import mlflow
    import numpy as np
    import pyarrow.parquet as pq
    from mlflow.models import infer_signature
    from sklearn.linear_model import Ridge

    from toolkit import ScoringError, score

    tracking(autolog=False)
    X_train, y_train, X_test, _ = regression(rows=40, columns=12, test_rows=8)
    X_test = X_test.reset_index(drop=True)
    model = Ridge().fit(X_train, y_train)
    with mlflow.start_run():
        signed = mlflow.sklearn.log_model(
            model, name="signed", signature=infer_signature(X_train, model.predict(X_train))
        )
        bare = mlflow.sklearn.log_model(model, name="bare")
    source = _write_input(_padded_and_shuffled(X_test), tmp_path / "in.csv")

    report = score(f"models:/{signed.model_id}", source, tmp_path / "signed.parquet")
    assert report.rows == len(X_test)
    np.testing.assert_allclose(
        pq.read_table(tmp_path / "signed.parquet").column("prediction").to_numpy(), model.predict(X_test), rtol=1e-6
    )
    provenance = json.loads(pq.read_schema(tmp_path / "signed.parquet").metadata[b"mlflow_platform.scoring"])
    assert provenance["schema_source"] == "MLmodel signature"

    with pytest.raises(ScoringError, match="records no training columns"):
        score(f"models:/{bare.model_id}", source, tmp_path / "bare.parquet")
    assert not (tmp_path / "bare.parquet").exists()


def test_gzip_csv_input_and_bad_options_are_refused_before_any_request(tmp_path: Path) -> None:
    from toolkit import ScoringError, WideFileError, score

    source = tmp_path / "in.csv.gz"
    with gzip.open(source, "wt") as handle:
        handle.write("sample_id,cg1\nA,0.5\n")
    with pytest.raises(ScoringError, match="batch_rows: got 0, expected a positive number of rows"):
        score("models:/any@champion", source, tmp_path / "out.parquet", batch_rows=0)
    with pytest.raises(WideFileError, match=r"expected a name ending in \.parquet"):
        score("models:/any@champion", source, tmp_path / "out.csv")
    with pytest.raises(WideFileError, match=r"unknown file type; expected one of"):
        score("models:/any@champion", tmp_path / "in.xlsx", tmp_path / "out.parquet")
