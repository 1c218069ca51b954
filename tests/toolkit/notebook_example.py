# mypy: disable-error-code="no-untyped-def,union-attr"
# (notebook code on purpose: untyped, and it knows the run exists)
# The notebook example of the toolkit, as given to README (kept runnable by test_notebook_example.py).
# Prerequisite: `uv run mlflow-platform local up` (it writes and activates the `local` profile).
import mlflow
import numpy as np
import pandas as pd
from sklearn.linear_model import ElasticNetCV

from toolkit import check_schema, get_model_s3_path, load_model_schema, mlflow_init, mlflow_track_regressor

mlflow_init(experiment_name="methylation-clock", big_schema=True)  # URL, login, bucket: from the profile

rng = np.random.default_rng(0)
X = pd.DataFrame(rng.random((120, 20_000), dtype=np.float32), columns=[f"cg{i:08d}" for i in range(20_000)])
age = 40 + 30 * X.iloc[:, :10].mean(axis=1) + rng.normal(0, 1, 120)
X_train, X_test, y_train, y_test = X[:100], X[100:], age[:100], age[100:]


@mlflow_track_regressor(run_name="elasticnet", big_schema=True, evaluate=True)
def train(X_train, y_train, X_test, y_test):
    return ElasticNetCV(alphas=20, l1_ratio=0.5, cv=3).fit(X_train, y_train)


model = train(X_train, y_train, X_test, y_test)
run = mlflow.last_active_run()
print(run.data.metrics["r2_score"])

# A scoring pipeline: the S3 path of the model, its column schema, a frame checked (and reordered) against it.
path, run_id = get_model_s3_path(run_id=run.info.run_id)
schema = load_model_schema(run_id=run_id)
scoring_frame = check_schema(X_test[X_test.columns[::-1]], schema)
print(path, mlflow.pyfunc.load_model(path).predict(scoring_frame)[:3])
