"""``nnpipe tune``: a thin command over ``pipeline.tune``."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from pipeline.cli.options import CacheDirOption, DataDirOption, command_group
from pipeline.io import settings

app = command_group()

#: The time budget's options, here to keep the command short.
PrunerWarmupOption = typer.Option(
    None, "--pruner-warmup",
    help="Judge no trial before it has run this share of the complete trials' epochs (0.2).")
DeadlineOption = typer.Option(
    None, "--deadline",
    help="End the study this many seconds after the start: no trial starts after it, and the "
         "trials running then stop after their current epoch, recorded as pruned with their "
         "last value.")
StartIfFitsOption = typer.Option(
    False, "--start-if-fits",
    help="With --deadline: start no trial the time left cannot hold (the median seconds of the "
         "study's complete trials); a trial it cannot hold would stop unfinished, so the study "
         "ends sooner with the same best trial.")


@app.command(help="Search hyperparameters with Optuna (pruning, resumable study).\n\n"
                  """Example (the bundled MNIST sample; run it again to continue the study):

    nnpipe tune examples/mnist.yaml --param "mlp_train.optimizer.lr=float(1e-4,1e-1,log)"
    --param "mlp_train.hidden=choice([128],[256,128])" --param "mlp_train.dropout=float(0,0.5)"
    --set mlp_train.epochs=5 --trials 12 --jobs 2""")
def tune(
    file: Path = typer.Argument(..., help="The pipeline file (YAML, TOML or JSON)."),
    param: List[str] = typer.Option(
        ..., "--param", help="PATH=SPACE, SPACE one of float(LOW,HIGH), float(LOW,HIGH,log), "
                             "int(LOW,HIGH), int(LOW,HIGH,log), choice(A,B,...) (repeatable)."),
    trials: int = typer.Option(
        20, "--trials", help="Total complete + pruned trials of the study (not of this run)."),
    metric: Optional[str] = typer.Option(
        None, "--metric",
        help="What to optimise, in the direction its stage declares (default: the first "
             "metric the pipeline's stages declare, e.g. val_accuracy)."),
    sampler: str = typer.Option("tpe", "--sampler", help="tpe, random or grid."),
    sampler_seed: int = typer.Option(
        0, "--sampler-seed", help="Seed of the sampler's draws (another seed, another search)."),
    pruner: str = typer.Option(
        "median", "--pruner",
        help="median (stop a trial worse than the median of the complete trials at an epoch), "
             "median-reached (the median of every trial that reached the epoch, pruned ones "
             "too), quartile (stop it unless among the complete trials' best quarter) or none."),
    pruner_warmup: Optional[float] = PrunerWarmupOption,
    timeout: Optional[float] = typer.Option(
        None, "--timeout", help="Start no new trial this many seconds after the start (the "
                                "trials running then finish)."),
    deadline: Optional[float] = DeadlineOption,
    start_if_fits: bool = StartIfFitsOption,
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", help="Trials at a time (1)."),
    threads: Optional[int] = typer.Option(
        None, "--threads", help="BLAS threads per trial (default: cores / jobs)."),
    backend: str = typer.Option("loky", "--backend", help="loky or dask."),
    scheduler: Optional[str] = typer.Option(
        None, "--scheduler", help="Dask scheduler address (default: a local cluster)."),
    study: Optional[str] = typer.Option(
        None, "--study", help="Study name (default: the pipeline's name)."),
    storage: Optional[str] = typer.Option(
        None, "--storage", help="Optuna storage URL (default: sqlite in the tune directory)."),
    overrides: Optional[List[str]] = typer.Option(
        None, "--set", help="PATH=VALUE for every trial (repeatable)."),
    seeds: Optional[int] = typer.Option(
        None, "--seeds", help="Run each configuration with seeds 0..N-1; rank by the mean."),
    out: Optional[Path] = typer.Option(
        None, "--out", help="Tune directory (default runs/tune-STUDY)."),
    data_dir: Optional[Path] = DataDirOption,
    cache_dir: Optional[Path] = CacheDirOption,
) -> None:
    from pipeline.tune.run import TuneOptions, run_tune
    from pipeline.tune.space import parse_param

    params = [parse_param(text) for text in param]
    options = TuneOptions(trials, metric, sampler, pruner, timeout, jobs, backend, scheduler,
                          study, storage, tuple(overrides or ()), seeds, out, threads,
                          sampler_seed, deadline, pruner_warmup, start_if_fits)
    result = run_tune(file, params, options, cache_dir=settings.cache_dir(cache_dir),
                      data_dir=settings.data_dir(data_dir), echo=typer.echo)
    echo_result(result, params, result.info["metric"])


def echo_result(result, params, metric: str) -> None:
    """The trials table, the counts, the best trial, the seed comparison, where it all is."""
    from pipeline.tune.results import table

    typer.echo("")
    typer.echo(table(result.rows, params, metric, result.best))
    states = [r["state"] for r in result.rows]
    typer.echo(f"{states.count('COMPLETE')} complete, {states.count('PRUNED')} pruned, "
               f"{states.count('FAIL')} failed; {result.ran} trial(s) run now, "
               f"{result.seconds:.1f}s")
    if result.best is not None:
        typer.echo(f"best: trial {result.best['number']}, {metric} "
                   f"{result.best['value']:.4f}: {' '.join(result.best['overrides'])}")
        typer.echo(f"best configuration: {result.out / 'best.yaml'}")
    if result.sentence:
        typer.echo(result.sentence)
    typer.echo(f"tune directory: {result.out}")
