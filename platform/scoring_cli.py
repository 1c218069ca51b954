"""`mlflow-platform score MODEL_URI INPUT OUTPUT`: `toolkit.scoring.score` with progress and one-line errors.

Only typer and rich are imported at module level, so `mlflow-platform --help` stays fast; the toolkit's
scoring (MLflow, pyarrow, boto3) is imported when the command runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

if TYPE_CHECKING:
    from toolkit.scoring import ScoringProgress

console = Console()
err_console = Console(stderr=True)


def _fail(message: str) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def _one_line(exc: BaseException) -> str:
    """A multi-problem message (`SchemaMismatchError`, `ConfigError`) as one line."""
    lines = [line.strip().removeprefix("- ") for line in str(exc).splitlines() if line.strip()]
    if len(lines) <= 1:
        return lines[0] if lines else type(exc).__name__
    return f"{lines[0]} {'; '.join(lines[1:])}"


@contextmanager
def _progress() -> Iterator[Callable[[ScoringProgress], None]]:
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.fields[rows]}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        task = progress.add_task("starting", rows="")

        def report(update: ScoringProgress) -> None:
            if update.rows_done or update.rows_total:
                of = f" of {update.rows_total:,}" if update.rows_total is not None else ""
                rows = f"{update.rows_done:,}{of} rows"
            else:
                rows = ""
            progress.update(task, description=update.message, rows=rows)

        yield report


def score_command(
    model_uri: Annotated[
        str,
        typer.Argument(
            metavar="MODEL_URI",
            help="models:/<name>@<alias>, models:/<name>/<version>, models:/m-<id> or runs:/<run_id>.",
            show_default=False,
        ),
    ],
    input_path: Annotated[
        str,
        typer.Argument(
            metavar="INPUT",
            help="Samples to score: a path or s3:// URI ending in .parquet, .arrow/.feather/.ipc, .csv or .csv.gz.",
            show_default=False,
        ),
    ],
    output: Annotated[
        str,
        typer.Argument(
            metavar="OUTPUT", help="Where the predictions go: a .parquet path or s3:// URI.", show_default=False
        ),
    ],
    id_column: Annotated[
        str | None, typer.Option("--id-column", help="An input column copied into the output (e.g. sample ids).")
    ] = None,
    batch_rows: Annotated[
        int | None,
        typer.Option("--batch-rows", help="Rows per batch (default: about 64 MB of feature values).", min=1),
    ] = None,
    stack: Annotated[
        str | None, typer.Option("--stack", help="The platform's stack (default: the active profile).")
    ] = None,
) -> None:
    """Score a file of samples with a registered or logged model; write the predictions as Parquet."""
    from mlflow.exceptions import MlflowException

    from toolkit.errors import ToolkitError
    from toolkit.scoring import score

    try:
        with _progress() as report:
            result = score(
                model_uri, input_path, output, id_column=id_column, batch_rows=batch_rows, stack=stack, progress=report
            )
    except (ToolkitError, MlflowException, OSError) as exc:
        _fail(_one_line(exc))
    version = (
        f"{result.registered_model} version {result.registered_version}"
        if result.registered_version is not None
        else "not from the registry"
    )
    console.print(
        f"Scored [bold]{result.rows:,}[/] rows in {result.seconds:.1f} s -> {result.output}",
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f"model {result.model_id or '-'} ({version}), run {result.run_id or '-'}, "
        + ("model from the local cache" if result.model_files_downloaded == 0 else "model downloaded")
        + (f", {result.ignored_columns:,} input columns ignored" if result.ignored_columns else ""),
        highlight=False,
        soft_wrap=True,
    )
