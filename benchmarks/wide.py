"""Wide-data benchmark: what tracking a very wide model costs next to fitting it.

    uv run python benchmarks/wide.py                          # 100 x 500,000, Ridge
    uv run python benchmarks/wide.py --features 50000 --with-stock

Each variant runs in a fresh process (so its peak RSS is its own) on the same seeded data, against the
local platform (started if it is not running). Prints one table; `--json` writes the rows too.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ESTIMATORS = ("ridge", "elasticnet", "lasso", "random_forest", "hist_gradient_boosting")
VARIANTS = ("bare", "tracked", "tracked_evaluate", "stock_autolog")
SCHEMA_SUFFIX = ".json.gz"


@dataclass
class Row:
    variant: str
    seconds: float
    peak_rss_mb: float
    mlmodel_bytes: int | None = None
    schema_bytes: int | None = None
    model_files_bytes: int | None = None
    s3_path_seconds: float | None = None
    s3_path_requests: int | None = None
    init_seconds: float | None = None


def make_estimator(name: str) -> Any:
    from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
    from sklearn.linear_model import ElasticNet, Lasso, Ridge

    return {
        "ridge": lambda: Ridge(alpha=1.0),
        "elasticnet": lambda: ElasticNet(alpha=0.01, max_iter=200),
        "lasso": lambda: Lasso(alpha=0.01, max_iter=200),
        "random_forest": lambda: RandomForestRegressor(n_estimators=50, max_features=0.01, n_jobs=-1),
        "hist_gradient_boosting": lambda: HistGradientBoostingRegressor(max_iter=50),
    }[name]()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_variant(variant: str, samples: int, features: int, estimator: str) -> Row:
    """One variant in this process; the data is made before the clock starts."""
    from mlflow_platform.demo import synthetic_methylation

    x_train, y_train, x_test, y_test = synthetic_methylation(samples, features, test_fraction=0.2)

    make_estimator(estimator)  # scikit-learn's import stays off the clock, as in a warm notebook

    def train(X_train: Any, y_train: Any, X_test: Any, y_test: Any) -> Any:
        return make_estimator(estimator).fit(X_train, y_train)

    if variant == "bare":
        start = time.perf_counter()
        train(x_train, y_train, x_test, y_test)
        return Row(variant, time.perf_counter() - start, peak_rss_mb())

    if variant == "stock_autolog":
        from toolkit import mlflow_init

        init_start = time.perf_counter()
        mlflow_init(experiment_name="benchmark-wide", autolog=False)
        import mlflow

        mlflow.sklearn.autolog()
        init_seconds = time.perf_counter() - init_start
        start = time.perf_counter()
        with mlflow.start_run(run_name=f"stock-{estimator}-{features}"):
            train(x_train, y_train, x_test, y_test)
        return Row(variant, time.perf_counter() - start, peak_rss_mb(), init_seconds=init_seconds)

    from toolkit import get_model_s3_path, mlflow_init, mlflow_track_regressor

    init_start = time.perf_counter()
    mlflow_init(experiment_name="benchmark-wide", autolog=True, big_schema=True)
    init_seconds = time.perf_counter() - init_start
    tracked = mlflow_track_regressor(
        run_name=f"{variant}-{estimator}-{features}", big_schema=True, evaluate=variant == "tracked_evaluate"
    )(train)
    start = time.perf_counter()
    tracked(x_train, y_train, x_test, y_test)
    seconds = time.perf_counter() - start
    rss = peak_rss_mb()

    import mlflow

    run = mlflow.last_active_run()
    assert run is not None
    from unittest import mock

    from requests.adapters import HTTPAdapter

    # Every request MLflow's REST client sends goes through HTTPAdapter.send: count them, send them as usual.
    with mock.patch.object(HTTPAdapter, "send", autospec=True, side_effect=HTTPAdapter.send) as sent:
        path_start = time.perf_counter()
        model_path, _run_id = get_model_s3_path(run_id=run.info.run_id)
        path_seconds = time.perf_counter() - path_start
    sizes = _s3_sizes(model_path)
    return Row(
        variant,
        seconds,
        rss,
        mlmodel_bytes=sizes.get("MLmodel"),
        schema_bytes=next((size for key, size in sizes.items() if key.endswith(SCHEMA_SUFFIX)), None),
        model_files_bytes=sum(sizes.values()),
        s3_path_seconds=path_seconds,
        s3_path_requests=sent.call_count,
        init_seconds=init_seconds,
    )


def _s3_sizes(s3_path: str) -> dict[str, int]:
    """Object sizes under the model's S3 path, keyed by the path relative to it."""
    from urllib.parse import urlsplit

    from toolkit.aws import client_for
    from toolkit.resolve import resolve_client_config

    parts = urlsplit(s3_path)
    prefix = parts.path.lstrip("/").rstrip("/") + "/"
    s3 = client_for("s3", resolve_client_config().config)
    sizes: dict[str, int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=parts.netloc, Prefix=prefix):
        for item in page.get("Contents", []):
            sizes[item["Key"][len(prefix) :]] = item["Size"]
    return sizes


