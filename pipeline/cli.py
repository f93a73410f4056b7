"""The ``nnpipe`` command line: thin typer commands over the modules of ``pipeline``.

Exit status 0 on success, 2 for bad input (a file, a spec, data), 1 for a failure while running.
Errors are one line (or one line per problem) on stderr, without a traceback unless ``--debug``.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, List, Optional

import typer

from pipeline import settings
from pipeline.config import check_stage_class, load_pipeline, pipeline_model
from pipeline.errors import NnpipeError, PluginError
from pipeline.registry import GROUPS, default_registry
from pipeline.runner import Runner, StageReport, check_wiring

app = typer.Typer(
    name="nnpipe",
    help="Train and evaluate a numpy neural network from a declarative pipeline file.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

_state = {"debug": False}


@app.callback()
def main(
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback of an error."),
) -> None:
    """Train and evaluate a numpy neural network from a declarative pipeline file."""
    _state["debug"] = debug


def reports_errors(command: Callable) -> Callable:
    """Turn nnpipe's errors into one-line messages and exit statuses (2 input, 1 run)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except NnpipeError as exc:
            if _state["debug"]:
                raise
            for line in str(exc).splitlines() or [type(exc).__name__]:
                typer.echo(f"error: {line}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("interrupted: nothing half-written was kept (training resumes from its "
                       "last checkpoint when you run the pipeline again)", err=True)
            raise typer.Exit(130) from None

    return wrapper


OverridesOption = typer.Option(
    None, "--set", help="Override a field: PATH=VALUE, e.g. mlp_train.epochs=20 (repeatable)."
)
DataDirOption = typer.Option(
    None, "--data-dir", envvar="NNPIPE_DATA",
    help="Where registered datasets are looked for (env NNPIPE_DATA).",
)


class PlainProgress:
    """Progress as plain log lines: what a pipe or CI log should get."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet

    def begin(self, description: str, total: int) -> None:
        pass

    def advance(self, steps: int = 1, **fields: Any) -> None:
        pass

    def end(self) -> None:
        pass

    def log(self, message: str) -> None:
        if not self.quiet:
            typer.echo(f"  {message}")


def _print_stage(report: StageReport) -> None:
    typer.echo(f"{report.status:>6}  stages[{report.index}] {report.id:<14} {report.seconds:7.2f}s")


@app.command()
@reports_errors
def run(
    file: Path = typer.Argument(..., help="The pipeline file (YAML, TOML or JSON)."),
    overrides: Optional[List[str]] = OverridesOption,
    out: Optional[Path] = typer.Option(None, "--out", help="Run directory (default runs/NAME-TIME)."),
    data_dir: Optional[Path] = DataDirOption,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only the final summary."),
    cache_dir: Optional[Path] = typer.Option(
        None, "--cache-dir", envvar="NNPIPE_CACHE",
        help="Cache and checkpoint folder (env NNPIPE_CACHE; default ~/.cache/nnpipe). "
             "It holds pickles: use only a folder you trust."),
) -> None:
    """Run a pipeline file and write a run directory."""
    pipeline = load_pipeline(file, overrides or [])
    runner = Runner(data_dir=settings.data_dir(data_dir), progress=PlainProgress(quiet),
                    on_stage=None if quiet else _print_stage,
                    state_dir=settings.cache_dir(cache_dir))
    result = runner.run(pipeline, out=out)
    for name, value in result.artifacts.items():
        summary = getattr(value, "summary", None)
        if callable(summary):
            typer.echo(summary())
    typer.echo(f"run directory: {result.run_dir}")


@app.command()
@reports_errors
def predict(
    model: Path = typer.Argument(..., help="A run directory holding a saved model."),
    input: Path = typer.Argument(..., help="An IDX file of images, a PNG image or a folder of PNGs."),
    top: int = typer.Option(3, "--top", min=1, help="How many classes to show per sample."),
    labels: Optional[Path] = typer.Option(
        None, "--labels", help="An IDX file of true labels: also print the accuracy."),
    limit: Optional[int] = typer.Option(
        20, "--limit", help="Print at most this many samples (0: none, -1: all)."),
    predictor: str = typer.Option("mlp", "--predictor", help="The registered predictor to use."),
) -> None:
    """Classify images with a saved model, applying the run's saved normaliser."""
    function = default_registry().load("predictors", predictor)
    result = function(model, input, top=top, labels=labels)
    lines = result.lines(None if limit is not None and limit < 0 else limit)
    for line in lines:
        typer.echo(line)
    if len(lines) < len(result.names):
        typer.echo(f"... {len(result.names) - len(lines)} more (--limit -1 shows all)")
    if result.accuracy is not None:
        typer.echo(f"accuracy {result.accuracy:.4f}  ({len(result.names)} samples)")


@app.command()
@reports_errors
def validate(
    file: Path = typer.Argument(..., help="The pipeline file to check."),
    overrides: Optional[List[str]] = OverridesOption,
) -> None:
    """Check a pipeline file (fields, kinds, wiring) without running anything."""
    pipeline = load_pipeline(file, overrides or [])
    check_wiring(pipeline)
    stages = ", ".join(pipeline.stage_ids())
    typer.echo(f"{file}: ok ({len(pipeline.stages)} stages: {stages})")


@app.command()
@reports_errors
def plugins() -> None:
    """List every installed plugin by group, with its distribution and version."""
    registry = default_registry()
    for short, group in GROUPS.items():
        entries = registry.entries(short)
        typer.echo(f"{group} ({len(entries)})")
        for entry in entries:
            status = ""
            try:
                registry.load(short, entry.name,
                              check=check_stage_class if short == "stages" else None)
            except PluginError as exc:
                status = f"  BROKEN: {exc}"
            typer.echo(f"  {entry.name:<16} {entry.origin:<22} {entry.target}{status}")


@app.command()
@reports_errors
def schema(
    out: Optional[Path] = typer.Option(None, "--out", help="Write to this file instead of stdout."),
) -> None:
    """Print the JSON Schema of pipeline files, including installed plugins' stage kinds."""
    document = pipeline_model(default_registry()).model_json_schema()
    document["title"] = "nnpipe pipeline file"
    text = json.dumps(document, indent=2)
    if out is None:
        typer.echo(text)
    else:
        from pipeline.files import write_text

        write_text(out, text + "\n")
        typer.echo(f"schema written to {out}")


if __name__ == "__main__":  # pragma: no cover
    app()
