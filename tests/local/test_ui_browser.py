"""`mlflow-platform ui`: the proxy lets only this machine's browser in, and a real browser (headless
Chromium) sees the MLflow UI through it, signed in with the AWS identity, with no password anywhere."""

from __future__ import annotations

import io
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from rich.console import Console

from mlflow_platform.ui_proxy import UiProxy, start_ui_proxy
from tests.conftest import LocalPlatformHandle

CHROMIUM = shutil.which("chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Set to a path to keep the browser's screenshot there (docs/ui-proxy.png was made this way).
SCREENSHOT_ENV = "MLFLOW_UI_SCREENSHOT"
PAGE_TIMEOUT_MS = 90_000


@pytest.fixture
def proxy(local_platform: LocalPlatformHandle) -> Iterator[UiProxy]:
    running = start_ui_proxy(local_platform.client_config)
    try:
        yield running
    finally:
        running.stop()


def _current_user(url: str, **headers: str) -> requests.Response:
    return requests.get(url + "/api/2.0/mlflow/users/current", headers=headers, timeout=30)


def test_the_proxy_signs_in_as_you_and_only_for_this_machine(
    proxy: UiProxy, local_platform: LocalPlatformHandle
) -> None:
    assert proxy.url.startswith("http://127.0.0.1:")
    response = _current_user(proxy.url)
    assert response.status_code == 200, response.text
    assert response.json()["user"]["username"] == local_platform.identity.username
    # A page reaching it under another name (DNS rebinding), another site's request, a cross-site fetch.
    port = proxy.url.rsplit(":", 1)[1]
    assert _current_user(proxy.url, Host=f"evil.example.org:{port}").status_code == 421
    assert _current_user(proxy.url, Origin="https://evil.example.org").status_code == 403
    assert _current_user(proxy.url, **{"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert _current_user(proxy.url, Origin=proxy.url).status_code == 200
    # Listening on the loopback address only: another address of this machine is not answered.
    addresses = {str(info[4][0]) for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
    for address in addresses - {"127.0.0.1"}:
        if address.startswith("127."):
            continue
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://{address}:{port}/", timeout=5)


def test_a_refusal_reaches_the_browser_without_a_login_dialog(
    local_platform: LocalPlatformHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIA" + "Z" * 16)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-key")
    stranger = start_ui_proxy(local_platform.client_config)
    try:
        response = _current_user(stranger.url)
    finally:
        stranger.stop()
    assert response.status_code == 401
    assert "WWW-Authenticate" not in response.headers
    assert "matches no principal" in response.text


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="Debian's chromium is not installed here (apt-get install chromium); .ci/run installs it",
)
def test_a_browser_sees_the_demo_experiment_through_the_proxy(
    proxy: UiProxy, local_platform: LocalPlatformHandle, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    from mlflow_platform.demo import EXPERIMENT, train_and_score

    # The demo's own path, small: mlflow_init with the profile's identity, a tracked model, its scoring.
    train_and_score(local_platform.client_config, samples=40, features=200, console=Console(file=io.StringIO()))

    screenshot = Path(os.environ.get(SCREENSHOT_ENV) or tmp_path / "ui.png")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 800})
            dialogs: list[str] = []
            page.on("dialog", lambda dialog: dialogs.append(dialog.message))
            response = page.goto(proxy.url + "/#/experiments", timeout=PAGE_TIMEOUT_MS)
            assert response is not None
            assert response.status == 200
            page.get_by_text(EXPERIMENT).first.wait_for(timeout=PAGE_TIMEOUT_MS)
            page.screenshot(path=str(screenshot))
        finally:
            browser.close()
    assert dialogs == []
    assert screenshot.stat().st_size > 10_000
