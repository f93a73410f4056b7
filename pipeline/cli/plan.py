"""``nnpipe plan``: which stages are cached and which would run, and why."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from pipeline.cli.options import (CacheDirOption, DataDirOption, OverridesOption, command_group,
                                  warn)

app = command_group()


@app.command()
def plan(
    file: Path = typer.Argument(..., help="The pipeline file (YAML, TOML or JSON)."),
    overrides: Optional[List[str]] = OverridesOption,
    data_dir: Optional[Path] = DataDirOption,
    cache_dir: Optional[Path] = CacheDirOption,
    from_stage: Optional[str] = typer.Option(
        None, "--from", help="Plan a rerun from this stage (id, kind or index) on."),
    check: bool = typer.Option(
        False, "--check", help="Exit 1 when any stage would run, 0 when all are cached (CI)."),
) -> None:
    """Show, without running anything, which stages are cached and which will run, and why."""
    from pipeline.engine.caching import cache_options
    from pipeline.engine.config import load_pipeline
    from pipeline.engine.keys import FileHasher
    from pipeline.engine.plan import plan as make_plan
    from pipeline.io import settings

    pipeline = load_pipeline(file, overrides or [])
    options = cache_options(pipeline, cache_dir, False, from_stage, warn)
    hasher = FileHasher(options["state_dir"] / "file-hashes.json")
    planned = make_plan(pipeline, options["cache"], settings.data_dir(data_dir), hasher,
                        options["force_from"])
    for stage in planned:
        typer.echo(stage.line())
    hasher.flush()
    if check and any(stage.status != "cached" for stage in planned):
        raise typer.Exit(1)
