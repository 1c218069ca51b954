"""The demo's training part: a synthetic methylation-clock regression tracked through the toolkit.

`mlflow-platform demo` (in `local_cli`) brings the local platform up, then calls `train_and_score`.
The toolkit's tracking functions (`mlflow_init`, `mlflow_track_regressor`, `get_model_s3_path`) land
with the toolkit issue; until then this function says so and returns. When they land it should:
generate `samples` x `features` float32 data with an age-like target, call `mlflow_init()` with no
arguments (the `local` profile supplies everything), train with
`mlflow_track_regressor(big_schema=True, evaluate=True)`, print the run's URL, its metrics and the
model's S3 path from `get_model_s3_path`, then load the model from that path and score held-out
samples, as a scoring pipeline would.
"""

from __future__ import annotations

from rich.console import Console

from toolkit.client_config import ClientConfig


def train_and_score(config: ClientConfig, *, samples: int, features: int, console: Console) -> None:
    """Train, track and score the demo model on the platform described by `config` (see the module docstring)."""
    console.print(
        f"The training part of the demo ({samples} samples x {features:,} features, tracked with "
        "`mlflow_track_regressor`) arrives with the toolkit issue; the platform above is ready for it. "
        f"In a notebook: `import mlflow; mlflow.set_tracking_uri({config.tracking_uri!r})` "
        f"(credentials in Secrets Manager secret {config.credentials_secret_id!r} at {config.aws_endpoint_url})."
    )
