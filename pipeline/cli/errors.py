"""The one place where the command line turns errors and signals into messages and exit statuses.

Every command runs inside ``NnpipeGroup.invoke`` of the root app (sub-groups such as ``cache`` and
``runs`` are invoked from it too), so no command handles errors itself:

- an ``NnpipeError``: one ``error:`` line per line of its message on stderr, exit status its
  ``exit_code`` (2 bad input, 1 a failure while running); with ``--debug``, the traceback;
- Ctrl-C or SIGTERM: one line, exit 130 or 143, after every half-written file was removed (the
  signal is raised as ``KeyboardInterrupt`` where the program is, so it unwinds like Ctrl-C).
"""

from __future__ import annotations

import signal
import threading

import click
import typer
from typer.core import TyperGroup

from pipeline.errors import NnpipeError

#: Exit statuses of an interrupted command: 128 + the signal's number, as shells report it.
INTERRUPTED, TERMINATED = 128 + signal.SIGINT, 128 + signal.SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so it unwinds exactly like Ctrl-C."""


def _raise_terminated(signum, frame) -> None:
    # A second SIGTERM must not cut short the clean-up the first one starts.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated()


def _report(exc: NnpipeError) -> None:
    for line in str(exc).splitlines() or [type(exc).__name__]:
        typer.echo(f"error: {line}", err=True)


class NnpipeGroup(TyperGroup):
    """The root command group: runs the chosen command with nnpipe's error reporting."""

    def invoke(self, ctx: click.Context):
        main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _raise_terminated) if main_thread else None
        try:
            return super().invoke(ctx)
        except NnpipeError as exc:
            if ctx.params.get("debug"):
                raise
            _report(exc)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt as exc:
            typer.echo("interrupted: nothing half-written was kept (training resumes from its "
                       "last checkpoint when you run the pipeline again)", err=True)
            raise typer.Exit(TERMINATED if isinstance(exc, Terminated) else INTERRUPTED) from None
        finally:
            if main_thread and previous is not None:  # None: a handler not set from Python
                signal.signal(signal.SIGTERM, previous)
