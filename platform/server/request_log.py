"""One log line per authenticated request: who (the MLflow user and, for AWS sign-ins, the ARN), what
(method and path, never the query string or a header) and the HTTP status, so the server's log (in AWS:
CloudWatch) holds who did what.

MLflow serves most of its API from a Flask app, and a few routes (artifact uploads and downloads,
among them) natively from FastAPI; the authorization function sees both, in different ways:

- a Flask request: the line is written when Flask has the response (`flask.after_this_request`);
- a FastAPI route: MLflow calls the authorization function inside a synthetic Flask request context
  from its permission middleware, so the response is out of reach. The function leaves the request's
  details in a context variable of that middleware's task instead, and uvicorn's access logger, which
  logs the status from the same task, hands them back: a filter on it writes our line then.

Requests that need no sign-in (`/health`, the UI's static files) are in uvicorn's own access log only.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import time
from dataclasses import dataclass

from flask import Response, after_this_request, request

__all__ = ["RequestRecord", "install", "logger", "record"]

logger = logging.getLogger("mlflow_platform.server.requests")


@dataclass(frozen=True)
class RequestRecord:
    """What the line says besides the status. `reason` is set for a refused sign-in (one line, no secret)."""

    user: str | None
    auth: str
    method: str
    path: str
    started: float
    principal: str | None = None
    reason: str | None = None

    def line(self, status: int | str) -> str:
        parts = [
            f"user={self.user or '-'}",
            f"auth={self.auth}",
            f"method={self.method}",
            f"path={self.path}",
            f"status={status}",
            f"ms={(time.monotonic() - self.started) * 1000:.0f}",
        ]
        if self.principal:
            parts.append(f"principal={self.principal}")
        if self.reason:
            parts.append(f"reason={self.reason!r}")
        return "request " + " ".join(parts)


# A FastAPI route's record, from the authorization function to uvicorn's access log line.
_pending: contextvars.ContextVar[RequestRecord | None] = contextvars.ContextVar("mlflow_platform_request", default=None)


def _in_fastapi_bridge() -> bool:
    """MLflow's bridge builds its Flask context from the path and headers alone; a request Flask serves
    comes through the ASGI-to-WSGI adapter, which always records the client's address."""
    return "REMOTE_ADDR" not in request.environ


def record(entry: RequestRecord) -> None:
    """Arrange for `entry` to be logged once, with the status, when the response is known."""
    if _in_fastapi_bridge():
        _pending.set(entry)
        return

    @after_this_request
    def _log(response: Response) -> Response:
        logger.info(entry.line(response.status_code))
        return response


class _AccessLogFilter(logging.Filter):
    """On uvicorn's access logger: writes the line of a FastAPI route's request, with the status
    uvicorn logs. uvicorn's own line passes unchanged."""

    def filter(self, log_record: logging.LogRecord) -> bool:
        entry = _pending.get()
        if entry is not None:
            _pending.set(None)
            args = log_record.args if isinstance(log_record.args, tuple) else ()
            status = args[4] if len(args) >= 5 else "-"
            logger.info(entry.line(status if isinstance(status, int | str) else "-"))
        return True


_installed = False


def install() -> None:
    """Give our logger its own handler (uvicorn configures only its loggers) and watch uvicorn's access log."""
    global _installed
    if _installed:
        return
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logging.getLogger("uvicorn.access").addFilter(_AccessLogFilter())
    _installed = True
