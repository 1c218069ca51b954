"""Scoring benchmark: `toolkit.score` against reading the whole file and one bare `predict`.

    uv run python benchmarks/scoring.py                                   # 1,000 x 500,000, Arrow and Parquet
    uv run python benchmarks/scoring.py --samples 200 --features 100000 --formats arrow

A big-schema Ridge is trained on 100 samples, registered with the alias `champion` on the local platform
(started if it is not running), and its files are brought into the model cache, as a first scoring run
would. Then `samples` x `features` float32 values and a sample id column are written with `write_wide`
to Arrow IPC and Parquet in `--dir` (default: the temp dir; about 2.9 GB and 2.1 GB at full size). Each
variant runs in a fresh process, so its peak RSS is its own, on a file in the page cache:

- baseline: the whole file read into one matrix with pyarrow (per record batch or row group: the
  features selected, converted in C), then one `predict` of the model already loaded from the cache;
- score: `score("models:/<name>@champion", file, out.parquet, id_column="sample_id")` after
  `mlflow_init` and scikit-learn's import (off the clock in both, as in a warm process): resolving the
  alias, verifying the cached model, loading it, checking the columns, reading, predicting and writing
  batch by batch.

Prints one table; `--json` writes the rows too.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

MODEL_NAME = "benchmark-scoring-clock"
ID_COLUMN = "sample_id"
FORMATS = ("arrow", "parquet")
TRAIN_SAMPLES = 100


@dataclass
class Row:
    format: str
    variant: str
    seconds: float
    peak_rss_mb: float
    rows: int


@dataclass
class Prepared:
    model_id: str
    files: dict[str, str]
    write_seconds: dict[str, float]
    file_bytes: dict[str, int]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def prepare(args: argparse.Namespace) -> Prepared:
    """Train and register the model, fill the model cache, write the scoring files."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import Ridge

    from mlflow_platform.demo import synthetic_methylation
    from toolkit import get_model_s3_path, last_tracked_run, mlflow_init, mlflow_track_regressor, write_wide
    from toolkit.model_cache import fetch_model
    from toolkit.s3_files import s3_client

    session = mlflow_init(experiment_name="benchmark-scoring", big_schema=True, autolog=False)
    x_train, y_train, x_test, y_test = synthetic_methylation(TRAIN_SAMPLES, args.features, test_fraction=0.02)

    @mlflow_track_regressor(run_name=f"scoring-{args.features}", big_schema=True, registered_model_name=MODEL_NAME)
    def train(X_train: Any, y_train: Any, X_test: Any, y_test: Any) -> Any:
        return Ridge(alpha=1.0).fit(X_train, y_train)

    train(x_train, y_train, x_test, y_test)
    tracked = last_tracked_run()
    assert tracked is not None
    assert tracked.model_id is not None
    import mlflow

    client = mlflow.MlflowClient()
    version = max(int(v.version) for v in client.search_model_versions(f"name = '{MODEL_NAME}'"))
    client.set_registered_model_alias(MODEL_NAME, "champion", str(version))
    path, _ = get_model_s3_path(model_id=tracked.model_id)
    fetch_model(path, model_id=tracked.model_id, s3=s3_client(session.config))
    del x_train, x_test

    values = np.random.default_rng(1).random((args.samples, args.features), dtype=np.float32)
    frame = pd.DataFrame(values, columns=[f"cg{i:08d}" for i in range(args.features)], copy=False)
    frame.insert(0, ID_COLUMN, [f"GSM{i:07d}" for i in range(args.samples)])
    directory = Path(args.dir)
    directory.mkdir(parents=True, exist_ok=True)
    files, seconds, sizes = {}, {}, {}
    for kind in args.formats:
        target = directory / f"samples.{kind}"
        start = time.perf_counter()
        write_wide(frame, target)
        seconds[kind] = time.perf_counter() - start
        files[kind] = str(target)
        sizes[kind] = target.stat().st_size
    return Prepared(tracked.model_id, files, seconds, sizes)


def run_baseline(path: str, kind: str, model_id: str) -> Row:
    """The whole file in one matrix, then one predict; the model is loaded before the clock starts."""
    import mlflow.pyfunc
    import numpy as np
    import pyarrow as pa
    import pyarrow.ipc
    import pyarrow.parquet as pq

    from toolkit.arrays import feature_names_warning_silenced
    from toolkit.model_cache import cache_root

    model = mlflow.pyfunc.load_model(str(cache_root() / model_id))
    start = time.perf_counter()
    parts = []
    if kind == "arrow":
        reader = pyarrow.ipc.open_file(pa.memory_map(path))
        features = [i for i, name in enumerate(reader.schema.names) if name != ID_COLUMN]
        for index in range(reader.num_record_batches):
            parts.append(np.asarray(reader.get_batch(index).select(features).to_tensor(row_major=False)))
    else:
        parquet = pq.ParquetFile(path)
        names = [name for name in parquet.schema_arrow.names if name != ID_COLUMN]
        for batch in parquet.iter_batches(batch_size=1 << 20, columns=names):
            parts.append(np.asarray(batch.to_tensor(row_major=False)))
    matrix = np.concatenate(parts)
    del parts
    with feature_names_warning_silenced():
        predictions = model.predict(matrix)
    return Row(kind, "baseline", time.perf_counter() - start, peak_rss_mb(), len(predictions))


