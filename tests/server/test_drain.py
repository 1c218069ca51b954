"""SIGTERM while a large upload is in flight: the upload completes whole, then the server exits by itself.

ECS stops a task (a deploy, a scale-in) with SIGTERM to the container; tini, PID 1 of the image, passes
it to the whole process group: `mlflow server`, uvicorn's supervisor and its workers. The test starts
the real entrypoint the way the task does, with two workers, against the local platform's PostgreSQL
and S3 emulator, and sends SIGTERM to the process group in the middle of a 200 MB artifact upload.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from mlflow_platform.server import contract
from tests.conftest import LocalPlatformHandle, free_port

UPLOAD_BYTES = 200 * 1024 * 1024
CHUNK_BYTES = 1024 * 1024
# The part of the upload sent before SIGTERM; the rest follows after it.
BEFORE_SIGNAL_BYTES = 40 * 1024 * 1024
START_TIMEOUT_SECONDS = 240
# The server must be gone this long after SIGTERM: its own bound plus time to start and end the upload.
EXIT_TIMEOUT_SECONDS = contract.GRACEFUL_SHUTDOWN_SECONDS + 60


def _chunk(index: int) -> bytes:
    """Distinct bytes per chunk, so a lost or repeated chunk changes the digest."""
    return hashlib.sha256(str(index).encode()).digest() * (CHUNK_BYTES // 32)


class SlowUpload:
    """The body of the PUT: the first part at once, the rest only after `resume` (bounded waits)."""

    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.sent = 0
        self.first_part_sent = threading.Event()
        self.resume = threading.Event()

    def __len__(self) -> int:
        """requests sends a body of known length with Content-Length (not chunked), as MLflow's client does."""
        return UPLOAD_BYTES

    def __iter__(self) -> Iterator[bytes]:
        for index in range(UPLOAD_BYTES // CHUNK_BYTES):
            if self.sent == BEFORE_SIGNAL_BYTES:
                self.first_part_sent.set()
                if not self.resume.wait(timeout=60):
                    raise TimeoutError("the test never sent SIGTERM")
            chunk = _chunk(index)
            self.digest.update(chunk)
            self.sent += len(chunk)
            if self.sent > BEFORE_SIGNAL_BYTES:
                # Slow enough that the upload is still in flight well after the signal.
                time.sleep(0.01)
            yield chunk


@pytest.fixture
def server(local_platform: LocalPlatformHandle, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    port = free_port()
    environment = local_platform.platform.server_environment()
    environment.update(
        {
            contract.PORT: str(port),
            contract.WORKERS: "2",
            contract.AUTH_CONFIG_DIR: str(tmp_path / "auth"),
        }
    )
    log = tmp_path / "server.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlflow_platform.server"],
            env=environment,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not _healthy(base):
            if process.poll() is not None:
                pytest.fail(f"server exited: {log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"server not healthy after {START_TIMEOUT_SECONDS} s")
            time.sleep(0.5)
        yield process, base, log
    finally:
        _kill_group(process)


def _healthy(base: str) -> bool:
    try:
        return requests.get(base + "/health", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """Clean-up only: whatever of the group is still alive after the test."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    if process.poll() is None:
        process.wait(timeout=10)


def test_sigterm_during_a_large_upload_lets_it_finish_then_the_server_exits(
    server: tuple[subprocess.Popen[bytes], str, Path], local_platform: LocalPlatformHandle
) -> None:
    process, base, log = server
    key = f"0/drain-{uuid.uuid4().hex[:8]}/model.bin"
    body = SlowUpload()
    outcome: dict[str, object] = {}

    def upload() -> None:
        try:
            outcome["response"] = requests.put(
                f"{base}/api/2.0/mlflow-artifacts/artifacts/{key}",
                data=body,
                headers={"Content-Type": "application/octet-stream"},
                auth=(local_platform.admin_username, local_platform.admin_password),
                timeout=EXIT_TIMEOUT_SECONDS,
            )
        except Exception as exc:  # reported by the assertion below
            outcome["error"] = exc
        outcome["finished_at"] = time.monotonic()

    uploader = threading.Thread(target=upload, daemon=True)
    uploader.start()
    if not body.first_part_sent.wait(timeout=60):
        uploader.join(timeout=5)
        response = outcome.get("response")
        text = response.text if isinstance(response, requests.Response) else ""
        pytest.fail(f"the upload did not start: sent {body.sent} bytes, {outcome} {text}")
    time.sleep(1)  # the server is now reading the body

    os.killpg(process.pid, signal.SIGTERM)
    signalled_at = time.monotonic()
    body.resume.set()

    uploader.join(timeout=EXIT_TIMEOUT_SECONDS)
    assert not uploader.is_alive(), "the upload did not end"
    assert "error" not in outcome, f"the upload failed: {outcome.get('error')!r}\n{log.read_text()[-3000:]}"
    response = outcome["response"]
    assert isinstance(response, requests.Response)
    assert response.status_code == 200, response.text
    assert body.sent == UPLOAD_BYTES

    # The object in S3 is the whole upload, byte for byte.
    s3 = local_platform.aws_client("s3")
    stored = s3.get_object(Bucket=local_platform.bucket, Key=key)
    assert stored["ContentLength"] == UPLOAD_BYTES
    digest = hashlib.sha256()
    for piece in stored["Body"].iter_chunks(chunk_size=CHUNK_BYTES):
        digest.update(piece)
    assert digest.hexdigest() == body.digest.hexdigest()

    # Then the server exits by itself, within its bound, having taken the signal for a shutdown.
    remaining = EXIT_TIMEOUT_SECONDS - (time.monotonic() - signalled_at)
    try:
        returncode = process.wait(timeout=max(remaining, 1))
    except subprocess.TimeoutExpired:
        pytest.fail(f"the server was still running {EXIT_TIMEOUT_SECONDS} s after SIGTERM:\n{log.read_text()[-3000:]}")
    assert returncode == 0, log.read_text()[-3000:]
    finished_at = outcome["finished_at"]
    assert isinstance(finished_at, float)
    assert finished_at - signalled_at > 1, "the upload ended right at the signal: it was not in flight"
    assert "Waiting for connections to close" in log.read_text()
