"""The ``nnpipe`` command line: thin typer commands over the modules of ``pipeline``.

Exit status 0 on success, 2 for bad input (a file, a spec, data), 1 for a failure while running.
Errors are one line (or one line per problem) on stderr, without a traceback unless ``--debug``.
"""

from __future__ import annotations

import functools
import json
import signal
import threading
from pathlib import Path
from typing import Any, Callable, List, Optional

import typer

from pipeline import report, runs, settings
from pipeline.config import load_pipeline, pipeline_model
from pipeline.errors import NnpipeError
from pipeline.registry import default_registry
from pipeline.runner import Runner, check_wiring

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


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so it unwinds exactly like Ctrl-C."""


def _raise_terminated(signum, frame) -> None:
    # A second SIGTERM must not cut short the clean-up the first one starts.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated()


#: Exit statuses of an interrupted command: 128 + the signal's number, as shells report it.
INTERRUPTED, TERMINATED = 128 + signal.SIGINT, 128 + signal.SIGTERM


def reports_errors(command: Callable) -> Callable:
    """Turn nnpipe's errors into one-line messages and exit statuses (2 input, 1 run); Ctrl-C
    and SIGTERM into one line and 130 or 143, after every half-written file was removed."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _raise_terminated) if main_thread else None
        try:
            return command(*args, **kwargs)
        except NnpipeError as exc:
            if _state["debug"]:
                raise
            for line in str(exc).splitlines() or [type(exc).__name__]:
                typer.echo(f"error: {line}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt as exc:
            typer.echo("interrupted: nothing half-written was kept (training resumes from its "
                       "last checkpoint when you run the pipeline again)", err=True)
            raise typer.Exit(TERMINATED if isinstance(exc, Terminated) else INTERRUPTED) from None
        finally:
            if main_thread and previous is not None:  # None: a handler not set from Python
                signal.signal(signal.SIGTERM, previous)

    return wrapper


OverridesOption = typer.Option(
    None, "--set", help="Override a field: PATH=VALUE, e.g. mlp_train.epochs=20 (repeatable)."
)
DataDirOption = typer.Option(
    None, "--data-dir", envvar="NNPIPE_DATA",
    help="Where registered datasets are looked for (env NNPIPE_DATA).",
)


CacheDirOption = typer.Option(
    None, "--cache-dir", envvar="NNPIPE_CACHE",
    help="Cache and checkpoint folder (env NNPIPE_CACHE; default ~/.cache/nnpipe). "
         "It holds pickles: use only a folder you trust.")


def cache_options(pipeline, cache_dir: Optional[Path], no_cache: bool,
                  from_stage: Optional[str]) -> dict[str, Any]:
    """The Runner's ``cache``, ``state_dir`` and ``force_from`` for the cache options."""
    from pipeline.cache import StageCache
    from pipeline.plan import resolve_stage

    force_from = resolve_stage(pipeline, from_stage) if from_stage is not None else None
    if no_cache:
        return {"cache": None, "state_dir": None, "force_from": force_from}
    from pipeline.outputs import check_cache_folder

    folder = check_cache_folder(settings.cache_dir(cache_dir))

    def warn(message: str) -> None:
        typer.echo(f"warning: {message}", err=True)

    return {"cache": StageCache(folder, warn=warn), "state_dir": folder, "force_from": force_from}


@app.command()
@reports_errors
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
    from pipeline.console import make_console  # rich: only a run draws progress
    from pipeline.outputs import RUN, checked_out
    from pipeline.runner import default_run_dir

    pipeline = load_pipeline(file, overrides or [])
    out = checked_out(out, RUN, lambda: default_run_dir(pipeline), cache_dir, data_dir, file)
    console = make_console(quiet)
    runner = Runner(data_dir=settings.data_dir(data_dir), progress=console,
                    on_stage=console.stage,
                    **cache_options(pipeline, cache_dir, no_cache, from_stage))
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
    from pipeline.keys import FileHasher
    from pipeline.plan import plan as make_plan

    pipeline = load_pipeline(file, overrides or [])
    options = cache_options(pipeline, cache_dir, False, from_stage)
    hasher = FileHasher(options["state_dir"] / "file-hashes.json")
    planned = make_plan(pipeline, options["cache"], settings.data_dir(data_dir), hasher,
                        options["force_from"])
    for stage in planned:
        typer.echo(stage.line())
    hasher.flush()
    if check and any(stage.status != "cached" for stage in planned):
        raise typer.Exit(1)


@app.command()
@reports_errors
def plugins(
    check: bool = typer.Option(
        False, "--check", help="Run each plugin's contract checks (derivatives against finite "
                               "differences, shapes, dtypes, spec round-trip); exit 1 if any fails."),
) -> None:
    """List every installed plugin by group, with its distribution and version."""
    from pipeline.testing import plugin_status

    registry = default_registry()
    failed = 0
    for short in registry.groups():
        entries = registry.entries(short)
        typer.echo(f"nnpipe.{short} ({len(entries)})")
        for entry in entries:
            status, problem = plugin_status(registry, short, entry.name, check)
            failed += status in ("FAIL", "BROKEN")
            line = f"  {entry.name:<16} {entry.origin:<22} {entry.target}"
            if check:
                line = f"  {status:<6}" + line[1:]
            if problem:
                line += f"  {status}: {problem}" if not check else f"\n          {problem}"
            typer.echo(line)
    if check:
        typer.echo(f"{failed} plugin(s) failed" if failed else "every plugin passed")
        if failed:
            raise typer.Exit(1)


@app.command()
@reports_errors
def schema(
    out: Optional[Path] = typer.Option(None, "--out", help="Write to this file instead of stdout."),
) -> None:
    """Print the JSON Schema of pipeline files, including installed plugins' stage kinds."""
    from pipeline.outputs import SCHEMA, checked_out

    if out is not None:
        checked_out(out, SCHEMA, lambda: out)
    schema_document = pipeline_model(default_registry()).model_json_schema()
    # The comment first: it is how ``--out`` recognises a schema nnpipe wrote (pipeline.outputs).
    document = {"$comment": "nnpipe pipeline file schema", "title": "nnpipe pipeline file",
                **{k: v for k, v in schema_document.items() if k != "title"}}
    text = json.dumps(document, indent=2)
    if out is None:
        typer.echo(text)
    else:
        from pipeline.files import write_text
        from pipeline.leftovers import remove_abandoned

        remove_abandoned(out.parent)  # what a killed write left beside it
        write_text(out, text + "\n")
        typer.echo(f"schema written to {out}")


from pipeline.cli_cache import build_cache_app  # noqa: E402

app.add_typer(build_cache_app(reports_errors, CacheDirOption), name="cache")
app.add_typer(runs.make_app(reports_errors), name="runs")
app.command("report")(reports_errors(report.command))

from pipeline.cli_export import register as register_export  # noqa: E402
from pipeline.cli_sweep import register as register_sweep  # noqa: E402

register_sweep(app, reports_errors, DataDirOption, CacheDirOption)
register_export(app, reports_errors)

from pipeline.cli_tune import register as register_tune  # noqa: E402

register_tune(app, reports_errors, DataDirOption, CacheDirOption)


if __name__ == "__main__":  # pragma: no cover
    app()
