"""``nnpipe sweep``: a thin command over ``pipeline.sweep``."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from pipeline.cli.options import CacheDirOption, DataDirOption, command_group, warn
from pipeline.io import settings


app = command_group()


@app.command()
def sweep(
    file: Path = typer.Argument(..., help="The pipeline file (YAML, TOML or JSON)."),
    grid: List[str] = typer.Option(
        ..., "--grid", help="PATH=V1,V2,...: the values of one field, e.g. "
                            "mlp_train.optimizer.lr=0.1,0.01 (repeatable: the runs are the "
                            "cartesian product)."),
    overrides: Optional[List[str]] = typer.Option(
        None, "--set", help="PATH=VALUE for every run, e.g. mlp_train.epochs=5 (repeatable)."),
    seeds: Optional[int] = typer.Option(
        None, "--seeds", help="Run each configuration with pipeline seeds 0..N-1."),
    jobs: Optional[int] = typer.Option(
        None, "--jobs", "-j", help="Runs at a time (default: every core)."),
    threads: Optional[int] = typer.Option(
        None, "--threads", help="BLAS threads per run (default: cores / jobs, at least 1)."),
    backend: str = typer.Option("loky", "--backend", help="joblib backend: loky or dask."),
    scheduler: Optional[str] = typer.Option(
        None, "--scheduler", help="Dask scheduler address (default: a local cluster)."),
    metric: Optional[str] = typer.Option(
        None, "--metric",
        help="What to rank by: the last epoch's value in history.json, else metrics.json "
             "(default: the first the pipeline's stages declare, e.g. val_accuracy)."),
    mode: Optional[str] = typer.Option(
        None, "--mode", help="min or max (default: as the stage declaring the metric says; "
                            "max for a metric no stage declares)."),
    out: Optional[Path] = typer.Option(
        None, "--out", help="Sweep directory (default runs/sweep-NAME-TIME)."),
    data_dir: Optional[Path] = DataDirOption,
    cache_dir: Optional[Path] = CacheDirOption,
) -> None:
    """Run a pipeline over a grid of overrides, in parallel; rank the configurations."""
    from pipeline.sweep.grid import parse_grid
    from pipeline.sweep.results import table
    from pipeline.sweep.run import run_sweep
    from pipeline.sweep.shared import shared_line

    axes = [parse_grid(text) for text in grid]
    result = run_sweep(file, axes, seeds=seeds, jobs=jobs, backend=backend,
                       scheduler=scheduler, out=out,
                       cache_dir=settings.cache_dir(cache_dir),
                       data_dir=settings.data_dir(data_dir), metric=metric, mode=mode,
                       fixed=overrides or [], threads=threads, echo=typer.echo,
                       warn=warn)
    typer.echo("")
    typer.echo(table(result.rows, result.info["metric"], axes))
    typer.echo("")
    typer.echo(shared_line(result.shared))
    if result.info.get("seed_comparison"):
        typer.echo(result.info["seed_comparison"])
    failed = sum(1 for r in result.runs if r["status"] != "ok")
    typer.echo(f"{len(result.runs)} runs, {failed} failed, {result.seconds:.1f}s")
    if result.best_file is not None:
        typer.echo(f"best configuration: {result.best_file}")
    typer.echo(f"sweep directory: {result.out}")
    if result.failure():
        from pipeline.errors import RunError

        raise RunError(result.failure())
