"""`mlflow-platform ui`: the MLflow UI in your browser, signed in with your AWS identity, no password.

A small HTTP proxy on 127.0.0.1 forwards each request to the stack's tracking server with an identity
token of yours (`toolkit.aws_auth`) in `Authorization`. It hands your identity to whoever talks to it,
so it lets only your own browser in:

- it listens on 127.0.0.1 only, and drops a connection from any other address;
- it answers only requests addressed to itself (`Host: 127.0.0.1:<port>` or `localhost:<port>`), so a
  web page cannot reach it under a name of its own (DNS rebinding);
- it refuses a request another site's page makes (an `Origin` other than its own, or
  `Sec-Fetch-Site: cross-site`), so no page can act as you (cross-site request forgery).

Towards the server it speaks as the browser would if the UI were served there: its Host, its Origin.
A refusal from the server reaches the browser as text, without the Basic-auth challenge, so the browser
shows why instead of a login dialog no password would satisfy.
"""

from __future__ import annotations

import http.server
import ipaddress
import socketserver
import threading
from typing import Any
from urllib.parse import urlsplit

import requests

from toolkit.aws_auth import AwsIamAuth, register
from toolkit.client_config import ClientConfig

__all__ = ["UiProxy", "start_ui_proxy"]

# Headers that describe one connection, not the message (RFC 9110, 7.6.1), and so are not forwarded.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# Request headers the proxy sets itself or never forwards (a browser's cookies for 127.0.0.1 are not the server's).
_NOT_FORWARDED = _HOP_BY_HOP | {"host", "authorization", "cookie", "origin", "referer", "content-length"}
_CHUNK = 64 * 1024
_TIMEOUT_SECONDS = (10.0, 300.0)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ProxyServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the server logs every request with its user already."""

    def _refuse(self, status: int, reason: str) -> None:
        body = f"{reason}\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _forward(self) -> None:
        proxy = self.server
        host = (self.headers.get("Host") or "").lower()
        if host not in proxy.own_hosts:
            self._refuse(421, f"this proxy answers only to {proxy.url}")
            return
        origin = self.headers.get("Origin")
        if (origin is not None and origin.lower() not in proxy.own_origins) or self.headers.get(
            "Sec-Fetch-Site"
        ) == "cross-site":
            self._refuse(403, "requests from other sites are refused: this proxy signs in as you")
            return
        headers = {name: value for name, value in self.headers.items() if name.lower() not in _NOT_FORWARDED}
        if origin is not None:
            headers["Origin"] = proxy.upstream_origin
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else None
        try:
            upstream = proxy.session.request(
                self.command,
                proxy.upstream + self.path,
                headers=headers,
                data=body,
                auth=proxy.auth,
                stream=True,
                allow_redirects=False,
                timeout=_TIMEOUT_SECONDS,
            )
        except Exception as exc:  # the browser gets one line, whatever failed on the way
            self._refuse(502, f"cannot reach {proxy.upstream}: {type(exc).__name__}: {exc}")
            return
        with upstream:
            self.send_response(upstream.status_code)
            sized = "content-length" in {name.lower() for name in upstream.headers}
            for name, value in upstream.headers.items():
                lowered = name.lower()
                if lowered in _HOP_BY_HOP or (lowered == "www-authenticate" and upstream.status_code == 401):
                    continue
                if lowered == "location" and value.startswith(proxy.upstream):
                    value = proxy.url + value[len(proxy.upstream) :]
                self.send_header(name, value)
            if not sized:
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for chunk in upstream.raw.stream(_CHUNK, decode_content=False):
                if sized:
                    self.wfile.write(chunk)
                elif chunk:
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            if not sized:
                self.wfile.write(b"0\r\n\r\n")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _forward


class _ProxyServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, config: ClientConfig) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.upstream = config.tracking_uri.rstrip("/")
        parts = urlsplit(self.upstream)
        self.upstream_origin = f"{parts.scheme}://{parts.netloc}"
        bound = self.server_address[1]
        self.url = f"http://127.0.0.1:{bound}"
        self.own_hosts = frozenset({f"127.0.0.1:{bound}", f"localhost:{bound}"})
        self.own_origins = frozenset({f"http://{host}" for host in self.own_hosts})
        register(config)
        self.auth = AwsIamAuth()
        self.session = requests.Session()

    def verify_request(self, request: Any, client_address: Any) -> bool:
        """Only this machine's loopback address gets an answer (the socket is bound to it anyway)."""
        try:
            return ipaddress.ip_address(client_address[0]).is_loopback
        except ValueError:
            return False


class UiProxy:
    """A running proxy: its `url`, and `stop()`."""

    def __init__(self, server: _ProxyServer) -> None:
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="mlflow-ui-proxy", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return self._server.url

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def start_ui_proxy(config: ClientConfig, port: int = 0) -> UiProxy:
    """Serve the UI of `config`'s server on 127.0.0.1:`port` (0: a free port), signed in as you."""
    return UiProxy(_ProxyServer(port, config))
