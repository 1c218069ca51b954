"""The server image pins what uv.lock pins (it cannot be built here: no Docker engine), and is sane."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVER_DIR = ROOT / "platform" / "server"
REQUIREMENTS = SERVER_DIR / "requirements.txt"
DOCKERFILE = SERVER_DIR / "Dockerfile"
EXPORT_COMMAND = [
    "uv",
    "export",
    "--extra",
    "server",
    "--no-dev",
    "--no-default-groups",
    "--frozen",
    "--no-emit-project",
    "--format",
    "requirements.txt",
]


def _pins(text: str) -> dict[str, str]:
    return {m.group(1).lower(): m.group(2) for m in re.finditer(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)", text, re.M)}


def _locked() -> dict[str, str]:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    return {p["name"].lower(): p["version"] for p in lock["package"]}


def test_server_mlflow_equals_the_locked_toolkit_mlflow() -> None:
    pins = _pins(REQUIREMENTS.read_text())
    locked = _locked()
    assert pins["mlflow"] == locked["mlflow"]
    from importlib.metadata import version

    assert pins["mlflow"] == version("mlflow"), "the installed (toolkit's) MLflow differs from the image's"
    assert "psycopg2-binary" in pins
    assert "flask-wtf" in pins, "mlflow[auth] is needed for --app-name basic-auth"


def test_every_pin_agrees_with_uv_lock() -> None:
    locked = _locked()
    mismatched = {
        name: (pin, locked.get(name))
        for name, pin in _pins(REQUIREMENTS.read_text()).items()
        if locked.get(name) != pin
    }
    assert mismatched == {}, "platform/server/requirements.txt is stale; regenerate it (see platform/server/Dockerfile)"


def test_no_infrastructure_or_local_only_packages_in_the_image() -> None:
    pins = _pins(REQUIREMENTS.read_text())
    assert not [name for name in pins if name.startswith("pulumi") or name in ("moto", "pytest", "mypy", "ruff")]


@pytest.mark.skipif(shutil.which("uv") is None, reason="uv is not on PATH")
def test_requirements_file_is_exactly_what_uv_exports_from_the_lock() -> None:
    exported = subprocess.run(EXPORT_COMMAND, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert _without_comments(exported) == _without_comments(REQUIREMENTS.read_text())


def _without_comments(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith("#")]


def _requirements(text: str) -> dict[str, str]:
    """Each requirement (a line starting with a name) with its continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return {
        line.split("==")[0].split(" ")[0].lower(): line
        for line in joined.splitlines()
        if line and not line.startswith((" ", "#"))
    }


def test_every_requirement_of_the_image_is_pinned_and_hashed() -> None:
    """pip's --require-hashes refuses the whole install if one line lacks a pin or a hash: catch it here."""
    requirements = _requirements(REQUIREMENTS.read_text())
    assert len(requirements) > 50, "the server's requirements look truncated"
    unpinned = sorted(name for name, line in requirements.items() if "==" not in line)
    unhashed = sorted(name for name, line in requirements.items() if "--hash=sha256:" not in line)
    assert unpinned == []
    assert unhashed == []


def test_dockerfile_builds_from_the_server_folder_non_root_and_runs_the_entrypoint() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    assert re.search(r"^COPY requirements\.txt ", text, re.M)
    assert "pip install --require-hashes -r" in text
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users, "the image must not run as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    assert 'CMD ["python", "-m", "mlflow_platform.server"]' in text
    assert re.search(r"^COPY \. /app/mlflow_platform/server/$", text, re.M)
    # Every COPY source is inside the context (platform/server/): nothing from the rest of the repository.
    sources = [line.split()[1] for line in text.splitlines() if line.startswith("COPY ")]
    assert all(not source.startswith(("..", "/")) and (SERVER_DIR / source).exists() for source in sources)


def test_the_image_holds_no_import_from_outside_the_server_package() -> None:
    """The image has only mlflow_platform.server: any other first-party import would fail in the container."""
    foreign = []
    for module in sorted(SERVER_DIR.rglob("*.py")):
        for match in re.finditer(r"^\s*(?:from|import) (mlflow_platform|toolkit)([.\w]*)", module.read_text(), re.M):
            if not (match.group(1) == "mlflow_platform" and match.group(2).startswith(".server")):
                foreign.append(f"{module.name}: {match.group(0).strip()}")
    assert foreign == []
