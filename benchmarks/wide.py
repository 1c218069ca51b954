"""Wide-data benchmark: what tracking a very wide model costs next to fitting it, near and far from the server.

    uv run python benchmarks/wide.py                          # 100 x 500,000, Ridge, server on this machine
    uv run python benchmarks/wide.py --rtt-ms 50              # the same, 50 ms round trip to the server
    uv run python benchmarks/wide.py --features 1000000 --rtt-ms 50
    uv run python benchmarks/wide.py --features 50000 --with-stock

Each variant runs in a fresh process (so its peak RSS is its own) on the same seeded data, against the
local platform (started if it is not running). With `--rtt-ms N` the tracked variants talk to the server
through benchmarks/latency_proxy.py, which delays each direction by N/2 ms, so the cost of distance is
measured rather than guessed (their connections to the server's address open at the proxy; URLs and
credentials stay the server's).

The bare fit is timed cold (the first fit in its process, as a script would see it) and warm (best of
`--repeats` fits in the same process, as a notebook's second fit would see it). Every variant runs with
the same number of BLAS threads (`--blas-threads`, default 1), so the fit inside a tracked call is the
bare fit. Overheads are relative to the warm bare fit: (tracked call - warm bare fit) / warm bare fit.
The tracked call is timed as the first decorated call after `mlflow_init` (after one untracked warm-up
fit, so the tracking's one-time costs are in it and a cold fit's are not) and warm (best of the
following `--repeats` - 1 calls). Each tracked variant also counts the HTTP requests its first call sent
to the server (benchmarks/http_requests.py), then walks the rest of a model's life: `get_model_s3_path`,
loading the model from S3, checking a scoring frame's columns and scoring it. A first call is one sample
per process, so `--rounds N` runs each variant in N processes and reports the median first call (and the
best warm times). Prints tables; `--json` writes the rows too.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:  # run as a script: make `benchmarks.*` importable
    sys.path.insert(0, str(_REPO))

ESTIMATORS = ("ridge", "elasticnet", "lasso", "random_forest", "hist_gradient_boosting")
VARIANTS = ("bare", "tracked", "tracked_evaluate", "stock_autolog")
SCHEMA_SUFFIX = ".json.gz"
# The child processes must not reach for the internet: MLflow's usage telemetry is off.
_CHILD_ENVIRONMENT = {"MLFLOW_DISABLE_TELEMETRY": "true"}
# What sets the thread count of the BLAS and OpenMP libraries numpy and scikit-learn use.
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass
class Row:
    variant: str
    seconds: float
    peak_rss_mb: float
    warm_seconds: float | None = None
    requests: int | None = None
    request_list: list[tuple[str, int]] = field(default_factory=list)
    mlmodel_bytes: int | None = None
    schema_bytes: int | None = None
    model_files_bytes: int | None = None
    s3_path_seconds: float | None = None
    s3_path_requests: int | None = None
    load_seconds: float | None = None
    score_seconds: float | None = None
    scores_match: bool | None = None
    path_peak_rss_mb: float | None = None
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


def run_variant(args: argparse.Namespace) -> Row:
    """One variant in this process; the data is made before the clock starts."""
    from mlflow_platform.demo import synthetic_methylation

    variant: str = args.variant
    x_train, y_train, x_test, y_test = synthetic_methylation(args.samples, args.features, test_fraction=0.2)

    make_estimator(args.estimator)  # scikit-learn's import stays off the clock, as in a warm notebook

    def train(X_train: Any, y_train: Any, X_test: Any, y_test: Any) -> Any:
        return make_estimator(args.estimator).fit(X_train, y_train)

    if variant == "bare":
        times = []
        for _ in range(max(1, args.repeats) + 1):
            start = time.perf_counter()
            train(x_train, y_train, x_test, y_test)
            times.append(time.perf_counter() - start)
        return Row(variant, times[0], peak_rss_mb(), warm_seconds=min(times[1:]))

    if variant == "stock_autolog":
        from toolkit import mlflow_init

        init_start = time.perf_counter()
        mlflow_init(experiment_name=args.experiment, autolog=False, config=_client_config(args.tracking_uri))
        import mlflow

        mlflow.sklearn.autolog()
        init_seconds = time.perf_counter() - init_start
        start = time.perf_counter()
        with mlflow.start_run(run_name=f"stock-{args.estimator}-{args.features}"):
            train(x_train, y_train, x_test, y_test)
        return Row(variant, time.perf_counter() - start, peak_rss_mb(), init_seconds=init_seconds)

    from benchmarks.http_requests import counted_requests, summary
    from toolkit import mlflow_init, mlflow_track_regressor

    # One untracked fit first (before autolog is on), so the fit inside the first tracked call is as warm
    # as the warm bare fit: what the first call adds beyond it is the tracking's own, one-time costs
    # included. The bare row shows what a cold fit costs.
    train(x_train, y_train, x_test, y_test)
    init_start = time.perf_counter()
    session = mlflow_init(
        experiment_name=args.experiment, autolog=True, big_schema=True, config=_client_config(args.tracking_uri)
    )
    init_seconds = time.perf_counter() - init_start
    tracked = mlflow_track_regressor(
        run_name=f"{variant}-{args.estimator}-{args.features}",
        big_schema=True,
        evaluate=variant == "tracked_evaluate",
    )(train)
    with counted_requests(session.tracking_uri) as sent:
        start = time.perf_counter()
        model = tracked(x_train, y_train, x_test, y_test)
        seconds = time.perf_counter() - start
    rss = peak_rss_mb()
    row = Row(variant, seconds, rss, requests=len(sent), request_list=summary(sent), init_seconds=init_seconds)

    from toolkit import last_tracked_run

    last = last_tracked_run()
    if last is None or last.run_id is None:
        raise RuntimeError("the tracked call did not track")
    _whole_path(row, last.run_id, session.tracking_uri, model, x_test)

    warm = []
    for _ in range(max(1, args.repeats) - 1):
        start = time.perf_counter()
        tracked(x_train, y_train, x_test, y_test)
        warm.append(time.perf_counter() - start)
    row.warm_seconds = min(warm) if warm else None
    return row


def _client_config(tracking_uri: str | None) -> Any:
    """The local platform's client config (its profile), for the server at `tracking_uri`."""
    from toolkit.resolve import resolve_client_config

    config = resolve_client_config().config
    return config.model_copy(update={"tracking_uri": tracking_uri}) if tracking_uri else config


