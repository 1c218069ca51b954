"""Read an identity token and check everything about it that does not need STS.

A token (`contract.IDENTITY_TOKEN_PREFIX` + base64url of a JSON object of header name -> value) holds
the headers of an `sts:GetCallerIdentity` request the client signed with SigV4. The checks here are
the ones STS cannot make for us, and the ones HashiCorp Vault's `aws` auth method makes for the same
scheme:

- size, encoding and shape: bounded before decoding, only known headers, string values only;
- the signature covers the audience header, and the audience names this server: a token made for
  another server cannot be replayed here (STS would happily verify it, since it is a valid signature);
- the credential scope is STS in the server's region and the signature date is fresh (STS itself
  accepts a signature for 15 minutes; the local emulator checks no date at all);
- nothing else is signed that the server would not send, so the server's replay is exactly the request
  the client signed: its own STS endpoint (never a URL from the token), POST, the fixed body.

Every refusal is an `InvalidIdentityToken` whose message is one line for the server log. No message
ever contains the token or its signature.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from mlflow_platform.server import contract

__all__ = ["InvalidIdentityToken", "SignedRequest", "read_token"]

# SigV4's Authorization header: algorithm, credential scope, signed headers, signature.
_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256 "
    r"Credential=(?P<key>[A-Z0-9]{16,128})/(?P<date>\d{8})/(?P<region>[a-z0-9-]{1,32})/(?P<service>[a-z0-9-]{1,32})"
    r"/aws4_request, ?"
    r"SignedHeaders=(?P<signed>[a-z0-9;-]{1,512}), ?"
    r"Signature=(?P<signature>[0-9a-f]{64})$"
)
_AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
# A signature dated this far ahead of the server's clock is refused, as STS does.
_MAX_CLOCK_SKEW = timedelta(seconds=contract.IDENTITY_TOKEN_LIFETIME_SECONDS)

_AUTHORIZATION_HEADER = "authorization"
_DATE_HEADER = "x-amz-date"
_SESSION_TOKEN_HEADER = "x-amz-security-token"  # noqa: S105 - a header name
_CONTENT_TYPE_HEADER = "content-type"
_AUDIENCE_HEADER = contract.AUDIENCE_HEADER.lower()
# Headers a token may carry; the host is the server's own STS endpoint's, so the token never names it.
_CARRIED = frozenset(
    {_AUTHORIZATION_HEADER, _DATE_HEADER, _SESSION_TOKEN_HEADER, _CONTENT_TYPE_HEADER, _AUDIENCE_HEADER}
)
# Headers that must be signed, and all the headers that may be.
_MUST_SIGN = frozenset({"host", _DATE_HEADER, _AUDIENCE_HEADER})
_MAY_SIGN = _MUST_SIGN | {_SESSION_TOKEN_HEADER, _CONTENT_TYPE_HEADER}


class InvalidIdentityToken(ValueError):
    """The token is refused before STS is asked; the message is one line and holds no secret."""


@dataclass(frozen=True)
class SignedRequest:
    """A checked token: the headers to replay to STS, and what the server logs about it."""

    headers: dict[str, str]
    access_key_id: str
    audience: str
    signed_at: datetime

    @property
    def expires_at(self) -> datetime:
        """When STS stops accepting the signature, and so the end of a verified identity's cache entry."""
        return self.signed_at + timedelta(seconds=contract.IDENTITY_TOKEN_LIFETIME_SECONDS)


