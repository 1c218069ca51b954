"""MLflow's request auth provider `aws-iam`: plain MLflow signs in with the caller's AWS identity.

The package registers it under MLflow's entry-point group `mlflow.request_auth_provider` (pyproject.toml),
so `MLFLOW_TRACKING_AUTH=aws-iam` makes every MLflow client (the `mlflow` command, `mlflow.MlflowClient()`,
a scoring job) send an identity token (`toolkit.aws_auth`), with no toolkit call. Modelled on MLflow's
own `kubernetes` provider. MLflow loads it only when some provider is asked for, so importing MLflow here
costs nothing extra.
"""

from __future__ import annotations

from mlflow.tracking.request_auth.abstract_request_auth_provider import RequestAuthProvider

from toolkit.aws_auth import AUTH_NAME, AwsIamAuth

__all__ = ["AwsIamRequestAuthProvider"]


class AwsIamRequestAuthProvider(RequestAuthProvider):
    """`MLFLOW_TRACKING_AUTH=aws-iam`: an `Authorization: Bearer` identity token on every request."""

    def get_name(self) -> str:
        return AUTH_NAME

    def get_auth(self) -> AwsIamAuth:
        return AwsIamAuth()
