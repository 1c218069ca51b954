"""`mlflow-platform whoami` and `mlflow-platform ui`, registered on the app in `cli.py`.

Both resolve the stack's client config as a notebook would (`--stack`, else the active profile) and
sign in with your AWS identity; neither reads or prints a secret.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from toolkit.client_config import ClientConfig

console = Console()
err_console = Console(stderr=True)

StackOption = Annotated[
    str | None, typer.Option("--stack", help="The stack to sign in to (default: the active profile).")
]


def _fail(message: str) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def _config(stack: str | None) -> ClientConfig:
    from toolkit.errors import ToolkitError
    from toolkit.resolve import resolve_client_config

    try:
        return resolve_client_config(stack=stack).config
    except ToolkitError as exc:
        _fail(str(exc))


def whoami_command(stack: StackOption = None) -> None:
    """Your AWS principal, the MLflow user the stack's server maps it to, and whether that user is an admin."""
    from toolkit.errors import ToolkitError
    from toolkit.whoami import whoami

    config = _config(stack)
    try:
        identity = whoami(config)
    except ToolkitError as exc:
        _fail(str(exc))
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    table.add_row("tracking server", identity.tracking_uri)
    table.add_row("signed in with", identity.signed_in_with)
    table.add_row("AWS principal", identity.principal or "-")
    table.add_row("MLflow user", identity.mlflow_user or "- (refused)")
    table.add_row("admin", "yes" if identity.admin else "no")
    console.print(table)
    if identity.refused:
        _fail(f"the server refused you: {identity.refused}")


def ui_command(
    stack: StackOption = None,
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Local port (0: any free port).")] = 0,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Print the URL; do not open a browser.")] = False,
) -> None:
    """The MLflow UI in your browser, signed in with your AWS identity (a proxy on 127.0.0.1; Ctrl-C stops it)."""
    from mlflow_platform.ui_proxy import start_ui_proxy

    config = _config(stack)
    if config.auth != "aws-iam":
        _fail(f"stack {config.stack} signs in with a password (auth: basic); open {config.tracking_uri} instead")
    try:
        proxy = start_ui_proxy(config, port)
    except OSError as exc:
        _fail(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}")
    console.print(f"MLflow UI of stack {config.stack}, signed in as you:", highlight=False)
    console.print(f"  {proxy.url}", highlight=False, soft_wrap=True)
    console.print("Only this machine's browser may use it. Ctrl-C stops it.", highlight=False)
    if not no_browser:
        import webbrowser

        webbrowser.open(proxy.url)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        proxy.stop()
