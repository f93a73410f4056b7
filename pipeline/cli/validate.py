"""``nnpipe validate``: check a pipeline file without running anything."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from pipeline.cli.options import OverridesOption, command_group

app = command_group()


@app.command()
def validate(
    file: Path = typer.Argument(..., help="The pipeline file to check."),
    overrides: Optional[List[str]] = OverridesOption,
) -> None:
    """Check a pipeline file (fields, kinds, wiring) without running anything."""
    from pipeline.engine.config import load_pipeline
    from pipeline.engine.wiring import check_wiring

    pipeline = load_pipeline(file, overrides or [])
    check_wiring(pipeline)
    stages = ", ".join(pipeline.stage_ids())
    typer.echo(f"{file}: ok ({len(pipeline.stages)} stages: {stages})")
