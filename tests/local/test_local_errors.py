"""The local platform's clear refusals, checked without starting anything heavy."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from mlflow_platform.local.platform import LocalPlatform, LocalPlatformError, LocalPorts
from tests.conftest import free_port


def test_a_port_taken_by_another_program_is_named_with_the_option_to_change_it(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = int(blocker.getsockname()[1])
        platform = LocalPlatform(tmp_path / "data")
        with pytest.raises(LocalPlatformError, match=rf"port {taken} \(moto\).*--moto-port"):
            platform.up(ports=LocalPorts(server=free_port(), moto=taken, postgres=free_port()))
    assert platform.down() == []


def test_a_sqlite_data_dir_is_not_silently_switched_to_postgres(tmp_path: Path) -> None:
    platform = LocalPlatform(tmp_path / "data")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "platform.json").write_text('{"database": "sqlite"}')
    with pytest.raises(LocalPlatformError, match="holds a sqlite platform"):
        platform.up(postgres=True)


def test_status_of_a_platform_never_started(tmp_path: Path) -> None:
    status = LocalPlatform(tmp_path / "never").status()
    assert not status.running
    assert not status.healthy
    assert status.database is None
