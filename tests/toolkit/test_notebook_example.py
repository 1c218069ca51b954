"""The notebook example handed to README runs as written against the local platform."""

from __future__ import annotations

import runpy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


def test_notebook_example_runs_as_written(tracking: Callable[..., Any], capsys: pytest.CaptureFixture[str]) -> None:
    namespace = runpy.run_path(str(Path(__file__).with_name("notebook_example.py")))
    output = capsys.readouterr().out
    assert "s3://" in output
    assert namespace["path"].endswith("/artifacts")
