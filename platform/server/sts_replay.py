"""Replay a checked identity token to STS and read back who signed it.

The request goes to the server's own STS endpoint only (`contract.STS_ENDPOINT`, else STS's regional
endpoint), never to anything the token names, with the fixed body `contract.GET_CALLER_IDENTITY_BODY`
and the token's signed headers. STS's answer is read defensively: bounded in size, no redirects
followed, no DTD or entity accepted, and the ARN checked against the shape of an IAM/STS ARN before it
is used.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree

import requests

from mlflow_platform.server import contract
from mlflow_platform.server.identity_token import SignedRequest

__all__ = ["StsRefused", "StsUnavailable", "StsVerifier"]

_NAMESPACE = "{https://sts.amazonaws.com/doc/2011-06-15/}"
_MAX_RESPONSE_BYTES = 64 * 1024
_TIMEOUT_SECONDS = (3.0, 5.0)  # connect, read
_ARN = re.compile(r"^arn:aws[a-z-]*:(iam|sts)::\d{12}:[A-Za-z0-9+=,.@_/:-]{1,1600}$")


class StsRefused(ValueError):
    """STS refused the signed request (a bad or expired signature, an unknown key); one line, no secret."""


class StsUnavailable(RuntimeError):
    """STS could not be asked or answered nonsense: the server's problem, not the caller's."""


class StsVerifier:
    """Sends signed GetCallerIdentity requests to one STS endpoint over a pooled HTTP session."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint.rstrip("/")
        self._session = requests.Session()
        # Neither a proxy from the environment nor a .netrc: the replay goes where it is configured to.
        self._session.trust_env = False

    def caller_arn(self, signed: SignedRequest) -> str:
        """The ARN of whoever signed `signed`, as STS says; `StsRefused` or `StsUnavailable` otherwise."""
        headers = dict(signed.headers)
        headers.setdefault("content-type", contract.GET_CALLER_IDENTITY_CONTENT_TYPE)
        try:
            response = self._session.post(
                self.endpoint + "/",
                data=contract.GET_CALLER_IDENTITY_BODY.encode(),
                headers=headers,
                timeout=_TIMEOUT_SECONDS,
                allow_redirects=False,
                stream=True,
            )
        except requests.RequestException as exc:
            raise StsUnavailable(f"cannot reach STS at {self.endpoint}: {type(exc).__name__}") from None
        try:
            body = response.raw.read(_MAX_RESPONSE_BYTES + 1, decode_content=True)
        except Exception as exc:  # urllib3 raises several unrelated types for a broken response
            raise StsUnavailable(f"STS at {self.endpoint} sent a broken response: {type(exc).__name__}") from None
        finally:
            response.close()
        if len(body) > _MAX_RESPONSE_BYTES:
            raise StsUnavailable(f"STS at {self.endpoint} answered more than {_MAX_RESPONSE_BYTES} bytes")
        if response.status_code == 200:
            return _arn_from(body, self.endpoint)
        if 400 <= response.status_code < 500:
            raise StsRefused(f"STS refused the signed request: {_error_code(body)} (HTTP {response.status_code})")
        raise StsUnavailable(f"STS at {self.endpoint} answered HTTP {response.status_code}")


def _parse(body: bytes) -> ElementTree.Element | None:
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        return None
    try:
        return ElementTree.fromstring(body)  # noqa: S314 - bounded, no DTD or entities (checked above)
    except ElementTree.ParseError:
        return None


def _arn_from(body: bytes, endpoint: str) -> str:
    root = _parse(body)
    element = None if root is None else root.find(f"{_NAMESPACE}GetCallerIdentityResult/{_NAMESPACE}Arn")
    arn = (element.text or "").strip() if element is not None else ""
    if not _ARN.match(arn):
        raise StsUnavailable(f"STS at {endpoint} answered 200 without a caller ARN")
    return arn


def _error_code(body: bytes) -> str:
    """STS's error code (`SignatureDoesNotMatch`, `InvalidClientTokenId`, `ExpiredToken`, ...)."""
    root = _parse(body)
    if root is None:
        return "no error code"
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] == "Code" and element.text:
            code = element.text.strip()
            return code if re.fullmatch(r"[A-Za-z0-9.]{1,64}", code) else "an unreadable error code"
    return "no error code"
