"""`mlflow-platform local up|status|down` and `mlflow-platform demo`, registered on the app in `cli.py`.

Only typer and rich are imported at module level, so `mlflow-platform --help` stays fast; the local
platform (boto3, moto, MLflow) is imported when a command runs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich import box
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from mlflow_platform.local.platform import LocalPlatform, LocalStatus, Reporter

local_app = typer.Typer(
    help="The local platform: moto (S3, Secrets Manager, SSM, IAM, STS), a database and the tracking server.",
    no_args_is_help=True,
)
console = Console()
err_console = Console(stderr=True)

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="MLFLOW_PLATFORM_DATA_DIR",
        help="Where the platform keeps its state (default: the user data dir + /local).",
    ),
]
PostgresOption = Annotated[
    bool | None,
    typer.Option(
        "--postgres/--no-postgres",
        help="Metadata in a throwaway PostgreSQL 15 cluster instead of SQLite (fixed at the first `up`).",
    ),
]
PortOption = Annotated[int | None, typer.Option("--port", help="Tracking server port (default 5050).")]
MotoPortOption = Annotated[int | None, typer.Option("--moto-port", help="moto port (default 5051).")]
PostgresPortOption = Annotated[int | None, typer.Option("--postgres-port", help="PostgreSQL port (default 5052).")]


def print_labelled(console: Console, label: str, value: str) -> None:
    """`label:` on one line and the value whole on the next, however narrow the terminal: paths, URLs
    and ids are never broken by rich (a terminal narrower than the value wraps it, and copying the
    line gives the value back)."""
    console.print(Text(f"{label}:", style="bold"), soft_wrap=True)
    console.print(Text(f"  {value}"), soft_wrap=True)


def _fail(message: str) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


@contextmanager
def _progress(title: str) -> Iterator[Reporter]:
    """A spinner with the current step and the elapsed time (start-up takes tens of seconds)."""
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console, transient=True
    ) as progress:
        task = progress.add_task(title)

        def report(message: str) -> None:
            progress.console.print(f"[dim]-[/] {message}", highlight=False, soft_wrap=True)
            progress.update(task, description=message)

        yield report


def _platform(data_dir: Path | None) -> LocalPlatform:
    from mlflow_platform.local.platform import LocalPlatform

    return LocalPlatform(data_dir)


def bring_up(
    platform: LocalPlatform,
    *,
    postgres: bool | None,
    port: int | None,
    moto_port: int | None,
    postgres_port: int | None,
) -> bool:
    """Start the platform with progress; returns False when it was already running. Errors exit 1."""
    from dataclasses import replace

    from mlflow_platform.local.platform import LocalPlatformError

    ports = None
    if port or moto_port or postgres_port:
        current = platform.ports()
        ports = replace(
            current,
            server=port or current.server,
            moto=moto_port or current.moto,
            postgres=postgres_port or current.postgres,
        )
    try:
        with _progress("starting the local platform") as report:
            started = platform.up(postgres=postgres, ports=ports, report=report)
    except LocalPlatformError as exc:
        _fail(str(exc))
    return started


def _print_ready(platform: LocalPlatform, started: bool) -> None:
    from mlflow_platform.local.platform import ADMIN_SECRET_ID

    status = platform.status()
    verb = "is up" if started else "was already running"
    console.print(f"[bold green]The local platform {verb}.[/]")
    print_labelled(console, "tracking URI", status.tracking_uri)
    print_labelled(console, "data dir", str(platform.data_dir))
    console.print("Profile `local` is active: `mlflow_init()` needs no arguments.", highlight=False, soft_wrap=True)
    identity = platform.identity()
    if identity is not None:
        print_labelled(
            console, "you sign in as (an IAM user of the emulator; `mlflow-platform whoami`)", identity.username
        )
    print_labelled(console, "break-glass admin's password (emulated Secrets Manager)", ADMIN_SECRET_ID)
    print_labelled(console, "emulated AWS endpoint (S3, Secrets Manager, SSM, IAM, STS)", platform.moto_endpoint)
    console.print("Stop it with `mlflow-platform local down`.", highlight=False, soft_wrap=True)


@local_app.command("up")
def up(
    data_dir: DataDirOption = None,
    postgres: PostgresOption = None,
    port: PortOption = None,
    moto_port: MotoPortOption = None,
    postgres_port: PostgresPortOption = None,
    foreground: Annotated[bool, typer.Option("--foreground", help="Stay attached; Ctrl-C stops the platform.")] = False,
) -> None:
    """Start the local platform and return once it is healthy (it keeps running in the background)."""
    platform = _platform(data_dir)
    started = bring_up(platform, postgres=postgres, port=port, moto_port=moto_port, postgres_port=postgres_port)
    _print_ready(platform, started)
    if foreground:
        _stay_attached(platform)


def _stay_attached(platform: LocalPlatform) -> None:
    """Until Ctrl-C (or SIGTERM, e.g. from a process manager), then `down`."""
    import signal

    def _interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _interrupt)
    console.print("Running in the foreground; Ctrl-C stops it.")
    try:
        while True:
            time.sleep(2)
            if not any(p.running for p in platform.status().processes if p.name == "server"):
                err_console.print(f"the tracking server stopped; see {platform.log_dir / 'server.log'}")
                break
    except KeyboardInterrupt:
        pass
    platform.down(report=lambda message: console.print(f"- {message}"))


@local_app.command("status")
def status(data_dir: DataDirOption = None) -> None:
    """Show which of the platform's processes run, on which ports, and whether the server is healthy."""
    platform = _platform(data_dir)
    current = platform.status()
    _print_status(current)
    if not current.running:
        console.print("Not running: start it with `mlflow-platform local up`.")