def run_score(path: str, kind: str, output: str) -> Row:
    """`score` after `mlflow_init` (a pipeline signs in once)."""
    import sklearn.linear_model  # noqa: F401 - imported off the clock, as the baseline's model load does

    from toolkit import mlflow_init, score

    mlflow_init(experiment_name="benchmark-scoring", autolog=False)
    start = time.perf_counter()
    report = score(f"models:/{MODEL_NAME}@champion", path, output, id_column=ID_COLUMN)
    seconds = time.perf_counter() - start
    assert report.model_files_downloaded == 0, "the model should come from the cache"
    return Row(kind, "score", seconds, peak_rss_mb(), report.rows)


def _ensure_local_platform() -> None:
    from rich.console import Console

    from mlflow_platform.local.platform import LocalPlatform

    console = Console(stderr=True)
    with console.status("starting the local platform") as status:
        LocalPlatform().up(report=lambda message: status.update(message))


def _child(step: list[str]) -> dict[str, Any]:
    command = [sys.executable, __file__, *step]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"{' '.join(step)} failed:\n{result.stderr[-4000:]}")
    payload: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return payload


def print_table(rows: list[Row], prepared: Prepared, args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"scoring {args.samples:,} x {args.features:,} float32 (+ a sample id column), Ridge")
    for column in (
        "input",
        "file MB",
        "write_wide s",
        "baseline s",
        "score s",
        "score / baseline",
        "baseline peak RSS MB",
        "score peak RSS MB",
    ):
        table.add_column(column, justify="right")
    for kind in args.formats:
        baseline = next(r for r in rows if r.format == kind and r.variant == "baseline")
        scored = next(r for r in rows if r.format == kind and r.variant == "score")
        table.add_row(
            kind,
            f"{prepared.file_bytes[kind] / 1e6:,.0f}",
            f"{prepared.write_seconds[kind]:.1f}",
            f"{baseline.seconds:.1f}",
            f"{scored.seconds:.1f}",
            f"{scored.seconds / baseline.seconds:.2f}x",
            f"{baseline.peak_rss_mb:,.0f}",
            f"{scored.peak_rss_mb:,.0f}",
        )
    console = Console(width=200)
    console.print(table)
    console.print(f"data alone: {args.samples * args.features * 4 / 1e6:,.0f} MB of float32 values")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--features", type=int, default=500_000)
    parser.add_argument("--formats", nargs="+", choices=FORMATS, default=list(FORMATS))
    parser.add_argument("--dir", default=str(Path(tempfile.gettempdir()) / "mlflow-platform-scoring-benchmark"))
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    parser.add_argument("--step", choices=("prepare", "baseline", "score"), help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--kind", choices=FORMATS, help=argparse.SUPPRESS)
    parser.add_argument("--model-id", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.step == "prepare":
        print(json.dumps(asdict(prepare(args))))
        return
    if args.step == "baseline":
        print(json.dumps(asdict(run_baseline(args.path, args.kind, args.model_id))))
        return
    if args.step == "score":
        print(json.dumps(asdict(run_score(args.path, args.kind, str(Path(args.dir) / f"scores-{args.kind}.parquet")))))
        return

    _ensure_local_platform()
    print("training, registering, writing the files ...", file=sys.stderr, flush=True)
    sizes = ["--samples", str(args.samples), "--features", str(args.features), "--dir", args.dir]
    prepared = Prepared(**_child(["--step", "prepare", *sizes, "--formats", *args.formats]))
    print(f"  {asdict(prepared)}", file=sys.stderr, flush=True)
    rows = []
    for kind in args.formats:
        for variant in ("baseline", "score"):
            print(f"running {variant} on {kind} ...", file=sys.stderr, flush=True)
            step = ["--step", variant, "--path", prepared.files[kind], "--kind", kind, "--dir", args.dir]
            rows.append(Row(**_child([*step, "--model-id", prepared.model_id])))
            print(f"  {asdict(rows[-1])}", file=sys.stderr, flush=True)
    print_table(rows, prepared, args)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")


if __name__ == "__main__":
    main()