def read_token(token: str, *, audiences: frozenset[str], region: str, now: datetime | None = None) -> SignedRequest:
    """Decode and check `token` (the part after `Bearer `); raise `InvalidIdentityToken` with the reason."""
    now = now or datetime.now(UTC)
    headers = _decode(token)
    authorization = _AUTHORIZATION.match(headers.get(_AUTHORIZATION_HEADER, ""))
    if authorization is None:
        raise InvalidIdentityToken("the token's Authorization is not an AWS SigV4 (AWS4-HMAC-SHA256) signature")
    signed = frozenset(authorization["signed"].split(";"))
    missing = sorted(_MUST_SIGN - signed)
    if missing:
        raise InvalidIdentityToken(f"the signature does not cover {', '.join(missing)}")
    unexpected = sorted(signed - _MAY_SIGN)
    if unexpected:
        raise InvalidIdentityToken(f"the signature covers headers the token does not carry: {', '.join(unexpected)}")
    unsigned = sorted(name for name in headers if name not in signed and name != _AUTHORIZATION_HEADER)
    if unsigned:
        raise InvalidIdentityToken(f"the token carries unsigned headers: {', '.join(unsigned)}")
    if authorization["service"] != "sts":
        raise InvalidIdentityToken(f"the request is signed for {authorization['service']!r}, expected STS")
    if authorization["region"] != region:
        raise InvalidIdentityToken(
            f"the request is signed for STS in {authorization['region']}, this server verifies with STS in {region}"
        )
    audience = headers.get(_AUDIENCE_HEADER, "")
    if audience not in audiences:
        raise InvalidIdentityToken(
            f"the token's audience {audience[:200]!r} is not this server ({', '.join(sorted(audiences))})"
        )
    signed_at = _signature_date(headers.get(_DATE_HEADER, ""), authorization["date"])
    if now - signed_at > timedelta(seconds=contract.IDENTITY_TOKEN_LIFETIME_SECONDS):
        raise InvalidIdentityToken(f"the token expired: signed at {signed_at:%Y-%m-%d %H:%M:%S} UTC")
    if signed_at - now > _MAX_CLOCK_SKEW:
        raise InvalidIdentityToken(f"the token is signed in the future ({signed_at:%Y-%m-%d %H:%M:%S} UTC)")
    content_type = headers.get(_CONTENT_TYPE_HEADER)
    if content_type is not None and content_type != contract.GET_CALLER_IDENTITY_CONTENT_TYPE:
        raise InvalidIdentityToken(f"the token's content type must be {contract.GET_CALLER_IDENTITY_CONTENT_TYPE}")
    return SignedRequest(headers, authorization["key"], audience, signed_at)


def _decode(token: str) -> dict[str, str]:
    if len(token) > contract.IDENTITY_TOKEN_MAX_BYTES:
        raise InvalidIdentityToken(f"the token is longer than {contract.IDENTITY_TOKEN_MAX_BYTES} bytes")
    if not token.startswith(contract.IDENTITY_TOKEN_PREFIX):
        raise InvalidIdentityToken(
            f"the bearer token is not an identity token (it should start with {contract.IDENTITY_TOKEN_PREFIX})"
        )
    encoded = token[len(contract.IDENTITY_TOKEN_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        payload = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError):
        raise InvalidIdentityToken("the token is not base64url-encoded JSON") from None
    if not isinstance(payload, dict) or not all(
        isinstance(name, str) and isinstance(value, str) for name, value in payload.items()
    ):
        raise InvalidIdentityToken("the token is not a JSON object of header names and string values")
    headers = {name.lower(): value for name, value in payload.items()}
    if len(headers) != len(payload):
        raise InvalidIdentityToken("the token names a header twice")
    unknown = sorted(set(headers) - _CARRIED)
    if unknown:
        raise InvalidIdentityToken(f"the token carries headers other than the signed request's: {', '.join(unknown)}")
    if any(not value.isprintable() for value in headers.values()):
        raise InvalidIdentityToken("the token's header values contain control characters")
    return headers


def _signature_date(amz_date: str, scope_date: str) -> datetime:
    try:
        signed_at = datetime.strptime(amz_date, _AMZ_DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise InvalidIdentityToken("the token's X-Amz-Date is missing or not of the form YYYYMMDDTHHMMSSZ") from None
    if signed_at.strftime("%Y%m%d") != scope_date:
        raise InvalidIdentityToken("the token's X-Amz-Date and its credential scope name different days")
    return signed_at
