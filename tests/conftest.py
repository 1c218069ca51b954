"""Session fixtures shared by the server and toolkit tests: the local platform with PostgreSQL.

The platform is started once per test session, the first time a test asks for `local_platform`, and
stopped at the end of the session (also when a test or the start itself failed).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from mlflow_platform.local.identity import EmulatorKey
    from mlflow_platform.local.platform import LocalPlatform
    from toolkit.client_config import ClientConfig


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalPlatformHandle:
    """The running local platform (PostgreSQL metadata, moto for S3/Secrets Manager/SSM), for tests.

    Stable interface (the toolkit tests rely on it):
    - `client_config: ClientConfig`: what `mlflow-platform local up` publishes (stack "local"); also
      saved as the active profile `local` in `config_dir`, which `MLFLOW_PLATFORM_CONFIG_DIR` points to
      for the whole session, so the toolkit resolves it with no arguments.
    - `tracking_uri`: the server's URL, `http://127.0.0.1:<port>`.
    - `moto_endpoint`: the emulated AWS endpoint (also `client_config.aws_endpoint_url`). The session
      has `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` set to the emulator key of the IAM user `local up`
      created for the person running the tests (`identity`), `AWS_DEFAULT_REGION` set, and no
      `AWS_ENDPOINT_URL`: clients must take the endpoint from the config.
    - `admin_username`, `admin_password`: read from the admin secret in moto at each access, so they
      stay right after a test rotated the secret and restarted the server.
    - `restart_server()`: stop and start the server process only (moto and PostgreSQL keep running);
      it re-reads the secrets, as a new ECS task would, and returns once `/health` answers.
    - `aws_client(service)`: a boto3 client for moto (`"s3"`, `"secretsmanager"`, `"ssm"`).
    - `bucket`, `admin_secret_id`, `data_dir`, `config_dir`, and `platform` (the `LocalPlatform`).
    """

    platform: LocalPlatform
    client_config: ClientConfig
    config_dir: Path
    admin_username: str = field(init=False)

    def __post_init__(self) -> None:
        self.admin_username = str(self._admin_secret()["username"])

    def _admin_secret(self) -> dict[str, Any]:
        from mlflow_platform.local.platform import ADMIN_SECRET_ID

        secret: dict[str, Any] = json.loads(self.platform.read_secret(ADMIN_SECRET_ID))
        return secret

    @property
    def admin_password(self) -> str:
        return str(self._admin_secret()["password"])

    @property
    def tracking_uri(self) -> str:
        return self.client_config.tracking_uri

    @property
    def moto_endpoint(self) -> str:
        return self.platform.moto_endpoint

    @property
    def data_dir(self) -> Path:
        return self.platform.data_dir

    @property
    def bucket(self) -> str:
        return self.client_config.artifact_bucket

    @property
    def admin_secret_id(self) -> str:
        from mlflow_platform.local.platform import ADMIN_SECRET_ID

        return ADMIN_SECRET_ID

    def aws_client(self, service: str) -> Any:
        return self.platform.aws_client(service)

    def restart_server(self) -> None:
        self.platform.restart_server()

    @property
    def identity(self) -> EmulatorKey:
        """The IAM user `local up` created for the person running the tests, with its emulator key."""
        identity = self.platform.identity()
        assert identity is not None
        return identity


@pytest.fixture(scope="session")
def local_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPlatformHandle]:
    """The local platform with PostgreSQL in a temporary data dir; see `LocalPlatformHandle`."""
    from mlflow_platform.local.platform import LocalPlatform, LocalPorts

    # Not under pytest's tmp dirs: those are private to root, and the PostgreSQL cluster runs as the
    # unprivileged `postgres` user, which must be able to traverse to its directory.
    data_dir = Path(tempfile.mkdtemp(prefix="mlflow-platform-test-"))
    data_dir.chmod(0o711)
    config_dir = tmp_path_factory.mktemp("platform-config")
    platform = LocalPlatform(data_dir / "data")
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith(("MLFLOW_PLATFORM_", "MLFLOW_TRACKING_", "AWS_")):
                patch.delenv(name)
        patch.setenv("MLFLOW_PLATFORM_CONFIG_DIR", str(config_dir))
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        try:
            platform.up(postgres=True, ports=LocalPorts(free_port(), free_port(), free_port()))
            identity = platform.identity()
            assert identity is not None
            patch.setenv("AWS_ACCESS_KEY_ID", identity.access_key_id)
            patch.setenv("AWS_SECRET_ACCESS_KEY", identity.secret_access_key)
            yield LocalPlatformHandle(platform, platform.client_config(), config_dir)
        finally:
            try:
                platform.down()
            finally:
                _keep_logs_on_failure(platform, tmp_path_factory)
                shutil.rmtree(data_dir, ignore_errors=True)


def _keep_logs_on_failure(platform: LocalPlatform, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Copy the processes' logs next to pytest's temp files, where a failed run can be inspected."""
    if platform.log_dir.is_dir():
        shutil.copytree(platform.log_dir, tmp_path_factory.mktemp("local-platform-logs"), dirs_exist_ok=True)
