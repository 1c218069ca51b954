"""Count the HTTP requests this process sends to the tracking server, by method and path.

MLflow's REST client and its artifact repository both send through `requests`, and every request that
reaches the wire (retries included) passes `HTTPAdapter.send` once: that is where they are counted. Ids
in paths (runs, logged models, experiments) are replaced by placeholders, so the same protocol step reads
the same from run to run. Requests to other hosts are not counted.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

_RUN_ID = re.compile(r"(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])")
_MODEL_ID = re.compile(r"m-[0-9a-f]{32}")
_EXPERIMENT_IN_ARTIFACTS = re.compile(r"(/mlflow-artifacts/artifacts/)\d+/")


def request_label(method: str, url: str) -> str:
    """`PUT /api/2.0/mlflow-artifacts/artifacts/{experiment}/models/{model_id}/artifacts/MLmodel`."""
    path = urlsplit(url).path
    path = _MODEL_ID.sub("{model_id}", path)
    path = _RUN_ID.sub("{run_id}", path)
    path = _EXPERIMENT_IN_ARTIFACTS.sub(r"\1{experiment}/", path)
    return f"{method.upper()} {path}"


@contextmanager
def counted_requests(tracking_uri: str) -> Iterator[list[str]]:
    """Yield a list that fills with one label per request sent to `tracking_uri`'s host and port."""
    from requests.adapters import HTTPAdapter

    server = urlsplit(tracking_uri).netloc
    sent: list[str] = []
    original = HTTPAdapter.send

    def send(self: HTTPAdapter, request: Any, *args: Any, **kwargs: Any) -> Any:
        if urlsplit(str(request.url)).netloc == server:
            sent.append(request_label(str(request.method), str(request.url)))
        return original(self, request, *args, **kwargs)

    HTTPAdapter.send = send  # type: ignore[method-assign]
    try:
        yield sent
    finally:
        HTTPAdapter.send = original  # type: ignore[method-assign]


def summary(labels: list[str]) -> list[tuple[str, int]]:
    """`(label, count)` in order of first appearance."""
    return list(Counter(labels).items())
