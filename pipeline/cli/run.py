"""``nnpipe run``: run a pipeline file and write a run directory."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from pipeline.cli.options import (CacheDirOption, DataDirOption, OverridesOption, command_group,
                                  warn)

app = command_group()


@app.command()
def run(
    file: Path = typer.Argument(..., help="The pipeline file (YAML, TOML or JSON)."),
    overrides: Optional[List[str]] = OverridesOption,
    out: Optional[Path] = typer.Option(None, "--out", help="Run directory (default runs/NAME-TIME)."),
    data_dir: Optional[Path] = DataDirOption,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only the final summary."),
    cache_dir: Optional[Path] = CacheDirOption,
    no_cache: bool = typer.Option(False, "--no-cache", help="Run every stage; store nothing."),
    from_stage: Optional[str] = typer.Option(
        None, "--from", help="Rerun this stage (id, kind or index) and every one after it."),
) -> None:
    """Run a pipeline file and write a run directory."""
    from pipeline.cli.console import make_console  # rich: only a run draws progress
    from pipeline.engine.caching import cache_options
    from pipeline.engine.config import load_pipeline
    from pipeline.engine.runner import Runner, default_run_dir
    from pipeline.io import settings
    from pipeline.io.outputs import RUN, checked_out

    pipeline = load_pipeline(file, overrides or [])
    out = checked_out(out, RUN, lambda: default_run_dir(pipeline), cache_dir, data_dir, file)
    console = make_console(quiet)
    runner = Runner(data_dir=settings.data_dir(data_dir), progress=console,
                    on_stage=console.stage,
                    **cache_options(pipeline, cache_dir, no_cache, from_stage, warn))
    result = runner.run(pipeline, out=out)
    for name, value in result.artifacts.items():
        summary = getattr(value, "summary", None)
        if callable(summary):
            typer.echo(summary())
    typer.echo(f"run directory: {result.run_dir}")
