"""The tracking server's authorization function: AWS identities, and MLflow's Basic auth for the rest.

MLflow's auth ini names it (`authorization_function = mlflow_platform.server.aws_identity:authenticate`,
written by the entrypoint); MLflow calls it for every request that needs a user, from Flask and, for its
FastAPI routes, from a synthetic Flask context. It accepts:

- `Authorization: Bearer mlflow-aws-v1.<...>`, an identity token (`identity_token`): checked, replayed
  to STS (`sts_replay`), the caller's ARN mapped to an MLflow user (`identity_mapping`), who is created
  on first sign-in with a random password nobody knows (so the user can sign in only this way, or with
  a password an admin sets) and made admin or not as the mapping says;
- `Authorization: Basic ...`, checked by MLflow's own function with its credential cache: the break-glass
  admin and service accounts with passwords.

Anything else, or nothing, gets 401, never a 5xx: MLflow's own function answers a bearer token with a
500 (its credential cache hashes a password that is None). A refusal's reason (one line, never the
token) goes to the request's log line (`request_log`) and to the response body.

A verified identity is cached in this process until its signature expires, keyed by the token's
SHA-256, so a busy client costs one STS call per token (the toolkit renews its token every few
minutes), not one per request. MLflow calls the function several times per request; the answer is
kept in Flask's `g` for the rest of it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime

from flask import Response, g, make_response, request
from werkzeug.datastructures import Authorization

from mlflow_platform.server import contract, request_log
from mlflow_platform.server.contract import ServerIdentity
from mlflow_platform.server.identity_mapping import MappedUser, UnmappedPrincipal, map_principal
from mlflow_platform.server.identity_token import InvalidIdentityToken, read_token
from mlflow_platform.server.request_log import RequestRecord
from mlflow_platform.server.sts_replay import StsRefused, StsUnavailable, StsVerifier

__all__ = ["IdentityVerifier", "authenticate"]

_logger = logging.getLogger("mlflow_platform.server.identity")
_G_KEY = "_mlflow_platform_authorization"
# Verified tokens kept per process; beyond this the oldest are dropped (each costs one STS call again).
_CACHE_ENTRIES = 10_000


class IdentityVerifier:
    """Token -> MLflow user, with the per-process cache of verified tokens."""

    def __init__(self, identity: ServerIdentity, sts_endpoint: str) -> None:
        self.identity = identity
        self.audiences = frozenset(identity.audiences)
        self.sts = StsVerifier(sts_endpoint)
        self._cache: OrderedDict[bytes, tuple[MappedUser, datetime]] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, token: str) -> MappedUser:
        """The signed-in user; raises `InvalidIdentityToken`, `StsRefused`, `UnmappedPrincipal` or
        `StsUnavailable` (the only one that is not the caller's fault)."""
        key = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        now = datetime.now(UTC)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and cached[1] > now:
                return cached[0]
        signed = read_token(token, audiences=self.audiences, region=self.identity.region, now=now)
        user = map_principal(self.identity, self.sts.caller_arn(signed))
        _ensure_mlflow_user(user)
        with self._lock:
            self._cache[key] = (user, signed.expires_at)
            if len(self._cache) > _CACHE_ENTRIES:
                self._drop_expired_or_oldest(now)
        return user

    def _drop_expired_or_oldest(self, now: datetime) -> None:
        for stale in [k for k, (_, expires) in self._cache.items() if expires <= now]:
            del self._cache[stale]
        while len(self._cache) > _CACHE_ENTRIES:
            self._cache.popitem(last=False)


def _ensure_mlflow_user(user: MappedUser) -> None:
    """Create the MLflow user on first sign-in; keep its admin flag as the mapping says."""
    from mlflow.exceptions import MlflowException
    from mlflow.server.auth import store

    if not store.has_user(user.username, use_primary=True):
        try:
            # A password nobody knows: the user signs in with the AWS identity (or one an admin sets).
            store.create_user(user.username, secrets.token_urlsafe(48), is_admin=user.admin)
            _logger.info("created MLflow user %r (admin: %s) for %s", user.username, user.admin, user.arn)
            return
        except MlflowException:
            if not store.has_user(user.username, use_primary=True):
                raise
            # Another worker created it at the same moment.
    if store.get_user(user.username).is_admin != user.admin:
        store.update_user(user.username, is_admin=user.admin)
        _logger.info("MLflow user %r: admin set to %s by the identity mapping", user.username, user.admin)


def _load_verifier(environ: Mapping[str, str]) -> IdentityVerifier | None:
    raw = environ.get(contract.IDENTITY)
    if not raw:
        return None
    identity = ServerIdentity.model_validate_json(raw)
    endpoint = environ.get(contract.STS_ENDPOINT) or contract.sts_regional_endpoint(identity.region)
    return IdentityVerifier(identity, endpoint)


# Read once per worker process; the entrypoint validated the same variables before starting MLflow.
_verifier = _load_verifier(os.environ)
request_log.install()


def _refusal(reason: str, *, basic_challenge: bool) -> Response:
    response = make_response(f"Not signed in: {reason}\n", 401)
    response.mimetype = "text/plain"
    # A browser offers its login dialog only for a Basic challenge: the break-glass admin's way in.
    response.headers["WWW-Authenticate"] = (
        'Basic realm="mlflow"' if basic_challenge else 'Bearer realm="mlflow", error="invalid_token"'
    )
    return response


def authenticate() -> Authorization | Response:
    """MLflow's `authorization_function`: an `Authorization` naming the user, or a 401 response."""
    memo: Authorization | Response | None = g.get(_G_KEY)
    if memo is not None:
        return memo
    started = time.monotonic()
    result, record = _authenticate(started)
    setattr(g, _G_KEY, result)
    request_log.record(record)
    return result


Outcome = tuple[Authorization | Response, RequestRecord]


def _refuse(started: float, auth: str, reason: str, *, basic_challenge: bool = False) -> Outcome:
    entry = RequestRecord(None, auth, request.method, request.path, started, reason=reason)
    return _refusal(reason, basic_challenge=basic_challenge), entry


def _authenticate(started: float) -> Outcome:
    header = request.headers.get("Authorization", "")
    scheme, _, credential = header.strip().partition(" ")
    scheme = scheme.lower()
    if not header:
        return _refuse(started, "none", "no credentials", basic_challenge=True)
    if scheme == "basic":
        return _basic(started)
    if scheme != "bearer":
        return _refuse(
            started, "none", "unsupported Authorization scheme; expected Basic or Bearer", basic_challenge=True
        )
    if _verifier is None:
        return _refuse(started, "aws-iam", "signing in with an AWS identity is not enabled on this server")
    try:
        user = _verifier.verify(credential.strip())
    except (InvalidIdentityToken, StsRefused, UnmappedPrincipal) as exc:
        return _refuse(started, "aws-iam", str(exc))
    except StsUnavailable as exc:
        _logger.error("cannot verify an identity token: %s", exc)
        response = make_response("Cannot verify AWS identities right now; try again shortly.\n", 503)
        response.mimetype = "text/plain"
        return response, RequestRecord(None, "aws-iam", request.method, request.path, started, reason=str(exc))
    entry = RequestRecord(user.username, "aws-iam", request.method, request.path, started, principal=user.arn)
    return Authorization("bearer", {"username": user.username}), entry


def _basic(started: float) -> Outcome:
    """MLflow's own Basic auth (its credential cache included), after the checks it lacks."""
    from mlflow.server.auth import authenticate_request_basic_auth

    given = request.authorization
    if given is None or given.type != "basic" or not given.username or not given.password:
        return _refuse(started, "basic", "malformed Basic credentials", basic_challenge=True)
    outcome = authenticate_request_basic_auth()
    if isinstance(outcome, Authorization):
        return outcome, RequestRecord(outcome.username, "basic", request.method, request.path, started)
    return _refuse(
        started, "basic", f"wrong password for user {given.username[:100]!r}, or no such user", basic_challenge=True
    )