def import_seconds(statement: str) -> float:
    """How long `statement` takes in a fresh interpreter, best of three."""
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    runs = [
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
        for _ in range(3)
    ]
    return min(runs)


IMPORTS = ("import toolkit", "from toolkit import mlflow_init, mlflow_track_regressor, get_model_s3_path")


def _ensure_local_platform() -> None:
    from rich.console import Console

    from mlflow_platform.local.platform import LocalPlatform

    console = Console(stderr=True)
    with console.status("starting the local platform") as status:
        LocalPlatform().up(report=lambda message: status.update(message))


def _fmt(value: float | int | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}{unit}"
    return f"{value:,}{unit}"


def print_table(rows: list[Row], args: argparse.Namespace, imports: dict[str, float]) -> None:
    from rich.console import Console
    from rich.table import Table

    bare = next(r for r in rows if r.variant == "bare")
    tracked = next((r for r in rows if r.variant == "tracked"), None)
    table = Table(title=f"{args.samples} x {args.features:,} float32, {args.estimator}")
    for column in (
        "variant",
        "wall s",
        "overhead / bare fit",
        "evaluate adds / bare fit",
        "peak RSS MB",
        "RSS / bare",
        "MLmodel B",
        "schema B",
        "model files B",
        "get_model_s3_path",
    ):
        table.add_column(column, justify="right")
    for row in rows:
        overhead = None if row is bare else (row.seconds - bare.seconds) / bare.seconds
        evaluate_adds = None
        if row.variant == "tracked_evaluate" and tracked is not None:
            evaluate_adds = (row.seconds - tracked.seconds) / bare.seconds
        path = "-" if row.s3_path_seconds is None else f"{row.s3_path_seconds:.3f} s, {row.s3_path_requests} req"
        table.add_row(
            row.variant,
            _fmt(row.seconds),
            _fmt(overhead, "x"),
            _fmt(evaluate_adds, "x"),
            _fmt(row.peak_rss_mb),
            _fmt(row.peak_rss_mb / bare.peak_rss_mb, "x"),
            _fmt(row.mlmodel_bytes),
            _fmt(row.schema_bytes),
            _fmt(row.model_files_bytes),
            path,
        )
    console = Console(width=200)
    console.print(table)
    for statement, seconds in imports.items():
        console.print(f"`{statement}`: {seconds:.3f} s (fresh interpreter, best of 3)")
    inits = [r.init_seconds for r in rows if r.init_seconds is not None]
    if inits:
        console.print(f"mlflow_init (imports MLflow, signs in): {min(inits):.2f} s, once per notebook session")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--features", type=int, default=500_000)
    parser.add_argument("--estimator", choices=ESTIMATORS, default="ridge")
    parser.add_argument("--with-stock", action="store_true", help="also time stock mlflow.sklearn.autolog()")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)  # one child process
    args = parser.parse_args()

    if args.variant:
        print(json.dumps(asdict(run_variant(args.variant, args.samples, args.features, args.estimator))))
        return

    _ensure_local_platform()
    variants = [v for v in VARIANTS if v != "stock_autolog" or args.with_stock]
    rows = []
    for variant in variants:
        print(f"running {variant} ...", file=sys.stderr, flush=True)
        command = [sys.executable, __file__, "--variant", variant, "--samples", str(args.samples)]
        command += ["--features", str(args.features), "--estimator", args.estimator]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            sys.exit(f"variant {variant} failed:\n{result.stderr[-4000:]}")
        rows.append(Row(**json.loads(result.stdout.strip().splitlines()[-1])))
    print_table(rows, args, {statement: import_seconds(statement) for statement in IMPORTS})
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")


if __name__ == "__main__":
    main()