def _whole_path(row: Row, run_id: str, tracking_uri: str, model: Any, x_test: Any) -> None:
    """What comes after training: find the model in S3, load it from there, check and score a frame."""
    import mlflow
    import numpy as np

    from benchmarks.http_requests import counted_requests
    from toolkit import check_schema, get_model_s3_path, load_model_schema

    with counted_requests(tracking_uri) as sent:
        start = time.perf_counter()
        model_path, _run_id = get_model_s3_path(run_id=run_id)
        row.s3_path_seconds = time.perf_counter() - start
    row.s3_path_requests = len(sent)

    start = time.perf_counter()
    loaded = mlflow.pyfunc.load_model(model_path)
    schema = load_model_schema(model_uri=model_path)
    row.load_seconds = time.perf_counter() - start

    start = time.perf_counter()
    predictions = loaded.predict(check_schema(x_test, schema))
    row.score_seconds = time.perf_counter() - start
    row.scores_match = bool(np.allclose(np.asarray(predictions), model.predict(x_test), rtol=1e-5))
    row.path_peak_rss_mb = peak_rss_mb()

    sizes = _s3_sizes(model_path)
    row.mlmodel_bytes = sizes.get("MLmodel")
    row.schema_bytes = next((size for key, size in sizes.items() if key.endswith(SCHEMA_SUFFIX)), None)
    row.model_files_bytes = sum(sizes.values())


def _s3_sizes(s3_path: str) -> dict[str, int]:
    """Object sizes under the model's S3 path, keyed by the path relative to it."""
    from urllib.parse import urlsplit

    from toolkit.aws import client_for
    from toolkit.session import current_session

    session = current_session()
    if session is None or session.config is None:
        raise RuntimeError("mlflow_init has not run with the local platform's config")
    parts = urlsplit(s3_path)
    prefix = parts.path.lstrip("/").rstrip("/") + "/"
    s3 = client_for("s3", session.config)
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


def _local_tracking_uri() -> str:
    """Start the local platform if needed; its tracking URI."""
    from rich.console import Console

    from mlflow_platform.local.platform import LocalPlatform

    console = Console(stderr=True)
    platform = LocalPlatform()
    with console.status("starting the local platform") as status:
        platform.up(report=lambda message: status.update(message))
    return platform.client_config().tracking_uri


def _route_through_proxy(tracking_uri: str, proxy: str) -> None:
    """This process reaches the server at `tracking_uri` through the proxy at `proxy` (host:port)."""
    from urllib.parse import urlsplit

    from benchmarks.latency_proxy import Target, parse_target, route_connections

    server = urlsplit(tracking_uri)
    if server.hostname is None or server.port is None:
        raise ValueError(f"{tracking_uri}: expected a URL with a host and a port")
    route_connections(Target(server.hostname, server.port), parse_target(proxy))


