"""The layout guards (docs/architecture.md): the folder `platform/` never shadows the standard library,
and each of its subfolders is a package that only `mlflow_platform` reaches."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
import tomllib
from importlib.metadata import requires
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_stdlib_platform_still_works_from_the_repository_root() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import platform; print(platform.system())"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Linux"


def test_platform_folder_is_not_a_regular_package() -> None:
    assert not (ROOT / "platform" / "__init__.py").exists()


def test_no_module_in_platform_shadows_a_stdlib_or_installed_module() -> None:
    """Pulumi runs `platform/` with itself first on sys.path: `secrets.py` there would replace the stdlib's."""
    ours = {ROOT.resolve(), (ROOT / "platform").resolve()}
    installed = {
        m.name for m in pkgutil.iter_modules() if Path(getattr(m.module_finder, "path", "")).resolve() not in ours
    }
    taken = installed | set(sys.stdlib_module_names) | set(sys.builtin_module_names)
    local = {p.stem for p in (ROOT / "platform").glob("*.py")} | {
        p.name for p in (ROOT / "platform").iterdir() if p.is_dir() and p.name != "__pycache__"
    }
    local.discard("__main__")
    assert local, "platform/ holds no modules?"
    clashes = sorted(local & taken)
    assert clashes == [], f"modules in platform/ that shadow others: {clashes}"


def test_platform_subfolders_are_the_documented_packages() -> None:
    folders = {p.name for p in (ROOT / "platform").iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders == {"infra", "server", "local"}
    for folder in folders:
        assert (ROOT / "platform" / folder / "__init__.py").exists(), f"platform/{folder} is not a package"
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    assert {f"mlflow_platform.{folder}" for folder in folders} <= set(packages), "pip install would leave one out"


def test_the_three_packages_and_the_stdlib_platform_import_from_the_repository_root() -> None:
    code = (
        "import mlflow_platform.server, mlflow_platform.infra, mlflow_platform.local, platform, sys;"
        "print(platform.system(), 'mlflow' in sys.modules, 'pulumi' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    # The packages themselves load neither MLflow nor Pulumi: the toolkit may use the server's contract.
    assert result.stdout.split() == ["Linux", "False", "False"]


def test_platform_code_imports_as_mlflow_platform() -> None:
    import mlflow_platform.cli

    assert Path(mlflow_platform.cli.__file__).resolve().parent == (ROOT / "platform").resolve()


def test_import_toolkit_is_light() -> None:
    """A notebook's `import toolkit` pulls neither Pulumi nor (eagerly) MLflow."""
    code = (
        "import sys, toolkit; toolkit.ClientConfig; toolkit.PlatformConfig;"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'pulumi', 'pulumi_aws', 'mlflow', 'sklearn'});"
        "print(','.join(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_pip_install_does_not_pull_pulumi() -> None:
    """Pulumi is a uv dependency group (what `pulumi up` syncs), never a requirement of the package."""
    requirements = requires("mlflow-platform") or []
    assert requirements, "the package metadata lists no requirements at all"
    assert [r for r in requirements if r.lower().startswith("pulumi")] == []


def test_pulumi_project_and_its_uv_sync() -> None:
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["runtime"] == {"name": "python", "options": {"toolchain": "uv"}}
    assert project["main"] == "platform/"
    assert project["stackConfigDir"] == "stacks"
    # Pulumi's uv toolchain runs a plain `uv sync`: only default groups are installed by it.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    default_groups = pyproject["tool"]["uv"]["default-groups"]
    synced = [req for group in default_groups for req in pyproject["dependency-groups"][group]]
    for package in ("pulumi", "pulumi-aws", "pulumi-random"):
        assert any(req.startswith(package + ">") or req.startswith(package + "=") for req in synced), package
