"""`mlflow-platform`: the command line. Commands import what they need when they run, so `--help` is fast."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from mlflow_platform.identity_cli import ui_command, whoami_command
from mlflow_platform.local.cli import demo, local_app, print_labelled
from mlflow_platform.scoring_cli import score_command

app = typer.Typer(help="A self-hosted, authenticated MLflow platform on AWS, and its local twin.", no_args_is_help=True)
config_app = typer.Typer(help="Client profiles: where notebooks find the tracking server.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(local_app, name="local")
app.command("demo")(demo)
app.command("score")(score_command)
app.command("whoami")(whoami_command)
app.command("ui")(ui_command)

console = Console()
err_console = Console(stderr=True)
# Longest value or source `config show` keeps in its table: three such columns fit 80 columns.
_SHORT = 24


def fail(message: str) -> NoReturn:
    """A user-facing error: the message, no traceback, exit status 1."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def _stack_outputs_from_pulumi(stack: str, cwd: Path | None) -> dict[str, object]:
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        fail(
            "the Pulumi CLI is not on PATH: install it (https://www.pulumi.com/docs/install/) "
            f"or read the published config with `mlflow-platform config pull --stack {stack} --from-ssm`"
        )
    command = [pulumi, "stack", "output", "--json", "--stack", stack]
    if cwd is not None:
        command += ["--cwd", str(cwd)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        last_line = (result.stderr.strip().splitlines() or ["no output"])[-1]
        fail(f"`pulumi stack output --stack {stack}` failed: {last_line}")
    outputs = json.loads(result.stdout or "{}")
    if not isinstance(outputs, dict):
        fail(f"`pulumi stack output --json --stack {stack}` printed {type(outputs).__name__}, expected an object")
    return outputs


@config_app.command("pull")
def config_pull(
    stack: Annotated[str, typer.Option(help="The Pulumi stack whose client config to fetch.")],
    from_ssm: Annotated[
        bool, typer.Option("--from-ssm", help="Read the SSM parameter the stack published instead of Pulumi's outputs.")
    ] = False,
    region: Annotated[
        str | None, typer.Option(help="AWS region of the stack (with --from-ssm); defaults to AWS_REGION.")
    ] = None,
    cwd: Annotated[
        Path | None, typer.Option(help="Directory of the Pulumi project (default: the current one).")
    ] = None,
    activate: Annotated[bool, typer.Option(help="Make the pulled profile the active one.")] = True,
) -> None:
    """Fetch a deployed stack's client config and save it as a profile named after the stack."""
    from toolkit.aws import AwsAccessError
    from toolkit.client_config import ClientConfig
    from toolkit.errors import ConfigError
    from toolkit.profiles import save_profile
    from toolkit.resolve import read_ssm_client_config

    try:
        if from_ssm:
            config = read_ssm_client_config(stack, region=region)
        else:
            config = ClientConfig.from_stack_outputs(
                _stack_outputs_from_pulumi(stack, cwd), source=f"outputs of stack {stack}"
            )
        path = save_profile(config, stack, activate=activate)
    except (ConfigError, AwsAccessError) as exc:
        fail(str(exc))
    console.print(f"Saved profile [bold]{stack}[/] to {path}" + (" (active)" if activate else ""))


@config_app.command("use")
def config_use(name: Annotated[str, typer.Argument(help="Profile to activate.")]) -> None:
    """Make a profile the active one (what `mlflow_init()` uses when nothing else is given)."""
    from toolkit.errors import ConfigError
    from toolkit.profiles import use_profile

    try:
        use_profile(name)
    except ConfigError as exc:
        fail(str(exc))
    console.print(f"Active profile: [bold]{name}[/]")


@config_app.command("list")
def config_list() -> None:
    """List the saved profiles; the active one is marked."""
    from toolkit.profiles import active_profile_name, config_dir, list_profiles

    names = list_profiles()
    folder = config_dir() / "profiles"
    if not names:
        print_labelled(console, "No profiles yet in", str(folder))
        console.print(
            "Create one with `mlflow-platform config pull --stack NAME` or `mlflow-platform local up`.",
            highlight=False,
            soft_wrap=True,
        )
        return
    print_labelled(console, "Profiles (* = active) in", str(folder))
    active = active_profile_name()
    for name in names:
        console.print(Text(f"{'*' if name == active else ' '} {name}"), soft_wrap=True)


@config_app.command("show")
def config_show(
    stack: Annotated[str | None, typer.Option(help="Show this stack's profile instead of the active one.")] = None,
) -> None:
    """Show the resolved client config and where each value comes from. Secrets are never printed."""
    from toolkit.aws import AwsAccessError
    from toolkit.credentials import PASSWORD_ENV, USERNAME_ENV
    from toolkit.errors import ConfigError
    from toolkit.resolve import resolve_client_config

    try:
        resolved = resolve_client_config(stack=stack)
    except (ConfigError, AwsAccessError) as exc:
        fail(str(exc))
    console.print(Text(f"Client config of stack {resolved.config.stack}", style="bold"), soft_wrap=True)
    # Short values in a table; URLs, ARNs and anything long whole on their own lines, never cut mid-word.
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in ("field", "value", "from"):
        table.add_column(column, no_wrap=True)
    long_values: list[tuple[str, str]] = []
    for field, value in resolved.config.model_dump().items():
        shown = "(not set)" if value is None else str(value)
        source = resolved.sources.get(field, "default")
        if len(shown) > _SHORT or len(source) > _SHORT:
            long_values.append((f"{field} (from {source})", shown))
        else:
            table.add_row(field, shown, source)
    console.print(table)
    for label, shown in long_values:
        print_labelled(console, label, shown)
    if os.environ.get(USERNAME_ENV) and os.environ.get(PASSWORD_ENV):
        where = f"env {USERNAME_ENV} / {PASSWORD_ENV}"
    else:
        where = "the Secrets Manager secret credentials_secret_id"
    console.print(Text(f"credentials: (hidden), from {where}"), soft_wrap=True)
