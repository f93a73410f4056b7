"""Options several commands share, spelled once so their names and help stay the same."""

from __future__ import annotations

import typer

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


def command_group(help: str | None = None) -> typer.Typer:
    """A command group's typer app, built the same way for every module of ``pipeline.cli``: the
    root app takes a group with ``help`` as a sub-command, one without as top-level commands."""
    return typer.Typer(help=help, no_args_is_help=help is not None, add_completion=False,
                       pretty_exceptions_enable=False)


def warn(message: str) -> None:
    """A warning line on stderr."""
    typer.echo(f"warning: {message}", err=True)
