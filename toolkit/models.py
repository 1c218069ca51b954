"""`get_model_s3_path`: where a logged model's files are in S3, for scoring pipelines that read S3 directly.

In MLflow 3 a logged model is a LoggedModel (`m-<hex>`) whose files live at
`<experiment artifact location>/models/<model_id>/artifacts`, not among the run's artifacts. With proxied
artifacts (the platform's default) that location reads `mlflow-artifacts:/<experiment_id>/models/...`,
which the server maps one to one onto its `--artifacts-destination`, i.e. `ClientConfig.artifact_store_uri`.
Each lookup costs at most two REST calls (one to find the model, one to read its location).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from toolkit.errors import ConfigError, ModelNotFoundError
from toolkit.session import current_session

_LOGGED_MODEL_URI = re.compile(r"^models:/(m-[0-9a-f]+)/?$")


@dataclass(frozen=True)
class _Location:
    """Where a model lives when there is no LoggedModel entity to ask (MLflow 2 style registry versions)."""

    artifact_location: str
    source_run_id: str | None


def mlflow_artifacts_to_s3(artifact_uri: str, artifact_store_uri: str | None) -> str:
    """Map an artifact URI onto S3: `s3://` is returned as is, `mlflow-artifacts:` is joined onto the store."""
    parts = urlsplit(artifact_uri)
    if parts.scheme in ("s3", "s3a"):
        return "s3://" + artifact_uri.split("://", 1)[1].rstrip("/")
    if parts.scheme == "mlflow-artifacts":
        if not artifact_store_uri:
            raise ConfigError(
                "artifact store",
                [
                    f"artifact_store_uri: not set, needed to map {artifact_uri} onto S3; call mlflow_init() with a "
                    "platform profile, or pass artifact_store_uri='s3://<bucket>'"
                ],
            )
        # `mlflow-artifacts:/1/models/...` or `mlflow-artifacts://host:port/1/models/...`: only the path counts.
        return f"{artifact_store_uri.rstrip('/')}/{parts.path.lstrip('/')}".rstrip("/")
    raise ValueError(f"{artifact_uri}: the model is not stored in S3 (scheme {parts.scheme or 'local path'!r})")


def _artifact_store_uri(explicit: str | None) -> str | None:
    if explicit:
        return explicit
    session = current_session()
    if session is not None and session.config is not None:
        return session.config.artifact_store_uri
    return None


def _is_not_found(exc: Exception) -> bool:
    """MLflow's not-found error code, or (from servers that send none) its wording; or its permission
    denied: for a user who is not an admin, MLflow's permission check answers 403 before the resource is
    looked up, so a run that does not exist and one the user may not read look the same."""
    from mlflow.protos.databricks_pb2 import PERMISSION_DENIED, RESOURCE_DOES_NOT_EXIST, ErrorCode

    codes = {ErrorCode.Name(RESOURCE_DOES_NOT_EXIST), ErrorCode.Name(PERMISSION_DENIED)}
    message = str(exc).lower()
    return getattr(exc, "error_code", "") in codes or "does not exist" in message or "permission denied" in message


def get_model_s3_path(
    run_id: str | None = None,
    model_id: str | None = None,
    *,
    model_name: str | None = None,
    version: str | int | None = None,
    alias: str | None = None,
    name: str | None = None,
    artifact_store_uri: str | None = None,
) -> tuple[str, str]:
    """Return `(s3_path_of_the_model_artifacts, run_id)` for exactly one way of naming the model.

    - `run_id`: the model logged by that run; `name` picks one when the run logged several.
    - `model_id`: a LoggedModel id (`m-...`).
    - `model_name` with `version` or `alias`: a registered model version (e.g. alias `champion`).
    `artifact_store_uri` overrides the stack's (only needed for proxied artifacts without `mlflow_init`).
    The path loads with `mlflow.pyfunc.load_model(path)`.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    chosen = [k for k, v in (("run_id", run_id), ("model_id", model_id), ("model_name", model_name)) if v]
    if len(chosen) != 1:
        raise ValueError(f"pass exactly one of run_id, model_id, model_name (got {chosen or 'none'})")
    if model_name and (version is None) == (alias is None):
        raise ValueError("with model_name, pass exactly one of version or alias")

    client = MlflowClient()
    model: Any
    if run_id:
        try:
            run = client.get_run(run_id)
        except MlflowException as exc:
            if _is_not_found(exc):
                raise ModelNotFoundError(
                    f"run {run_id} does not exist on {client.tracking_uri} (or you may not read it)"
                ) from None
            raise
        filter_string = f"source_run_id = '{run_id}'" + (f" AND name = '{name}'" if name else "")
        models = list(client.search_logged_models(experiment_ids=[run.info.experiment_id], filter_string=filter_string))
        if not models:
            which = f" named {name!r}" if name else ""
            raise ModelNotFoundError(f"run {run_id} has no logged model{which}")
        if len(models) > 1:
            names = sorted(m.name for m in models)
            raise ModelNotFoundError(
                f"run {run_id} logged {len(models)} models ({', '.join(names)}); pass name=... or model_id=... "
                f"({', '.join(f'{m.name}: {m.model_id}' for m in models)})"
            )
        model = models[0]
    else:
        try:
            if model_id:
                model = client.get_logged_model(model_id)
            else:
                assert model_name is not None
                model_version = (
                    client.get_model_version(model_name, str(version))
                    if version is not None
                    else client.get_model_version_by_alias(model_name, str(alias))
                )
                model = _model_of_version(client, model_version)
        except MlflowException as exc:
            if _is_not_found(exc):
                what = (
                    f"model {model_id}"
                    if model_id
                    else f"registered model {model_name!r} {_version_label(version, alias)}"
                )
                raise ModelNotFoundError(
                    f"{what} does not exist on {client.tracking_uri} (or you may not read it)"
                ) from None
            raise
    path = mlflow_artifacts_to_s3(str(model.artifact_location), _artifact_store_uri(artifact_store_uri))
    source_run = getattr(model, "source_run_id", None) or run_id or ""
    return path, source_run


def _version_label(version: str | int | None, alias: str | None) -> str:
    return f"version {version}" if version is not None else f"alias {alias!r}"


def _model_of_version(client: Any, model_version: Any) -> Any:
    """The LoggedModel behind a registry version (MLflow 3), else the version's own `source` location.

    A version registered from a run artifact path in the MLflow 2 style has no `model_id`; its `source`
    (`runs:/...` resolved by the server into `storage_location`, or an `s3://`/`mlflow-artifacts:` URI)
    is then the answer.
    """
    model_id = getattr(model_version, "model_id", None)
    source = str(model_version.source or "")
    if not model_id and (match := _LOGGED_MODEL_URI.match(source)):
        # Versions registered from a LoggedModel carry `source = models:/m-...`; the server does not always
        # fill `model_id` in the version it returns.
        model_id = match.group(1)
    if model_id:
        return client.get_logged_model(model_id)
    location = getattr(model_version, "storage_location", None) or model_version.source
    return _Location(artifact_location=str(location), source_run_id=model_version.run_id)
