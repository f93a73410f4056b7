"""Every float field of a stage refuses an infinity or NaN at validation (a learning rate of
.inf would otherwise train into NaN and fail at run time), and a field of a union type
(``class_weight: balanced | [w, ...]``) gets one problem, not one per member pydantic tried:
through the command line, exit 2, one line naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app

GOOD = Path(__file__).resolve().parent / "data" / "good"


def run_with(tmp_path: Path, override: str):
    """``nnpipe run`` of the tiny pipeline with one ``--set``, nothing written under tests/."""
    return CliRunner().invoke(app, ["run", str(GOOD / "pipeline.yaml"), "--set", override,
                                    "--out", str(tmp_path / "runs"),
                                    "--cache-dir", str(tmp_path / "cache")])


@pytest.mark.parametrize("override, where, words", [
    ("mlp_train.optimizer={kind: adam, lr: .inf}", "stages[3].optimizer.lr",
     "must be a finite number (got inf)"),
    ("mlp_train.optimizer={kind: sgd, lr: -.inf}", "optimizer.lr", "finite number"),
    ("mlp_train.l1=.nan", "stages[3].l1", "finite number"),
    ("mlp_train.layers=[{kind: dropout, p: .nan}]", "layers[0].p", "finite number"),
    ("mlp_train.schedule={kind: one_cycle, max_lr: .inf}", "schedule.max_lr", "finite number"),
    ("mlp_train.early_stopping={min_delta: .inf}", "early_stopping.min_delta", "finite number"),
    ("mlp_train.class_weight=[1, 1, .inf]", "stages[3].class_weight[2]", "finite number (got inf)"),
    ("mlp_train.class_weight=[1, -1, 1]", "stages[3].class_weight[1]", "greater than 0 (got -1)"),
    ("mlp_train.class_weight=balancedx", "stages[3].class_weight",
     "must be 'balanced' or a valid list (got 'balancedx')"),
])
def test_a_bad_value_is_one_line_naming_the_field(tmp_path, override, where, words):
    result = run_with(tmp_path, override)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert f": {where}: " in lines[0] or f".{where}: " in lines[0], lines[0]
    assert words in lines[0] and "Traceback" not in result.output
    assert "literal[" not in lines[0] and "list[" not in lines[0]  # no union member's name
    assert not (tmp_path / "runs").exists()


def test_finite_values_still_pass(tmp_path):
    result = run_with(tmp_path, "mlp_train.class_weight=[1, 2, 1, 1, 1, 1, 1, 1, 1, 0.5]")
    assert result.exit_code == 0, result.output


def test_two_missing_fields_are_two_problems_not_a_union(tmp_path):
    # absent names are a missing field's, not a union member's: each keeps its own line
    file = tmp_path / "p.yaml"
    file.write_text("name: x\nstages:\n  - kind: idx_reader\n    train: {}\n")
    result = CliRunner().invoke(app, ["validate", str(file)])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [
        f"error: {file}:4: stages[0].train.images: required field is missing",
        f"error: {file}:4: stages[0].train.labels: required field is missing"]


def test_members_failing_at_the_value_are_joined():
    from pipeline.engine.config import _joined

    assert _joined(["must be 'balanced' (got 'x')", "must be a valid list"]) == (
        "must be 'balanced' or a valid list (got 'x')")
    # sentences of a validator's own are kept whole, not cut at a 'must be' they lack
    assert _joined(["unknown layer 'x'", "must be a valid list"]) == (
        "unknown layer 'x'; or must be a valid list")
