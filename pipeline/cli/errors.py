"""The one place where the command line turns errors and signals into messages and exit statuses.

Every command runs inside ``NnpipeGroup.invoke`` of the root app (sub-groups such as ``cache`` and
``runs`` are invoked from it too), so no command handles errors itself:

- an ``NnpipeError``: one ``error:`` line per line of its message on stderr, exit status its
  ``exit_code`` (2 bad input, 1 a failure while running); with ``--debug``, the traceback;
- a bad option or argument (click's ``UsageError``: an unknown option, a value of the wrong
  type, a missing argument): one ``error:`` line naming it, with the command's usage, exit 2
  (click's own report is a usage block and a framed message); ``nnpipe`` alone still shows help;
- Ctrl-C or SIGTERM: one line, exit 130 or 143, after every half-written file was removed (the
  signal is raised as ``KeyboardInterrupt`` where the program is, so it unwinds like Ctrl-C).

How the process ends is decided here too: once a command is done, the heap is frozen
(``gc.freeze``) so the interpreter's exit skips its garbage collections over every module and
pydantic model the command built (about a third of ``nnpipe validate``'s time beyond a bare
import). Every file a command writes is closed and synced before it returns; nothing depends on
a destructor running at exit.
"""

from __future__ import annotations

import atexit
import gc
import signal
import sys
import threading

import typer
from typer.core import TyperGroup

from pipeline.errors import NnpipeError

# click's exceptions, from the click typer runs on (typer 0.29 carries its own copy of click,
# older ones use the click package): the module typer's public BadParameter comes from.
_CLICK_EXCEPTIONS = sys.modules[typer.BadParameter.__module__]
UsageError = _CLICK_EXCEPTIONS.UsageError
#: click >= 8.2 raises this for ``no_args_is_help`` (the help is shown); before, nothing.
NoArgsIsHelp = getattr(_CLICK_EXCEPTIONS, "NoArgsIsHelpError", ())

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


def freeze_at_exit() -> None:
    """Freeze the heap before the interpreter's own teardown (atexit handlers run before it;
    handlers registered after this one, joblib's say, run before it: last registered, first
    run). Freezing stops nothing from running, it only keeps the collector off those objects.
    Registered once per process."""
    if not getattr(freeze_at_exit, "registered", False):
        atexit.register(gc.freeze)
        freeze_at_exit.registered = True


def usage_line(exc: UsageError) -> str:
    """A usage error as one line: ``nnpipe tune: Invalid value for '--trials': ... (usage:
    nnpipe tune [OPTIONS] FILE; nnpipe tune --help lists the options)``."""
    message = " ".join(exc.format_message().split())  # click may wrap it
    ctx = exc.ctx
    if ctx is None:
        return message
    usage = " ".join(ctx.command.collect_usage_pieces(ctx))
    return (f"{ctx.command_path}: {message} (usage: {ctx.command_path} {usage}; "
            f"{ctx.command_path} --help lists the options)")


def _bad_usage(exc: UsageError) -> typer.Exit:
    typer.echo(f"error: {usage_line(exc)}", err=True)
    return typer.Exit(exc.exit_code)


class NnpipeGroup(TyperGroup):
    """The root command group: runs the chosen command with nnpipe's error reporting."""

    def main(self, *args, **kwargs):
        freeze_at_exit()
        return super().main(*args, **kwargs)

    def make_context(self, info_name, args, parent=None, **extra):
        # the root's own options (``nnpipe --bogus``); a command's are parsed in ``invoke``
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except NoArgsIsHelp:
            raise  # ``nnpipe`` alone: the help, as click shows it
        except UsageError as exc:
            raise _bad_usage(exc) from None

    def invoke(self, ctx: typer.Context):
        main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _raise_terminated) if main_thread else None
        try:
            return super().invoke(ctx)
        except NoArgsIsHelp:
            raise  # ``nnpipe cache`` alone: that group's help
        except UsageError as exc:
            raise _bad_usage(exc) from None
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
