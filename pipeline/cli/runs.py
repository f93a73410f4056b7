"""``nnpipe runs list|compare``: read run directories (``pipeline.runs.rundirs``)."""

from __future__ import annotations

from pathlib import Path
from typing import List

import typer

from pipeline.cli.options import command_group

app = command_group("List and compare run directories.")


@app.command("list")
def list_runs(
    root: Path = typer.Argument(Path("runs"), help="The folder holding run directories."),
) -> None:
    """A table of the runs under ROOT: name, date, settings that differ, accuracy, time."""
    from pipeline.runs.rundirs import find_runs, list_table

    runs = find_runs(root)
    if not runs:
        typer.echo(f"no runs in {root}")
        return
    typer.echo(list_table(runs))


@app.command("compare")
def compare(
    runs: List[Path] = typer.Argument(..., help="Two or more run directories."),
) -> None:
    """The settings that differ between runs, then their metrics side by side."""
    from pipeline.errors import UserError
    from pipeline.runs.rundirs import compare_text, load_run, seed_groups

    if len(runs) < 2:
        raise UserError("compare needs at least two run directories")
    infos = [load_run(path) for path in runs]
    typer.echo(compare_text(infos))
    grouped = seed_groups(infos)
    if grouped:
        typer.echo(f"\nruns that differ only in seed, grouped:\n{grouped}")
