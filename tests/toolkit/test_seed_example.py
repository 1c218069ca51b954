"""The notebook workflow the toolkit was built for, end to end against the local platform."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.toolkit.data import regression


def test_seed_example(tracking: Callable[..., Any]) -> None:
    import mlflow
    import numpy as np
    from sklearn.linear_model import ElasticNetCV

    from toolkit import get_model_s3_path, mlflow_track_regressor

    session = tracking(big_schema=True)  # everything else from the active profile `local`
    assert session.config is not None
    assert session.credentials_source.startswith("AWS identity")

    X_train, y_train, X_test, y_test = regression(rows=80, columns=300)

    @mlflow_track_regressor(run_name="elasticnet-clock", big_schema=True, evaluate=True)
    def train(X_train: Any, y_train: Any, X_test: Any, y_test: Any) -> Any:
        # scikit-learn 1.9 removed n_alphas=; alphas=<int> is the number of alphas along the path.
        return ElasticNetCV(alphas=20, l1_ratio=0.5, cv=3, max_iter=5000).fit(X_train, y_train)

    model = train(X_train, y_train, X_test, y_test)
    assert isinstance(model, ElasticNetCV)

    run = mlflow.last_active_run()
    assert run is not None
    assert run.info.run_name == "elasticnet-clock"
    assert run.info.status == "FINISHED"
    assert {"r2_score", "mean_absolute_error", "root_mean_squared_error"} <= set(run.data.metrics)

    path, run_id = get_model_s3_path(run_id=run.info.run_id)
    assert run_id == run.info.run_id
    assert path.startswith(f"s3://{session.config.artifact_bucket}/{run.info.experiment_id}/models/m-")
    assert path.endswith("/artifacts")

    loaded = mlflow.pyfunc.load_model(path)
    np.testing.assert_allclose(loaded.predict(X_test), model.predict(X_test), rtol=1e-6)
