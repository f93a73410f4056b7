"""How a stage reports progress without knowing who listens (a rich bar, plain log lines, nothing).

A stage calls ``context.progress.begin(...)``, ``advance(...)`` and ``end()`` around a loop, and
``log(...)`` for a line worth keeping (one per epoch, say). The command line supplies a listener
that draws bars on a terminal and prints plain lines elsewhere; tests and libraries get
``NullProgress``.
"""

from __future__ import annotations

from typing import Any, Protocol


class Progress(Protocol):
    """The progress listener a stage talks to."""

    def begin(self, description: str, total: int) -> None:
        """Start a task of ``total`` steps (for example the batches of one epoch)."""

    def advance(self, steps: int = 1, **fields: Any) -> None:
        """Move the current task on by ``steps``; ``fields`` are live figures such as the loss."""

    def end(self) -> None:
        """Finish the current task."""

    def log(self, message: str) -> None:
        """A line worth keeping in the output (one per epoch, a warning)."""


class NullProgress:
    """A listener that ignores everything: the default outside the command line."""

    def begin(self, description: str, total: int) -> None:
        pass

    def advance(self, steps: int = 1, **fields: Any) -> None:
        pass

    def end(self) -> None:
        pass

    def log(self, message: str) -> None:
        pass


class ListProgress(NullProgress):
    """A listener that keeps the logged lines in a list (for tests and embedding)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def log(self, message: str) -> None:
        self.lines.append(message)
