"""``nnpipe report``: one self-contained HTML page of a run."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from pipeline.cli.options import command_group

app = command_group()


@app.command("report")
def report(
    run: Path = typer.Argument(..., help="A run directory."),
    out: Optional[Path] = typer.Option(None, "--out", help="Where to write (default RUN/report.html)."),
) -> None:
    """Write one self-contained HTML page of a run: settings, metrics, plots."""
    from pipeline.runs.report import write_report

    typer.echo(f"report written to {write_report(run, out)}")
