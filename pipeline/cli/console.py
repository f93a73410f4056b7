"""What ``nnpipe run`` shows while it works: live bars on a terminal, plain lines everywhere else.

Two listeners implement the ``pipeline.progress.Progress`` protocol and also print a line per
finished stage (``stage(report)``):

- ``RichProgress`` draws one transient bar per task (an epoch over its batches, say) with the
  live fields a stage reports (``loss``), samples per second (from a ``samples`` field, else
  steps per second) and the time left, and prints logged lines and stage lines above it;
- ``PlainProgress`` prints logged lines and stage lines only, as plain text with no control
  characters: what a pipe, a file or a CI log should get.

``make_console`` chooses: rich when stdout is a terminal and the run is not ``--quiet``. rich is
imported only then (``pipeline.cli.console_rich``): a piped or quiet run does not pay for it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Callable, TextIO

from pipeline.progress import NullProgress

if TYPE_CHECKING:
    from pipeline.cli.console_rich import RichProgress


def stage_line(report: Any) -> str:
    """One line per finished stage, e.g. ``   ran  stages[4] mlp_train        14.80s`` (a stage
    whose name is its position, ``stages[2]``, is not named twice)."""
    name = "" if report.id == f"stages[{report.index}]" else report.id
    return f"{report.status:>6}  stages[{report.index}] {name:<14} {report.seconds:7.2f}s"


def _fields_text(fields: dict[str, Any]) -> str:
    """The live fields a stage reported, ``loss 0.1234``, skipping the sample counter."""
    return "  ".join(f"{name} {value:.4f}" if isinstance(value, float) else f"{name} {value}"
                     for name, value in fields.items() if name != "samples")


class PlainProgress(NullProgress):
    """Progress as plain log lines (no bars, no control characters): bars are ignored, logged
    lines and stage lines are printed.

    Args:
        quiet: print nothing but what the caller prints itself (the final summary).
        write: where lines go (default: ``print`` to stdout).
    """

    def __init__(self, quiet: bool = False, write: Callable[[str], None] | None = None):
        self.quiet = quiet
        self.write = write or (lambda line: print(line, flush=True))

    def log(self, message: str) -> None:
        if not self.quiet:
            self.write(f"  {message}")

    def stage(self, report: Any) -> None:
        """Print the line of a finished stage (ran or cached, seconds)."""
        if not self.quiet:
            self.write(stage_line(report))


def make_console(quiet: bool = False, stream: TextIO | None = None) -> PlainProgress | RichProgress:
    """Rich bars when ``stream`` (default stdout) is a terminal and not ``quiet``, else plain lines."""
    stream = stream if stream is not None else sys.stdout
    if not quiet and stream.isatty():
        from rich.console import Console

        from pipeline.cli.console_rich import RichProgress

        return RichProgress(Console(file=stream))
    return PlainProgress(quiet)


def __getattr__(name: str) -> Any:
    """``pipeline.cli.console.RichProgress``, imported (with rich) on first use."""
    if name == "RichProgress":
        from pipeline.cli.console_rich import RichProgress

        return RichProgress
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
