"""benchmarks/tune_vs_grid.py: its time budgets and the checks of ``--grid`` (a kept grid)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("tune_vs_grid", ROOT / "benchmarks" /
                                              "tune_vs_grid.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def test_the_budgets_are_a_third_of_the_grid_less_what_they_reserve():
    # 240 s of grid: a third is 80 s; less 3 % of it (2.4 s) and 2.2 s measured outside the
    # trials
    assert bench.deadline_for(240.0, 2.2) == pytest.approx(80 - 2.4 - 2.2)
    # the earlier way: less the mean configuration at 2 jobs (240 * 2 / 24 = 20 s) and 1.5 s
    assert bench.timeout_for(240.0, 2, 1.5) == pytest.approx(80 - 20 - 1.5)
    assert bench.deadline_for(3.0, 2.2) == 1.0  # never nothing
    assert bench.budget_options("both", 240.0, 2, 1.5) == ["--timeout", "58.5", "--deadline",
                                                           "76.1"]
    assert bench.budget_options("timeout", 240.0, 2, 1.5) == ["--timeout", "58.5"]


def test_the_longest_epoch_is_the_slowest_runs_seconds_over_its_epochs(tmp_path):
    runs = []
    for index, (seconds, epochs) in enumerate([(9.0, 30), (6.0, 10), (17.0, 30)]):
        run_dir = tmp_path / f"run{index}"
        run_dir.mkdir()
        (run_dir / "history.json").write_text(json.dumps([{"epoch": e} for e in range(epochs)]))
        runs.append({"seconds": seconds, "run_dir": str(run_dir)})
    (tmp_path / "sweep.json").write_text(json.dumps({"runs": runs}))
    assert bench.longest_epoch(tmp_path) == pytest.approx(0.6)  # 6 s over 10 epochs


def kept(tmp_path: Path, epochs: int = 30, jobs: int = 2) -> Path:
    """A folder as a --keep run leaves it (the grid's sweep.json is not read by the check)."""
    folder = tmp_path / "kept"
    (folder / "grid").mkdir(parents=True)
    (folder / "grid" / "sweep.json").write_text("{}")
    bench.pipeline_file(folder, epochs)
    (folder / "grid-wall.json").write_text(json.dumps({"seconds": 160.4, "jobs": jobs}))
    return folder


def test_the_schedule_option_puts_cosine_in_the_trainer_or_leaves_the_rate_constant():
    cosine = yaml.safe_load(bench.pipeline_text(30, "cosine"))["stages"][-1]
    constant = yaml.safe_load(bench.pipeline_text(30))["stages"][-1]
    assert cosine["schedule"] == {"kind": "cosine"} and "schedule" not in constant


def test_a_kept_grid_is_reused_with_its_wall_time(tmp_path):
    args = bench.arguments(["--grid", str(kept(tmp_path))])
    assert args.grid_seconds == 160.4


@pytest.mark.parametrize("change, argv, words", [
    (None, ["--epochs", "10"], "its grid trained another pipeline (not --epochs 10 "
                               "--schedule constant)"),
    (None, ["--schedule", "cosine"], "its grid trained another pipeline (not --epochs 30 "
                                     "--schedule cosine)"),
    (None, ["--jobs", "1"], "its grid ran with --jobs 2, not 1"),
    ("grid-wall.json", [], "not a folder a --keep run left (FileNotFoundError"),
    ("grid/sweep.json", [], "not a folder a --keep run left (FileNotFoundError"),
])
def test_a_grid_that_cannot_be_reused_is_exit_2_saying_why(tmp_path, capsys, change, argv,
                                                           words):
    folder = kept(tmp_path)
    if change:
        (folder / change).unlink()
    with pytest.raises(SystemExit) as exit_:
        bench.arguments(["--grid", str(folder), *argv])
    assert exit_.value.code == 2
    assert f"--grid {folder}: {words}" in capsys.readouterr().err


@pytest.mark.parametrize("argv, words", [(["--seeds", "0"], "--seeds 0: must be at least 1"),
                                         (["--first-seed", "-1"], "--first-seed -1: must be 0")])
def test_bad_counts_are_exit_2_naming_them(capsys, argv, words):
    with pytest.raises(SystemExit) as exit_:
        bench.arguments(argv)
    assert exit_.value.code == 2 and words in capsys.readouterr().err


@pytest.mark.parametrize("argv, stop, fits", [
    ([], "deadline", True), (["--no-fits"], "deadline", False),
    ([], "timeout", False),  # --start-if-fits needs --deadline (tune: exit 2 without it)
    ([], "both", True)])
def test_the_studies_start_only_trials_that_fit_before_the_deadline(tmp_path, argv, stop, fits):
    args = bench.arguments(argv)
    budget = bench.budget_options(stop, 240.0, 2, 2.2)
    words = bench.tune_command(tmp_path / "p.yaml", tmp_path, args, 1, budget)
    assert ("--start-if-fits" in words) is fits
    assert words[words.index("--sampler-seed") + 1] == "1" and budget == words[
        words.index("--trials") + 2:words.index("--trials") + 2 + len(budget)]
