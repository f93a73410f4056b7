"""What ``nnpipe run`` shows while it works: live bars on a terminal, plain lines everywhere else.

Two listeners implement the ``pipeline.progress.Progress`` protocol and also print a line per
finished stage (``stage(report)``):

- ``RichProgress`` draws one transient bar per task (an epoch over its batches, say) with the
  live fields a stage reports (``loss``), samples per second (from a ``samples`` field, else
  steps per second) and the time left, and prints logged lines and stage lines above it;
- ``PlainProgress`` prints logged lines and stage lines only, as plain text with no control
  characters: what a pipe, a file or a CI log should get.

``make_console`` chooses: rich when stdout is a terminal and the run is not ``--quiet``.
"""

from __future__ import annotations

import sys
from typing import Any, Callable, TextIO

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichBars, ProgressColumn,
                           Task, TextColumn, TimeRemainingColumn)
from rich.text import Text

from pipeline.progress import NullProgress


def stage_line(report: Any) -> str:
    """One line per finished stage, e.g. ``   ran  stages[4] mlp_train        14.80s``."""
    return f"{report.status:>6}  stages[{report.index}] {report.id:<14} {report.seconds:7.2f}s"


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


class _RateColumn(ProgressColumn):
    """Samples per second when the stage reports a running ``samples`` count, else steps/s."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        if elapsed <= 0 or task.completed == 0:
            return Text("")
        samples = task.fields.get("samples")
        if samples is not None:
            return Text(f"{samples / elapsed:,.0f} samples/s")
        return Text(f"{task.completed / elapsed:,.1f} steps/s")


class RichProgress:
    """Live bars on a terminal: one per task, with the stage's fields, the rate and the ETA.

    Args:
        console: the rich console to draw on (default: a new one on stdout).
        refresh_per_second: how often the bars are redrawn (in Jupyter every redraw is a widget
            message, so the API asks for fewer).
    """

    def __init__(self, console: Console | None = None, refresh_per_second: float = 10):
        self.console = console or Console()
        self.refresh_per_second = refresh_per_second
        self._bars: RichBars | None = None
        self._task = None
        self._samples = 0

    def begin(self, description: str, total: int) -> None:
        self.end()
        self._bars = RichBars(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[live]}"), _RateColumn(), TextColumn("eta"),
            TimeRemainingColumn(), console=self.console, transient=True,
            refresh_per_second=self.refresh_per_second)
        self._bars.start()
        self._samples = 0
        self._task = self._bars.add_task(description, total=total, live="")

    def advance(self, steps: int = 1, **fields: Any) -> None:
        if self._bars is None:
            return
        extra: dict[str, Any] = {"live": _fields_text(fields)}
        if "samples" in fields:
            self._samples += int(fields["samples"])
            extra["samples"] = self._samples
        self._bars.update(self._task, advance=steps, **extra)

    def end(self) -> None:
        if self._bars is not None:
            self._bars.stop()
            self._bars, self._task = None, None

    def log(self, message: str) -> None:
        self.console.print(f"  {message}", markup=False, highlight=False)

    def stage(self, report: Any) -> None:
        """Print the line of a finished stage above any live bar."""
        self.console.print(stage_line(report), markup=False, highlight=False)


def make_console(quiet: bool = False, stream: TextIO | None = None) -> PlainProgress | RichProgress:
    """Rich bars when ``stream`` (default stdout) is a terminal and not ``quiet``, else plain lines."""
    stream = stream if stream is not None else sys.stdout
    if not quiet and stream.isatty():
        return RichProgress(Console(file=stream))
    return PlainProgress(quiet)
