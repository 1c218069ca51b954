"""A local copy of each model's files, kept by model id, so scoring the same model again downloads nothing.

A LoggedModel's id (`m-...`) names files that never change, so the id is the cache key. Each use lists
the model's objects in S3 (one request) and compares every object's size and ETag with what the cached
copy recorded, and every cached file's size with the object's: a copy that is incomplete, altered or
older than the objects is downloaded again. A download goes to a folder beside the cache entry and is
renamed into place only once every file is there with the right size, so a crash never leaves a copy
that looks complete.

The cache lives in `$MLFLOW_PLATFORM_CACHE_DIR`, else the user cache dir (`platformdirs`) + `/models`.
Deleting any part of it is always safe.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.errors import ModelNotFoundError
from toolkit.s3_files import split_s3_uri

CACHE_DIR_ENV = "MLFLOW_PLATFORM_CACHE_DIR"
MANIFEST_NAME = ".toolkit-model-cache.json"
MANIFEST_FORMAT = "toolkit.model_cache"


def cache_root() -> Path:
    """Where cached models live: `$MLFLOW_PLATFORM_CACHE_DIR`, else the user cache dir + `/models`."""
    configured = os.environ.get(CACHE_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    from platformdirs import user_cache_path

    return user_cache_path("mlflow-platform") / "models"


def cache_key(model_id: str | None, s3_uri: str) -> str:
    """The model id, or for a model without one (an MLflow 2 style registry version) a digest of its path."""
    if model_id:
        return model_id
    return "path-" + hashlib.sha256(s3_uri.encode("utf-8")).hexdigest()[:24]


@dataclass(frozen=True)
class CachedModel:
    """A verified local copy: `path` loads with `mlflow.pyfunc.load_model`."""

    path: Path
    source: str
    files: int
    downloaded_files: int
    downloaded_bytes: int


@dataclass(frozen=True)
class _Object:
    size: int
    etag: str


def _list_objects(s3: Any, s3_uri: str) -> dict[str, _Object]:
    """The model's objects, keyed by their path below `s3_uri`."""
    from toolkit.aws import explain_aws_error

    bucket, prefix = split_s3_uri(s3_uri)
    prefix = prefix.rstrip("/") + "/"
    found: dict[str, _Object] = {}
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                relative = item["Key"][len(prefix) :]
                if not relative or relative.endswith("/"):
                    continue  # folder markers some tools write
                if any(part in ("", ".", "..") for part in relative.split("/")):
                    raise ModelNotFoundError(f"{s3_uri}: refusing the object key {item['Key']!r}")
                found[relative] = _Object(int(item["Size"]), str(item.get("ETag", "")).strip('"'))
    except ModelNotFoundError:
        raise
    except Exception as exc:
        raise explain_aws_error(exc, doing=f"listing the model's files at {s3_uri}") from exc
    if not found:
        raise ModelNotFoundError(f"{s3_uri}: no model files there")
    if "MLmodel" not in found:
        raise ModelNotFoundError(f"{s3_uri}: no MLmodel file there, so it is not an MLflow model")
    return found


def _manifest(objects: dict[str, _Object], source: str) -> dict[str, Any]:
    return {
        "format": MANIFEST_FORMAT,
        "source": source,
        "files": {name: {"size": item.size, "etag": item.etag} for name, item in sorted(objects.items())},
    }


def _is_valid_copy(directory: Path, objects: dict[str, _Object], source: str) -> bool:
    manifest_path = directory / MANIFEST_NAME
    try:
        recorded = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if recorded != _manifest(objects, source):
        return False
    for name, item in objects.items():
        try:
            if (directory / name).stat().st_size != item.size:
                return False
        except OSError:
            return False
    return True


def fetch_model(
    s3_uri: str,
    *,
    model_id: str | None,
    s3: Any,
    root: Path | None = None,
    report: Callable[[str], None] | None = None,
) -> CachedModel:
    """A verified local copy of the model at `s3_uri`, downloaded only if the cache has no good one."""
    from toolkit.aws import explain_aws_error

    objects = _list_objects(s3, s3_uri)
    base = root or cache_root()
    target = base / cache_key(model_id, s3_uri)
    if _is_valid_copy(target, objects, s3_uri):
        return CachedModel(target, s3_uri, len(objects), 0, 0)

    base.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=base))
    bucket, prefix = split_s3_uri(s3_uri)
    prefix = prefix.rstrip("/") + "/"
    total = sum(item.size for item in objects.values())
    try:
        for count, (name, item) in enumerate(sorted(objects.items()), start=1):
            if report is not None:
                report(f"downloading the model: file {count} of {len(objects)} ({total / 1e6:.1f} MB in all)")
            local = staging / name
            local.parent.mkdir(parents=True, exist_ok=True)
            try:
                s3.download_file(bucket, prefix + name, str(local))
            except Exception as exc:
                raise explain_aws_error(exc, doing=f"downloading {s3_uri}/{name}") from exc
            if local.stat().st_size != item.size:
                raise ModelNotFoundError(
                    f"{s3_uri}/{name}: downloaded {local.stat().st_size} bytes, S3 lists {item.size}; try again"
                )
        (staging / MANIFEST_NAME).write_text(json.dumps(_manifest(objects, s3_uri), indent=1), encoding="utf-8")
        _move_into_place(staging, target, objects, s3_uri)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return CachedModel(target, s3_uri, len(objects), len(objects), total)


def _move_into_place(staging: Path, target: Path, objects: dict[str, _Object], source: str) -> None:
    """Replace a stale copy with the new one. If another process put a good copy there first, keep it."""
    if target.exists():
        if _is_valid_copy(target, objects, source):
            return
        stale = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".stale", dir=target.parent))
        os.replace(target, stale / "copy")
        shutil.rmtree(stale, ignore_errors=True)
    try:
        os.replace(staging, target)
    except OSError:
        # A concurrent download won the rename; its copy is as good as ours if it verifies.
        if not _is_valid_copy(target, objects, source):
            raise
