"""README's notebook example runs as written against the local platform: the very block, read from README."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_notebook_example() -> str:
    section = README.read_text(encoding="utf-8").split("## In a notebook", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert match, "README's 'In a notebook' section has no python block"
    return match.group(1)


def test_notebook_example_runs_as_written(tracking: Callable[..., Any], capsys: pytest.CaptureFixture[str]) -> None:
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(compile(readme_notebook_example(), str(README), "exec"), namespace)  # noqa: S102 - README's own example
    output = capsys.readouterr().out
    assert "s3://" in output
    assert namespace["path"].startswith("s3://")
    assert namespace["path"].endswith("/artifacts")
    assert namespace["run"].data.metrics["r2_score"] > 0
