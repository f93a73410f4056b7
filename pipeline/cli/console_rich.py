"""The rich half of ``pipeline.cli.console``: live bars on a terminal (imported only for one).

``RichProgress`` draws one transient bar per task (an epoch over its batches, say) with the live
fields a stage reports (``loss``), samples per second (from a ``samples`` field, else steps per
second) and the time left, and prints logged lines and stage lines above it.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichBars, ProgressColumn,
                           Task, TextColumn, TimeRemainingColumn)
from rich.text import Text

from pipeline.cli.console import _fields_text, stage_line


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
    """

    def __init__(self, console: Console | None = None, refresh_per_second: float = 10):
        # refresh_per_second: in Jupyter every redraw is a widget message; the API asks for 2
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