def _run_child(variant: str, args: argparse.Namespace, tracking_uri: str, proxy: str | None) -> Row:
    """One variant in a fresh process; its row."""
    command = [sys.executable, __file__, "--variant", variant, "--samples", str(args.samples)]
    command += ["--features", str(args.features), "--estimator", args.estimator]
    command += ["--repeats", str(args.repeats), "--tracking-uri", tracking_uri, "--experiment", args.experiment]
    if proxy:
        command += ["--route-via", proxy]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=False,
        timeout=args.timeout,
        env={**os.environ, **_child_environment(args.blas_threads)},
    )
    if result.returncode != 0:
        sys.exit(f"variant {variant} failed:\n{result.stderr[-4000:]}")
    fields = json.loads(result.stdout.strip().splitlines()[-1])
    fields["request_list"] = [tuple(pair) for pair in fields["request_list"]]
    return Row(**fields)


def combine_rounds(rounds: list[Row]) -> Row:
    """One row from several processes of the same variant: first calls (a single sample per process) by
    their median, warm times by their best, peak RSS by its largest; the rest from the median round."""
    import statistics

    by_first_call = sorted(rounds, key=lambda row: row.seconds)
    combined = Row(**asdict(by_first_call[(len(rounds) - 1) // 2]))
    combined.seconds = statistics.median(row.seconds for row in rounds)
    warm = [row.warm_seconds for row in rounds if row.warm_seconds is not None]
    combined.warm_seconds = min(warm) if warm else None
    combined.peak_rss_mb = max(row.peak_rss_mb for row in rounds)
    requests = {row.requests for row in rounds}
    if len(requests) > 1:
        print(
            f"{combined.variant}: the rounds sent different numbers of requests: {sorted(map(str, requests))}",
            file=sys.stderr,
        )
    return combined


def _child_environment(blas_threads: int) -> dict[str, str]:
    """Telemetry off; BLAS threads fixed, the same for every variant. With two BLAS threads on a 2-core
    machine that other work shares, the same fit's time varies severalfold from run to run."""
    environment = dict(_CHILD_ENVIRONMENT)
    if blas_threads > 0:
        environment.update(dict.fromkeys(_THREAD_VARIABLES, str(blas_threads)))
    return environment


class LatencyProxy:
    """benchmarks/latency_proxy.py in its own process (its work must not share this one's clock)."""

    def __init__(self, tracking_uri: str, rtt_ms: float, max_seconds: float) -> None:
        from urllib.parse import urlsplit

        target = urlsplit(tracking_uri).netloc
        command = [sys.executable, str(Path(__file__).with_name("latency_proxy.py")), "--target", target]
        command += ["--rtt-ms", str(rtt_ms), "--max-seconds", str(max_seconds)]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()  # "listening on 127.0.0.1:<port>"
        if not line.startswith("listening on "):
            self.close()
            sys.exit(f"the latency proxy did not start: {line!r}")
        self.address = line.removeprefix("listening on ")  # host:port

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def _fmt(value: float | int | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.2f}{unit}"
    return f"{value:,}{unit}"


def _ratio(value: float | None, bare: float | None) -> float | None:
    return None if value is None or not bare else (value - bare) / bare


def print_tables(rows: list[Row], args: argparse.Namespace, imports: dict[str, float]) -> None:
    from rich.console import Console
    from rich.table import Table

    bare = next(r for r in rows if r.variant == "bare")
    warm_bare = bare.warm_seconds or bare.seconds
    tracked = next((r for r in rows if r.variant == "tracked"), None)
    rtt = f"{args.rtt_ms:g} ms round trip" if args.rtt_ms else "server on this machine"
    if args.blas_threads > 0:
        rtt += f", {args.blas_threads} BLAS thread{'s' if args.blas_threads > 1 else ''}"
    if args.rounds > 1:
        rtt += f", {args.rounds} processes per variant"
    load = os.getloadavg()
    console = Console(width=200)

    table = Table(title=f"{args.samples} x {args.features:,} float32, {args.estimator}, {rtt}")
    for column in (
        "variant",
        "first call s",
        "warm s",
        "overhead / warm bare",
        "warm overhead / warm bare",
        "evaluate adds / warm bare",
        "HTTP requests",
        "peak RSS MB",
        "RSS / bare",
    ):
        table.add_column(column, justify="right")
    for row in rows:
        evaluate_adds = None
        if row.variant == "tracked_evaluate" and tracked is not None:
            evaluate_adds = (row.seconds - tracked.seconds) / warm_bare
        table.add_row(
            "bare fit (first / warm)" if row is bare else row.variant,
            _fmt(row.seconds),
            _fmt(row.warm_seconds),
            "-" if row is bare else _fmt(_ratio(row.seconds, warm_bare), "x"),
            "-" if row is bare else _fmt(_ratio(row.warm_seconds, warm_bare), "x"),
            _fmt(evaluate_adds, "x"),
            _fmt(row.requests),
            _fmt(row.peak_rss_mb),
            _fmt(row.peak_rss_mb / bare.peak_rss_mb, "x"),
        )
    console.print(table)
    console.print(
        f"load average when finished: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1, 5, 15 min; {os.cpu_count()} CPUs)"
    )

    tracked_rows = [r for r in rows if r.requests is not None]
    if tracked_rows:
        path = Table(title="after training: the model's S3 path, loading it from S3, scoring")
        for column in (
            "variant",
            "get_model_s3_path",
            "load s",
            "check + score s",
            "same predictions",
            "peak RSS MB",
            "MLmodel B",
            "schema B",
            "model files B",
        ):
            path.add_column(column, justify="right")
        for row in tracked_rows:
            path.add_row(
                row.variant,
                "-" if row.s3_path_seconds is None else f"{row.s3_path_seconds:.3f} s, {row.s3_path_requests} req",
                _fmt(row.load_seconds),
                _fmt(row.score_seconds),
                _fmt(row.scores_match),
                _fmt(row.path_peak_rss_mb),
                _fmt(row.mlmodel_bytes),
                _fmt(row.schema_bytes),
                _fmt(row.model_files_bytes),
            )
        console.print(path)
        for row in tracked_rows:
            console.print(f"HTTP requests of the first {row.variant} call ({row.requests}):")
            for label, count in row.request_list:
                console.print(f"  {count} x {label}")

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
    parser.add_argument("--rtt-ms", type=float, default=0.0, help="round trip to the server, in ms (default 0)")
    parser.add_argument("--repeats", type=int, default=3, help="warm fits and calls: best of this many (default 3)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="processes per variant: first calls by their median, warm times by their best (default 1)",
    )
    parser.add_argument(
        "--blas-threads",
        type=int,
        default=1,
        help="BLAS/OpenMP threads in every variant (default 1; 0: the libraries' own default)",
    )
    parser.add_argument("--with-stock", action="store_true", help="also time stock mlflow.sklearn.autolog()")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds allowed per variant (default 1800)")
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)  # one child process
    parser.add_argument("--tracking-uri", help=argparse.SUPPRESS)  # the child's server
    parser.add_argument("--route-via", help=argparse.SUPPRESS)  # host:port of the latency proxy, if any
    parser.add_argument(
        "--experiment",
        help="experiment to track into (default: a new one per run of the script, which the signed-in user owns)",
    )
    args = parser.parse_args()
    if args.rtt_ms < 0:
        sys.exit("--rtt-ms must be >= 0")
    if args.rounds < 1:
        sys.exit("--rounds must be >= 1")

    if args.variant:
        if args.route_via:
            _route_through_proxy(args.tracking_uri, args.route_via)
        print(json.dumps(asdict(run_variant(args))))
        return

    tracking_uri = _local_tracking_uri()
    args.experiment = args.experiment or time.strftime("benchmark-wide-%Y%m%dT%H%M%SZ", time.gmtime())
    variants = [v for v in VARIANTS if v != "stock_autolog" or args.with_stock]
    proxy = LatencyProxy(tracking_uri, args.rtt_ms, max_seconds=args.timeout * len(variants)) if args.rtt_ms else None
    rows = []
    try:
        for variant in variants:
            rounds = []
            for number in range(1, args.rounds + 1):
                print(f"running {variant} ({number}/{args.rounds}) ...", file=sys.stderr, flush=True)
                row = _run_child(variant, args, tracking_uri, proxy.address if proxy else None)
                warm = "-" if row.warm_seconds is None else f"{row.warm_seconds:.2f} s"
                print(f"  first call {row.seconds:.2f} s, warm {warm}", file=sys.stderr, flush=True)
                rounds.append(row)
            rows.append(combine_rounds(rounds))
    finally:
        if proxy is not None:
            proxy.close()
    print_tables(rows, args, {statement: import_seconds(statement) for statement in IMPORTS})
    if args.json:
        payload = {"rtt_ms": args.rtt_ms, "load_average": os.getloadavg(), "rows": [asdict(r) for r in rows]}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
