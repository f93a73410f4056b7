"""The run's console output: rich bars on a terminal, plain lines without control characters elsewhere."""

from __future__ import annotations

import io

from rich.console import Console

from pipeline.cli.console import PlainProgress, RichProgress, make_console, stage_line
from pipeline.engine.runner import StageReport


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def drive(progress) -> None:
    """What the trainer does for one epoch of three batches, then a stage line."""
    progress.begin("epoch 1/1", total=3)
    for _ in range(3):
        progress.advance(1, loss=0.5, samples=64)
    progress.end()
    progress.log("epoch 1/1  train loss 0.5000 acc 0.9000")
    progress.stage(StageReport(4, "mlp_train", "mlp_train", "ran", 1.25))


def test_make_console_is_plain_off_a_terminal_and_when_quiet():
    assert isinstance(make_console(stream=io.StringIO()), PlainProgress)
    assert isinstance(make_console(quiet=True, stream=FakeTerminal()), PlainProgress)
    assert isinstance(make_console(stream=FakeTerminal()), RichProgress)


def test_plain_progress_prints_log_and_stage_lines_only():
    lines: list[str] = []
    drive(PlainProgress(write=lines.append))
    assert lines == ["  epoch 1/1  train loss 0.5000 acc 0.9000",
                     "   ran  stages[4] mlp_train         1.25s"]


def test_quiet_plain_progress_prints_nothing():
    lines: list[str] = []
    drive(PlainProgress(quiet=True, write=lines.append))
    assert lines == []


def test_rich_progress_draws_a_bar_with_loss_and_rate_then_the_lines():
    out = FakeTerminal()
    drive(RichProgress(Console(file=out, force_terminal=True, width=120)))
    text = out.getvalue()
    assert "\x1b[" in text  # a live display on a terminal
    assert "epoch 1/1" in text and "loss 0.5000" in text and "samples/s" in text
    assert "3/3" in text and "eta" in text
    assert "epoch 1/1  train loss 0.5000 acc 0.9000" in text
    assert stage_line(StageReport(4, "mlp_train", "mlp_train", "ran", 1.25)) in text
