"""What the image takes from outside is pinned by SHA-256 in the Dockerfile, and the image tag covers it.

The values themselves are a maintainer's input (platform/server/Dockerfile says how to get them); the
tests hold the mechanism: no base image by tag alone, the RDS CA bundle checked against its digest
before anything uses it, libpq pointed at it, and a changed pin gives a new image tag.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from mlflow_platform.infra.tracking_server import source_fingerprint
from mlflow_platform.server import contract

SERVER_DIR = Path(__file__).resolve().parents[2] / "platform" / "server"
DOCKERFILE = SERVER_DIR / "Dockerfile"
RDS_BUNDLE_URL = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"


def _arg_default(text: str, name: str) -> str:
    match = re.search(rf"^ARG {name}=(\S*)$", text, re.M)
    assert match, f"ARG {name}= is not declared"
    return match.group(1)


def test_every_base_image_is_pinned_by_digest() -> None:
    text = DOCKERFILE.read_text()
    bases = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert bases == ["python:3.11-slim@${PYTHON_IMAGE_DIGEST}"]
    # Declared before the FROM that uses it (an ARG after FROM is not visible to it).
    assert text.index("ARG PYTHON_IMAGE_DIGEST=") < text.index("FROM ")
    digest = _arg_default(text, "PYTHON_IMAGE_DIGEST")
    assert digest == "" or re.fullmatch(r"sha256:[0-9a-f]{64}", digest), digest


def test_rds_ca_bundle_is_checked_against_its_digest_and_is_what_libpq_uses() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(rf"^ADD {re.escape(RDS_BUNDLE_URL)} {re.escape(contract.RDS_CA_BUNDLE)}$", text, re.M)
    checksum = _arg_default(text, "RDS_CA_BUNDLE_SHA256")
    assert checksum == "" or re.fullmatch(r"[0-9a-f]{64}", checksum), checksum
    # The build refuses an empty or a wrong digest before the bundle is used.
    verify = text[text.index(f"ADD {RDS_BUNDLE_URL}") :]
    assert 'test -n "$RDS_CA_BUNDLE_SHA256"' in verify
    assert f'echo "$RDS_CA_BUNDLE_SHA256  {contract.RDS_CA_BUNDLE}" | sha256sum -c -' in verify
    # ADD gives a downloaded file mode 600; the server runs as a non-root user.
    assert f"chmod 0644 {contract.RDS_CA_BUNDLE}" in verify
    assert re.search(rf"^ENV PGSSLROOTCERT={re.escape(contract.RDS_CA_BUNDLE)}$", text, re.M)
    assert text.index("ENV PGSSLROOTCERT=") < text.index("USER 10001")


def test_a_changed_pin_gives_a_new_image_tag(tmp_path: Path) -> None:
    context = tmp_path / "server"
    shutil.copytree(SERVER_DIR, context, ignore=shutil.ignore_patterns("__pycache__"))
    before = source_fingerprint(context)
    dockerfile = context / "Dockerfile"
    for name, value in (("PYTHON_IMAGE_DIGEST", "sha256:" + "a" * 64), ("RDS_CA_BUNDLE_SHA256", "b" * 64)):
        text = dockerfile.read_text()
        dockerfile.write_text(re.sub(rf"^ARG {name}=\S*$", f"ARG {name}={value}", text, flags=re.M))
        after = source_fingerprint(context)
        assert after != before, name
        before = after
