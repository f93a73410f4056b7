"""The ``nnpipe`` root app: every command group registered in one place, in the order of ``--help``.

Exit status 0 on success, 2 for bad input (a file, a spec, data), 1 for a failure while running;
errors are one line (or one line per problem) on stderr, without a traceback unless ``--debug``
(``pipeline.cli.errors``, the one place that handles them). Each module of ``pipeline.cli``
builds one typer app (``pipeline.cli.options.command_group``): one with a help text is a
sub-command (``cache``, ``runs``), one without adds its commands at the top level.
"""

from __future__ import annotations

import typer

from pipeline.cli import (cache, export, plan, plugins, predict, report, run, runs, schema, sweep,
                          tune, validate)
from pipeline.cli.errors import NnpipeGroup

HELP = "Train and evaluate a numpy neural network from a declarative pipeline file."

#: Top-level command groups, in the order ``nnpipe --help`` lists them.
COMMANDS = (run, predict, validate, plan, plugins, schema, report, sweep, export, tune)
#: Sub-command groups: ``nnpipe NAME COMMAND``.
GROUPS = {"cache": cache, "runs": runs}

app = typer.Typer(name="nnpipe", help=HELP, cls=NnpipeGroup, no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)


@app.callback()
def main(
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback of an error."),
) -> None:
    """Train and evaluate a numpy neural network from a declarative pipeline file."""
    # ``debug`` is read by NnpipeGroup.invoke from the context's parameters.


def _register(root: typer.Typer) -> None:
    for module in COMMANDS:
        root.registered_commands.extend(module.app.registered_commands)
    for name, module in GROUPS.items():
        root.add_typer(module.app, name=name)


_register(app)