def _print_status(current: LocalStatus) -> None:
    """Short fields in a table; the data dir and the tracking URI whole, each on its own line."""
    print_labelled(console, "data dir", str(current.data_dir))
    print_labelled(console, f"tracking URI ({'healthy' if current.healthy else 'not healthy'})", current.tracking_uri)
    ports = {"moto": current.ports.moto, "postgres": current.ports.postgres, "server": current.ports.server}
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in ("process", "pid", "port", "state"):
        table.add_column(column, no_wrap=True)
    for process in current.processes:
        state = "running" if process.running else "stopped"
        table.add_row(process.name, str(process.pid or "-"), str(ports.get(process.name, "-")), state)
    console.print(table)
    console.print(f"database: {current.database or 'not created yet'}", highlight=False)


@local_app.command("down")
def down(data_dir: DataDirOption = None) -> None:
    """Stop the platform; its state (runs, users, artifacts) stays in the data directory for the next `up`."""
    from mlflow_platform.local.platform import LocalPlatformError

    platform = _platform(data_dir)
    try:
        stopped = platform.down(report=lambda message: console.print(f"- {message}"))
    except LocalPlatformError as exc:
        _fail(str(exc))
    if not stopped:
        console.print(f"Nothing was running (data: {platform.data_dir}).")
    else:
        console.print(f"Stopped; the state stays in {platform.data_dir}.")


def demo(
    samples: Annotated[int, typer.Option(min=10, help="Samples (rows) of the synthetic data.")] = 200,
    features: Annotated[
        int, typer.Option(min=1, help="Features (methylation sites); 500000 for the real width.")
    ] = 50000,
    data_dir: DataDirOption = None,
    postgres: PostgresOption = None,
    port: PortOption = None,
    moto_port: MotoPortOption = None,
    postgres_port: PostgresPortOption = None,
) -> None:
    """The main job on the local platform: bring it up (or use the running one), then train and track a model."""
    from mlflow_platform.demo import train_and_score

    platform = _platform(data_dir)
    started = bring_up(platform, postgres=postgres, port=port, moto_port=moto_port, postgres_port=postgres_port)
    _print_ready(platform, started)
    train_and_score(platform.client_config(), samples=samples, features=features, console=console)
