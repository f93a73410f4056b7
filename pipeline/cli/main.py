"""The ``nnpipe`` root app: every command group registered in one place, in the order of ``--help``.

Exit status 0 on success, 2 for bad input (a file, a spec, data), 1 for a failure while running;
errors are one line (or one line per problem) on stderr, without a traceback unless ``--debug``
(``pipeline.cli.errors``, the one place that handles them). Each module of ``pipeline.cli``
builds one typer app (``pipeline.cli.options.command_group``): one with a help text is a
sub-command (``cache``, ``runs``), one without adds its one command, named as the module, at the
top level.

The root builds a command when it is first asked for it (click's lazy group): ``nnpipe validate
FILE`` imports and builds only ``pipeline.cli.validate``, not the eleven other command modules and
their options; ``--help``, an unknown name (whose message suggests the closest ones) and
``list_commands`` see every command, in the order below, built exactly as a root holding them
all builds them.
"""

from __future__ import annotations

import importlib
from typing import Iterable

import typer

from pipeline.cli.errors import NnpipeGroup

HELP = "Train and evaluate a numpy neural network from a declarative pipeline file."

#: Top-level commands, in the order ``nnpipe --help`` lists them: each is the one command of
#: the module of ``pipeline.cli`` of the same name.
COMMANDS = ("run", "predict", "validate", "plan", "plugins", "schema", "report", "sweep",
            "export", "tune")
#: Sub-command groups (``nnpipe NAME COMMAND``), each the app of the module of the same name.
GROUPS = ("cache", "runs")
NAMES = COMMANDS + GROUPS


def main(
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback of an error."),
) -> None:
    """Train and evaluate a numpy neural network from a declarative pipeline file."""
    # ``debug`` is read by NnpipeGroup.invoke from the context's parameters.


def root_app(names: Iterable[str] = ()) -> typer.Typer:
    """The root typer app with the command groups ``names`` registered (none: each is built when
    the command line first asks for it)."""
    root = typer.Typer(name="nnpipe", help=HELP, cls=RootGroup, no_args_is_help=True,
                       pretty_exceptions_enable=False, add_completion=False)
    root.callback()(main)
    for name in names:
        module = importlib.import_module(f"pipeline.cli.{name}")
        if name in GROUPS:
            root.add_typer(module.app, name=name)
        else:
            root.registered_commands.extend(module.app.registered_commands)
    return root


def build_command(name: str):
    """The click command ``name`` (one of ``NAMES``), built by typer as part of a root app, so it
    is the same object a root holding every command would hold."""
    return typer.main.get_command(root_app([name])).commands[name]


class RootGroup(NnpipeGroup):
    """The root command group: builds each command on first use (``NnpipeGroup`` reports the
    errors)."""

    def get_command(self, ctx, cmd_name: str):
        if cmd_name in NAMES and cmd_name not in self.commands:
            self.commands[cmd_name] = build_command(cmd_name)
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx) -> list[str]:
        self.load_all()
        return super().list_commands(ctx)

    def resolve_command(self, ctx, args):
        if args and args[0] not in NAMES:
            self.load_all()  # "No such command": the suggestions are drawn from every name
        return super().resolve_command(ctx, args)

    def load_all(self) -> None:
        """Every command, in the order of ``NAMES`` (``--help`` lists them so)."""
        self.commands = {name: self.get_command(None, name) for name in NAMES}


app = root_app()
