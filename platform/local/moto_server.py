"""moto in server mode, with its state kept on disk: `python -m mlflow_platform.local.moto_server`.

moto keeps everything in memory, and a `down`/`up` of the local platform must not lose the artifacts
(S3 objects), nor the secrets and the SSM client config. This launcher runs moto's own WSGI app in a
thread and mirrors what it holds into a state directory:

- a thin WSGI wrapper notes every request that may change state (S3 PUT/POST/DELETE; Secrets Manager
  and SSM calls whose X-Amz-Target is a write);
- a background thread then copies the changes out through the public AWS APIs of this very server
  (S3 objects by ETag, all secrets, all parameters), about a second later, so a crash loses at most
  that last second; a final copy runs on SIGTERM/SIGINT before the process exits;
- at start, before `/_mlflow_platform/ready` answers 200, the saved state is put back the same way.

Only public APIs of moto (its WSGI app) and of AWS (boto3) are used, so a moto upgrade cannot break it
silently. Files holding secret values are created with mode 0600.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import FrameType
from typing import Any

from toolkit.aws import LOCAL_EMULATOR_KEY

_logger = logging.getLogger("mlflow_platform.local.moto_server")

READY_PATH = "/_mlflow_platform/ready"
# The service a SigV4 Authorization header is signed for: Credential=KEY/DATE/REGION/SERVICE/aws4_request.
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,]+/\d{8}/[^/,]+/(?P<service>[a-z0-9-]+)/aws4_request")
SYNC_DEBOUNCE_SECONDS = 0.5
_WRITE_TARGETS = {
    "secretsmanager": (
        "CreateSecret",
        "PutSecretValue",
        "UpdateSecret",
        "DeleteSecret",
        "RestoreSecret",
        "UpdateSecretVersionStage",
    ),
    "ssm": ("PutParameter", "DeleteParameter", "DeleteParameters"),
}

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def _private_file(path: Path, data: bytes) -> None:
    """Write atomically with mode 0600 (the files may hold secret values)."""
    tmp = path.with_name(path.name + ".tmp")
    descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    tmp.replace(path)


class StateMirror:
    """Copies moto's S3 objects, secrets and SSM parameters to `state_dir` and back."""

    def __init__(self, state_dir: Path, endpoint: str, region: str) -> None:
        self.state_dir = state_dir
        self.endpoint = endpoint
        self.region = region
        self.dirty: set[str] = set()
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.ready = False

    def client(self, service: str) -> Any:
        import boto3

        return boto3.session.Session(
            aws_access_key_id=LOCAL_EMULATOR_KEY, aws_secret_access_key=LOCAL_EMULATOR_KEY, region_name=self.region
        ).client(service, endpoint_url=self.endpoint)  # type: ignore[call-overload]

    # --- noting changes -------------------------------------------------------------------------
    def wsgi(self, app: WsgiApp) -> WsgiApp:
        def wrapped(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            if environ.get("PATH_INFO") == READY_PATH:
                status = "200 OK" if self.ready else "503 Service Unavailable"
                start_response(status, [("Content-Type", "text/plain")])
                return [b"ready" if self.ready else b"restoring"]
            result = app(environ, start_response)
            service = self._written_service(environ)
            if service and self.ready:
                with self.lock:
                    self.dirty.add(service)
                self.wake.set()
            return result

        return wrapped

    @staticmethod
    def _written_service(environ: dict[str, Any]) -> str | None:
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        if target:
            prefix, _, action = target.partition(".")
            service = "secretsmanager" if prefix == "secretsmanager" else "ssm" if prefix == "AmazonSSM" else None
            return service if service and action in _WRITE_TARGETS[service] else None
        if str(environ.get("PATH_INFO", "")).startswith("/moto-api"):
            return None
        # IAM and STS calls (sign-ins replayed by the server among them) are POSTs too, but not S3's.
        scope = _CREDENTIAL_SCOPE.search(str(environ.get("HTTP_AUTHORIZATION", "")))
        if scope is not None and scope["service"] != "s3":
            return None
        return "s3" if environ.get("REQUEST_METHOD") in ("PUT", "POST", "DELETE") else None

    def run_sync_loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.wake.wait(timeout=1.0)
            if stop.is_set():
                break
            if not self.wake.is_set():
                continue
            time.sleep(SYNC_DEBOUNCE_SECONDS)
            self.wake.clear()
            self.flush()

    def flush(self) -> None:
        """Copy out whatever changed since the last flush; never raises (logs instead)."""
        with self.lock:
            services, self.dirty = self.dirty, set()
        for service in sorted(services):
            try:
                {"s3": self.save_s3, "secretsmanager": self.save_secrets, "ssm": self.save_parameters}[service]()
            except Exception:
                _logger.exception("could not save the %s state; will retry at the next change", service)
                with self.lock:
                    self.dirty.add(service)

    # --- S3 -------------------------------------------------------------------------------------
    def _bucket_dir(self, bucket: str) -> Path:
        return self.state_dir / "s3" / bucket

    def save_s3(self) -> None:
        s3 = self.client("s3")
        buckets = [b["Name"] for b in s3.list_buckets().get("Buckets", [])]
        (self.state_dir / "s3").mkdir(parents=True, exist_ok=True)
        _private_file(self.state_dir / "s3" / "buckets.json", json.dumps(buckets).encode())
        for bucket in buckets:
            folder = self._bucket_dir(bucket)
            (folder / "objects").mkdir(parents=True, exist_ok=True)
            index_path = folder / "index.json"
            index: dict[str, dict[str, str]] = json.loads(index_path.read_text()) if index_path.is_file() else {}
            seen: set[str] = set()
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                for item in page.get("Contents", []):
                    key, etag = item["Key"], item["ETag"]
                    seen.add(key)
                    if index.get(key, {}).get("etag") == etag:
                        continue
                    name = hashlib.sha256(key.encode()).hexdigest()
                    response = s3.get_object(Bucket=bucket, Key=key)
                    tmp = folder / "objects" / f"{name}.tmp"
                    with tmp.open("wb") as handle:
                        for chunk in response["Body"].iter_chunks(1 << 20):
                            handle.write(chunk)
                    tmp.replace(folder / "objects" / name)
                    index[key] = {
                        "etag": etag,
                        "file": name,
                        "content_type": response.get("ContentType", "binary/octet-stream"),
                    }
            for key in set(index) - seen:
                (folder / "objects" / index.pop(key)["file"]).unlink(missing_ok=True)
            _private_file(index_path, json.dumps(index, indent=1).encode())

    def restore_s3(self) -> int:
        listing = self.state_dir / "s3" / "buckets.json"
        if not listing.is_file():
            return 0
        s3 = self.client("s3")
        restored = 0
        for bucket in json.loads(listing.read_text()):
            if self.region == "us-east-1":
                s3.create_bucket(Bucket=bucket)
            else:
                s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": self.region})
            index_path = self._bucket_dir(bucket) / "index.json"
            index = json.loads(index_path.read_text()) if index_path.is_file() else {}
            for key, entry in index.items():
                with (self._bucket_dir(bucket) / "objects" / entry["file"]).open("rb") as handle:
                    s3.put_object(Bucket=bucket, Key=key, Body=handle, ContentType=entry["content_type"])
                restored += 1
        return restored

    # --- Secrets Manager and SSM ----------------------------------------------------------------
    def save_secrets(self) -> None:
        secrets = self.client("secretsmanager")
        saved = []
        for page in secrets.get_paginator("list_secrets").paginate():
            for entry in page.get("SecretList", []):
                if entry.get("DeletedDate"):
                    continue
                value = secrets.get_secret_value(SecretId=entry["ARN"])
                if "SecretString" in value:
                    saved.append(
                        {
                            "Name": entry["Name"],
                            "Description": entry.get("Description", ""),
                            "SecretString": value["SecretString"],
                        }
                    )
        _private_file(self.state_dir / "secrets.json", json.dumps(saved, indent=1).encode())

    def restore_secrets(self) -> int:
        path = self.state_dir / "secrets.json"
        if not path.is_file():
            return 0
        secrets = self.client("secretsmanager")
        saved = json.loads(path.read_text())
        for entry in saved:
            secrets.create_secret(**entry)
        return len(saved)

    def save_parameters(self) -> None:
        ssm = self.client("ssm")
        saved = []
        for page in ssm.get_paginator("describe_parameters").paginate():
            for entry in page.get("Parameters", []):
                parameter = ssm.get_parameter(Name=entry["Name"], WithDecryption=True)["Parameter"]
                saved.append({"Name": parameter["Name"], "Value": parameter["Value"], "Type": parameter["Type"]})
        _private_file(self.state_dir / "ssm.json", json.dumps(saved, indent=1).encode())

    def restore_parameters(self) -> int:
        path = self.state_dir / "ssm.json"
        if not path.is_file():
            return 0
        ssm = self.client("ssm")
        saved = json.loads(path.read_text())
        for entry in saved:
            ssm.put_parameter(**entry, Overwrite=True)
        return len(saved)

    def restore(self) -> None:
        objects = self.restore_s3()
        secrets = self.restore_secrets()
        parameters = self.restore_parameters()
        _logger.info("restored %d S3 objects, %d secrets, %d SSM parameters", objects, secrets, parameters)
        self.ready = True


def serve(host: str, port: int, state_dir: Path, region: str) -> int:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    state_dir.mkdir(parents=True, exist_ok=True)
    mirror = StateMirror(state_dir, f"http://{host}:{port}", region)
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(host, port, mirror.wsgi(app), threaded=True, request_handler=MotoRequestHandler)
    serving = threading.Thread(target=server.serve_forever, name="moto-http", daemon=True)
    serving.start()

    stop = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        _logger.info("signal %d: saving state and stopping", signum)
        stop.set()
        mirror.wake.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    mirror.restore()
    _logger.info("moto ready on http://%s:%d, state in %s", host, port, state_dir)
    mirror.run_sync_loop(stop)
    mirror.flush()
    server.shutdown()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="moto server with its state mirrored to a directory")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--region", default="us-east-1")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    return serve(args.host, args.port, args.state_dir, args.region)


if __name__ == "__main__":
    sys.exit(main())
