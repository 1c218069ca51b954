"""The demo's training part: a synthetic methylation-clock regression tracked through the toolkit.

`mlflow-platform demo` (in `mlflow_platform.local.cli`) brings the local platform up, then calls `train_and_score`,
which does what a notebook and a scoring pipeline would: `mlflow_init`, a decorated training function
(`mlflow_track_regressor(big_schema=True, evaluate=True)`), `get_model_s3_path`, then loading the model
from that S3 path, checking a scoring frame against the training columns, and predicting.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from toolkit.client_config import ClientConfig

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

EXPERIMENT = "methylation-clock-demo"


def synthetic_methylation(
    samples: int, features: int, *, test_fraction: float = 0.2, seed: int = 0
) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame, np.ndarray]:
    """Beta values in [0, 1] (float32, one column per CpG site), of which 100 drift with age.

    Like a real epigenetic clock, a few sites gain or lose methylation steadily with age and the rest is
    noise. Returns `(X_train, y_train, X_test, y_test)`; the benchmark uses the same data.
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    n_test = max(2, round(samples * test_fraction))
    total = samples + n_test
    age = rng.uniform(20.0, 80.0, total)
    x = rng.random((total, features), dtype=np.float32)
    clock_sites = rng.choice(features, size=min(100, features), replace=False)
    slopes = rng.choice([-1.0, 1.0], clock_sites.size) * rng.uniform(0.3, 0.6, clock_sites.size)
    drift = 0.5 + np.outer((age - 50.0) / 60.0, slopes) + rng.normal(0.0, 0.05, (total, clock_sites.size))
    x[:, clock_sites] = np.clip(drift, 0.0, 1.0)
    frame = pd.DataFrame(x, columns=[f"cg{i:08d}" for i in range(features)], copy=False)
    return frame.iloc[:samples], age[:samples], frame.iloc[samples:], age[samples:]


def train_and_score(config: ClientConfig, *, samples: int, features: int, console: Console) -> None:
    """Train, track and score the demo model on the platform described by `config`."""
    with console.status(f"generating {samples} samples x {features:,} methylation features"):
        X_train, y_train, X_test, y_test = synthetic_methylation(samples, features)

    with console.status("signing in to MLflow (mlflow_init)"):
        from toolkit import get_model_s3_path, mlflow_init, mlflow_track_regressor

        session = mlflow_init(experiment_name=EXPERIMENT, big_schema=True, stack=config.stack)
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # the demo reports what matters itself

    @mlflow_track_regressor(run_name="methylation-clock", big_schema=True, evaluate=True)
    def train(X_train: pd.DataFrame, y_train: np.ndarray, X_test: pd.DataFrame, y_test: np.ndarray) -> Any:
        from sklearn.linear_model import ElasticNetCV

        return ElasticNetCV(l1_ratio=0.9, alphas=5, cv=3, tol=1e-3, n_jobs=-1).fit(X_train, y_train)

    started = time.perf_counter()
    with console.status("training and tracking (mlflow_track_regressor, big_schema=True, evaluate=True)"):
        model = train(X_train, y_train, X_test, y_test)
    import mlflow

    run = mlflow.last_active_run()
    if run is None:
        console.print("[red]tracking failed; the model was saved to the fallback directory (see the warning)[/]")
        return
    run_id = run.info.run_id
    console.print(
        f"Trained {type(model).__name__} in {time.perf_counter() - started:.1f} s (fit, tracking and evaluation)"
    )
    console.print(f"Run: {session.tracking_uri}/#/experiments/{run.info.experiment_id}/runs/{run_id}")
    metrics = mlflow.get_run(run_id).data.metrics
    table = Table(title="metrics of the run")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name in sorted(metrics):
        table.add_row(name, f"{metrics[name]:.4g}")
    console.print(table)

    model_path, _ = get_model_s3_path(run_id=run_id)
    console.print(f"Model S3 path (get_model_s3_path): {model_path}")
    score_like_a_pipeline(model_path, X_test, y_test, console)


def score_like_a_pipeline(model_path: str, X_test: pd.DataFrame, y_test: np.ndarray, console: Console) -> None:
    """What a scoring pipeline does: load by S3 path, check the frame's columns, predict."""
    import mlflow.pyfunc
    import numpy as np

    from toolkit import check_schema, load_model_schema

    with console.status("loading the model from S3 and scoring held-out samples"):
        model = mlflow.pyfunc.load_model(model_path)
        schema = load_model_schema(model_uri=model_path)
        # Scoring data rarely arrives in training order; the schema check puts it back (or says what's wrong).
        shuffled = X_test[list(reversed(X_test.columns))]
        predictions = np.asarray(model.predict(check_schema(shuffled, schema)), dtype=float)
    error = float(np.mean(np.abs(predictions - y_test)))
    console.print(
        f"Scored {len(predictions)} held-out samples from {model_path}: mean absolute error {error:.2f} years "
        f"(ages {float(np.min(y_test)):.0f}-{float(np.max(y_test)):.0f})"
    )
