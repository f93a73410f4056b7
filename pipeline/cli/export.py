"""``nnpipe export RUN --format onnx [--out FILE]``: a run's model in a standard format.

The framework knows no model: the format names an exporter registered in the
``nnpipe.exporters`` entry-point group (``onnx`` is the MLP's), called as
``exporter(run_dir, out) -> path written``. An exporter writes only new files or files it
recognises as its own earlier export.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from pipeline.cli.options import command_group

app = command_group()


@app.command("export")
def export(
    run: Path = typer.Argument(..., help="A run directory holding a saved model."),
    format: str = typer.Option("onnx", "--format", help="An installed exporter (onnx)."),
    out: Optional[Path] = typer.Option(
        None, "--out", help="The file to write (default RUN/model.<format>); only a new "
                            "file or an earlier nnpipe export is replaced."),
) -> None:
    """Export a run's whole inference path (transforms, layers, link) to a file."""
    from pipeline.io.outputs import record_in_run
    from pipeline.registry import default_registry

    exporter = default_registry().load("exporters", format)
    written = Path(exporter(run, out))
    record_in_run(run, written)  # a file nnpipe wrote into the run directory joins its manifest
    typer.echo(f"{format} model written to {written}")
