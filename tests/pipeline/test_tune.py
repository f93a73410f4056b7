"""``nnpipe tune``: the space, pruning through the runner's monitor, a study that survives
SIGKILL, trials on Dask, results and the README example.

Real trials: the built-in plugins on the 4x4 fixtures of tests/data/good, a few epochs each.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from typer.testing import CliRunner

from pipeline.engine.cache import StageCache
from pipeline.cli import app
from pipeline.engine.config import load_pipeline
from pipeline.errors import Stopped, UserError
from pipeline.engine.keys import FileHasher
from pipeline.engine.runner import Runner
from pipeline.sweep.shared import stage_keys
from pipeline.tune.run import TuneOptions, run_tune
from pipeline.tune.space import parse_param
from pipeline.tune.study import COUNTED, NUMBER, open_storage
from pipeline.tune.trial import DeadlineMonitor, PruningMonitor

ROOT = Path(__file__).resolve().parent.parent.parent
cli = CliRunner()


@pytest.fixture(autouse=True)
def no_lingering_loky_workers():
    yield
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True)


def stored_trials(url: str, study: str):
    return optuna.load_study(study_name=study, storage=open_storage(url)).get_trials()


# --- the space -----------------------------------------------------------------------------

def test_spaces_parse_to_optuna_distributions():
    lr = parse_param("mlp_train.optimizer.lr=float(1e-4,1e-1,log)")
    assert (lr.kind, lr.low, lr.high, lr.log) == ("float", 1e-4, 0.1, True)
    assert lr.distribution() == optuna.distributions.FloatDistribution(1e-4, 0.1, log=True)
    width = parse_param("mlp_train.hidden=choice([128],[256,128])")
    assert width.choices == ("[128]", "[256,128]")
    assert width.override("[256,128]") == "mlp_train.hidden=[256,128]"
    assert parse_param("mlp_train.epochs=int(1,8)").grid() == list(range(1, 9))
    # a float YAML 1.1 would read as a string otherwise
    assert yaml.safe_load(lr.override(1e-05).partition("=")[2]) == 1e-05


@pytest.mark.parametrize("text, words", [
    ("mlp_train.dropout=float(1,0)", "LOW (1) must be below HIGH (0)"),
    ("mlp_train.activation=choice()", "choice() needs at least one value"),
    ("mlp_train.optimizer.lr=float(0,1,log)", "log range needs LOW > 0"),
    ("mlp_train.epochs=int(1.5,3)", "is not an int"),
    ("mlp_train.lr=normal(0,1)", "unknown space"),
    ("just-a-path", "expected PATH=SPACE"),
    # ends no sampler can draw between: an infinity, a width beyond float64, an int past 2**53
    ("mlp_train.optimizer.lr=float(1e-3,1e400)", "1e400 is not a finite number"),
    ("mlp_train.optimizer.lr=float(-inf,1)", "-inf is not a finite number"),
    ("mlp_train.optimizer.lr=float(nan,1)", "nan is not a finite number"),
    ("mlp_train.optimizer.lr=float(-1e308,1e308)", "the range is too wide"),
    ("mlp_train.epochs=int(1,100000000000000000000)", "is too large (at most 2**53"),
])
def test_a_bad_space_is_a_user_error_naming_it(text, words):
    with pytest.raises(UserError) as caught:
        parse_param(text)
    assert text.partition("=")[2] in str(caught.value) or text in str(caught.value)
    assert words in str(caught.value)


@pytest.mark.parametrize("param, words", [
    ("mlp_train.optimiser.lr=float(0.01,0.1)", "mlp_train.optimiser.lr"),
    ("trainer.epochs=int(1,3)", "trainer"),
    ("mlp_train.dropout=float(1,0)", "float(1,0)"),
    ("mlp_train.activation=choice()", "choice()"),
    ("mlp_train.dropout=float(-1,0.5)", "dropout"),
    ("mlp_train.dropout=float(0,1.5)", "dropout"),  # HIGH refused by the field: before a trial
    ("mlp_train.optimizer.lr=float(1e-3,1e400)", "float(1e-3,1e400)"),
])
def test_bad_spaces_exit_2_naming_them_before_anything_runs(tiny, tmp_path, param, words):
    result = cli.invoke(app, ["tune", str(tiny), "--param", param, "--trials", "1",
                              "--out", str(tmp_path / "t")])
    assert result.exit_code == 2, result.output
    assert words in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "t").exists()


def test_a_grid_too_large_to_list_is_exit_2_before_it_is_made(tiny, tmp_path):
    # Optuna's grid sampler lists every point: 10**12 of them would fill the memory first
    result = cli.invoke(app, ["tune", str(tiny), "--param", "mlp_train.epochs=int(1,1000000)",
                              "--param", "mlp_train.batch_size=choice(8,16)", "--sampler",
                              "grid", "--out", str(tmp_path / "t")])
    assert result.exit_code == 2, result.output
    assert result.output.strip() == (
        "error: --sampler grid: 1000000 x 2 = 2000000 points over mlp_train.epochs=int(1,1000000)"
        ", mlp_train.batch_size=choice(8,16); at most 100000 (use tpe or random for a space "
        "this large)")
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize("extra, words", [
    (["--sampler", "grid"], "--sampler grid needs choice(...) or int(LOW,HIGH)"),
    (["--sampler", "cmaes"], "--sampler cmaes: choose one of tpe, random, grid"),
    (["--trials", "0"], "--trials 0: must be at least 1"),
    (["--seeds", "100000000000"], "--seeds 100000000000: must be at least 1 and at most 1000"),
    (["--sampler-seed", "-1"], "--sampler-seed -1: must be 0 or more"),
    (["--timeout", "0"], "--timeout 0.0: must be more than 0 seconds"),
    (["--deadline", "0"], "--deadline 0.0: must be more than 0 seconds"),
    (["--deadline", "-5"], "--deadline -5.0: must be more than 0 seconds"),
    (["--deadline", "nan"], "--deadline nan: must be more than 0 seconds"),
    (["--pruner", "hyperband"],
     "--pruner hyperband: choose one of median, median-reached, quartile, none"),
    (["--pruner-warmup", "1"], "--pruner-warmup 1.0: must be at least 0 and less than 1"),
    (["--pruner-warmup", "-0.1"], "--pruner-warmup -0.1: must be at least 0 and less than 1"),
    (["--pruner-warmup", "nan"], "--pruner-warmup nan: must be at least 0 and less than 1"),
    (["--storage", "nosuchdb://x"], "--storage nosuchdb://x: cannot open it"),
    (["--start-if-fits"], "--start-if-fits: needs --deadline"),
    (["--start-if-fits", "--timeout", "5"], "--start-if-fits: needs --deadline"),
])
def test_bad_options_exit_2_naming_them(tiny, tmp_path, extra, words):
    result = cli.invoke(app, ["tune", str(tiny), "--param", "mlp_train.dropout=float(0,0.5)",
                              "--out", str(tmp_path / "t"), *extra])
    assert result.exit_code == 2, result.output
    assert words in result.output and "Traceback" not in result.output
    if "--storage" not in extra:
        assert not (tmp_path / "t").exists()  # refused before anything was written


def test_missing_optuna_is_exit_2_saying_what_to_install(tiny, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna -> ImportError
    result = cli.invoke(app, ["tune", str(tiny), "--param", "mlp_train.dropout=float(0,0.5)",
                              "--out", str(tmp_path / "t")])
    assert result.exit_code == 2
    assert "install nnpipe[tune]" in result.output


def test_a_folder_nnpipe_did_not_make_is_refused_and_kept(tiny, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    result = cli.invoke(app, ["tune", str(tiny), "--param", "mlp_train.dropout=float(0,0.5)",
                              "--trials", "1", "--out", str(mine)])
    assert result.exit_code == 2 and "not made by nnpipe tune" in result.output
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    assert (mine / "notes.txt").read_text() == "keep me"


# --- pruning -------------------------------------------------------------------------------

def test_a_trial_worse_than_the_median_at_an_epoch_is_pruned():
    study = optuna.create_study(direction="maximize",
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=3))
    for accuracy in (0.8, 0.9, 0.85):  # three finished trials; their median at epoch 1 is 0.85
        trial = study.ask()
        trial.report(accuracy, 1)
        study.tell(trial, accuracy)
    worse, better = PruningMonitor(study.ask(), "val_accuracy"), PruningMonitor(study.ask(),
                                                                                 "val_accuracy")
    assert worse("mlp_train", 1, {"val_accuracy": 0.5, "train_loss": 1.0}) is True
    assert better("mlp_train", 1, {"val_accuracy": 0.95}) is False
    assert (worse.step, worse.value) == (1, 0.5)
    # a step without the metric is not judged
    assert PruningMonitor(study.ask(), "val_accuracy")("mlp_train", 1, {"loss": 1.0}) is False


def test_the_median_pruner_waits_a_share_of_the_complete_trials_steps():
    from pipeline.tune.study import WARMUP_SHARE, make_pruner

    study = optuna.create_study(direction="maximize", pruner=make_pruner("median"))
    for accuracy in (0.8, 0.9):  # two complete trials of 20 reported epochs, 0.85 median
        trial = study.ask()
        for epoch in range(1, 21):
            trial.report(accuracy, epoch)
        study.tell(trial, accuracy)
    warmup = WARMUP_SHARE * 20  # 4 epochs: no trial is judged before it has run them
    judged = []
    trial = study.ask()
    for epoch in range(1, 8):
        trial.report(0.5, epoch)  # worse than the median at every epoch
        judged.append(trial.should_prune())
    assert judged == [epoch >= warmup for epoch in range(1, 8)]
    good = study.ask()
    for epoch in range(1, 8):
        good.report(0.95, epoch)
        assert not good.should_prune()
    assert make_pruner("none").prune(study, study.trials[2]) is False


def complete_trials(study, finals, steps=20):
    """``finals``: one complete trial each, reporting its value at every step 1..steps."""
    for value in finals:
        trial = study.ask()
        for epoch in range(1, steps + 1):
            trial.report(value, epoch)
        study.tell(trial, value)


@pytest.mark.parametrize("pruner, value, pruned", [
    # complete trials 0.1, 0.2, 0.3, 0.4: median 0.25; the best quarter starts at their 75th
    # percentile, 0.3 + 0.25 * (0.4 - 0.3) = 0.325 (numpy's linear interpolation)
    ("median", 0.24, True), ("median", 0.26, False), ("quartile", 0.31, True),
    ("quartile", 0.33, False), ("none", 0.0, False)])
def test_the_quartile_pruner_keeps_only_the_best_quarter(pruner, value, pruned):
    from pipeline.tune.study import make_pruner

    study = optuna.create_study(direction="maximize", pruner=make_pruner(pruner))
    complete_trials(study, (0.1, 0.2, 0.3, 0.4))
    trial = study.ask()
    for epoch in range(1, 6):  # past the warm-up of a fifth of 20 epochs
        trial.report(value, epoch)
    assert bool(trial.should_prune()) is pruned


def test_median_reached_judges_against_every_trial_that_reached_the_step():
    from optuna.trial import TrialState

    from pipeline.tune.study import make_pruner

    study = optuna.create_study(direction="maximize", pruner=make_pruner("median-reached"))
    complete_trials(study, (0.8, 0.9))  # the survivors: median 0.85 at every step
    for value in (0.2, 0.3, 0.4):  # pruned at step 5: they reached it
        trial = study.ask()
        for epoch in range(1, 6):
            trial.report(value, epoch)
        study.tell(trial, state=TrialState.PRUNED)
    # at step 5 each running trial's field is 0.8, 0.9, 0.2, 0.3, 0.4 and the other running
    # trial: median 0.375 for the one at 0.45, 0.425 for the one at 0.35 (Optuna's: 0.85)
    kept, stopped = study.ask(), study.ask()
    for epoch in range(1, 6):
        kept.report(0.45, epoch)
        stopped.report(0.35, epoch)
    assert not kept.should_prune()
    assert stopped.should_prune()
    # at step 6 only the complete trials (and the running ones) reached it
    kept.report(0.45, 6)
    stopped.report(0.35, 6)
    assert stopped.should_prune() and kept.should_prune()  # fields 0.8, 0.9 and the other: 0.8
    fresh = optuna.create_study(direction="maximize", pruner=make_pruner("median-reached"))
    complete_trials(fresh, (0.8,))  # one complete trial: nothing is judged yet
    alone = fresh.ask()
    alone.report(0.1, 5)
    assert not alone.should_prune()


def test_the_pruner_warmup_is_the_share_of_epochs_before_judging():
    from pipeline.tune.study import make_pruner

    study = optuna.create_study(direction="maximize", pruner=make_pruner("median", 0.5))
    complete_trials(study, (0.8, 0.9))  # 20 epochs each: judged from epoch 10
    trial = study.ask()
    judged = []
    for epoch in range(1, 13):
        trial.report(0.5, epoch)
        judged.append(trial.should_prune())
    assert judged == [epoch >= 10 for epoch in range(1, 13)]


def test_a_stopped_stage_ends_within_its_epoch_and_is_never_cached(tiny, tmp_path):
    pipeline = load_pipeline(tiny, ["mlp_train.epochs=5"])
    calls = []

    def monitor(stage_id, step, values):
        calls.append((stage_id, step, sorted(values)))
        return step == 2  # prune at the second epoch

    cache = StageCache(tmp_path / "cache")
    with pytest.raises(Stopped):
        Runner(cache=cache, state_dir=tmp_path / "cache", monitor=monitor).run(
            pipeline, out=tmp_path / "run")
    assert [c[:2] for c in calls] == [("mlp_train", 1), ("mlp_train", 2)]  # no third epoch
    assert "val_accuracy" in calls[0][2]
    keys = stage_keys(pipeline, None, FileHasher(None))
    assert cache.lookup(keys[3], "one_hot") is not None  # complete stages are cached
    assert cache.lookup(keys[4], "mlp_train") is None  # the partial training is not
    assert not (tmp_path / "run").exists()
    # a monitor that never says stop: every epoch but the last (the result) is reported, and
    # the complete training is cached
    steps = []
    Runner(cache=cache, state_dir=tmp_path / "cache",
           monitor=lambda stage_id, step, values: steps.append(step) and False).run(
        pipeline, out=tmp_path / "run")
    assert steps == [1, 2, 3, 4]
    assert cache.lookup(keys[4], "mlp_train") is not None


def test_the_deadline_stops_a_trial_at_its_first_step_after_it_keeping_the_value():
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    trial = study.ask()
    monitor = PruningMonitor(trial, "val_accuracy", stop_at=time.time() + 3600)
    assert monitor("mlp_train", 1, {"val_accuracy": 0.5}) is False  # before the deadline
    monitor.stop_at = time.time() - 0.001  # the deadline has just passed
    assert monitor("mlp_train", 2, {"val_accuracy": 0.6}) is True
    assert monitor.stopped_by == "deadline" and (monitor.step, monitor.value) == (2, 0.6)
    assert trial.storage.get_trial(trial._trial_id).intermediate_values == {1: 0.5, 2: 0.6}
    # a step without the metric stops too (the deadline is not a judgement of the value)
    assert PruningMonitor(study.ask(), "val_accuracy", stop_at=time.time() - 1)(
        "mlp_train", 1, {"loss": 1.0}) is True
    # the later seeds' monitor: the deadline only
    later = DeadlineMonitor(stop_at=time.time() + 3600)
    assert later("mlp_train", 1, {}) is False and later.stopped_by is None
    later.stop_at = time.time() - 0.001
    assert later("mlp_train", 2, {}) is True and later.stopped_by == "deadline"
    assert DeadlineMonitor(None)("mlp_train", 1, {}) is False  # no deadline: never


def test_the_pruner_still_prunes_under_a_distant_deadline_and_says_so():
    study = optuna.create_study(direction="maximize",
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=1))
    done = study.ask()
    done.report(0.9, 1)
    study.tell(done, 0.9)
    monitor = PruningMonitor(study.ask(), "val_accuracy", stop_at=time.time() + 3600)
    assert monitor("mlp_train", 1, {"val_accuracy": 0.1}) is True
    assert monitor.stopped_by == "pruner"


def test_timeout_and_deadline_together_stop_starting_at_the_first_stop_running_at_the_second():
    from pipeline.tune.loop import Budget

    now = time.perf_counter()
    both = Budget(10, timeout=5.0, started=now - 7.0, deadline=10.0)  # 7 s after the start
    assert both.timed_out()  # no trial starts after the timeout
    assert both.stop_at() == pytest.approx(time.time() + 3.0, abs=0.5)  # running: 3 s more
    assert not Budget(10, timeout=None, started=now - 7.0, deadline=10.0).timed_out()
    assert Budget(10, timeout=20.0, started=now - 12.0, deadline=10.0).timed_out()
    assert Budget(10, timeout=5.0, started=now).stop_at() is None  # --timeout alone: finish


def study_with_complete_trials(seconds):
    """An in-memory study whose complete trials took ``seconds`` (as ``loop.tell`` records)."""
    study = optuna.create_study(direction="maximize")
    for value in seconds:
        trial = study.ask()
        trial.set_user_attr("nnpipe_seconds", value)
        study.tell(trial, 0.5)
    return study


@pytest.mark.parametrize("seconds, left, starts", [
    ([3.0, 10.0, 5.0], 4.0, False),  # the median 5 s does not fit in 4
    ([3.0, 10.0, 5.0], 6.0, True),
    ([2.0, 4.0], 3.5, True),  # the median of two: 3 s
    ([], 0.5, True),  # nothing complete yet: nothing to measure a trial by
])
def test_start_if_fits_starts_a_trial_while_the_time_left_holds_the_median(seconds, left,
                                                                          starts):
    from pipeline.tune.loop import Budget

    study = study_with_complete_trials(seconds)
    now = time.perf_counter()
    fits = Budget(10, timeout=None, started=now - (10.0 - left), deadline=10.0, fits=True)
    assert fits.may_ask(study, 0) is starts
    # without the option, or without a deadline, only the deadline and the count decide
    assert Budget(10, None, started=now - (10.0 - left), deadline=10.0).may_ask(study, 0)
    assert Budget(10, None, started=now - (10.0 - left), fits=True).may_ask(study, 0)


class FakeClock:
    """``time.perf_counter`` of the loop, advanced by the fake trials."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("fits, trials", [(True, 3), (False, 4)])
def test_start_if_fits_does_not_start_a_late_trial_and_the_running_ones_finish(monkeypatch,
                                                                              fits, trials):
    from pipeline.tune import loop

    clock = FakeClock()
    monkeypatch.setattr(loop.time, "perf_counter", clock)

    def three_seconds(task):  # each trial: 3 s, complete (the deadline never reaches it)
        clock.now += 3.0
        return {"number": task[0], "trial_id": task[1]._trial_id, "state": "COMPLETE",
                "value": 0.5, "values": [0.5], "epochs": 3, "run_dirs": [], "stages": [],
                "seconds": 3.0, "error": None, "stopped": None}

    monkeypatch.setattr(loop, "run_trial", three_seconds)
    study = optuna.create_study(direction="maximize")
    budget = loop.Budget(100, None, started=clock.now, deadline=10.0, fits=fits)
    outcomes = loop.run_loop(study, [parse_param("x=float(0,1)")], budget,
                             loop.Pool("loky", 1), lambda number, trial: (number, trial),
                             lambda outcome: None)
    # trials start at 0, 3 and 6 s; at 9 s the 1 s left holds no 3 s trial: with the option
    # none starts, without it a fourth starts before the deadline (and would be stopped)
    assert len(outcomes) == trials
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * trials
    assert sorted(t.user_attrs[NUMBER] for t in study.trials) == list(range(trials))


# --- whole studies -------------------------------------------------------------------------

def options(tmp_path, **changes) -> TuneOptions:
    values = dict(trials=4, out=tmp_path / "tune", fixed=("mlp_train.epochs=2",))
    values.update(changes)
    return TuneOptions(**values)


SPACE = ["mlp_train.optimizer.lr=float(0.01,0.5,log)", "mlp_train.hidden=choice([8],[16,8])"]


def test_a_study_writes_its_results_and_continues_where_it_stopped(tiny, tmp_path):
    params = [parse_param(t) for t in SPACE]
    first = run_tune(tiny, params, options(tmp_path, trials=3), cache_dir=tmp_path / "cache")
    out = tmp_path / "tune"
    for name in ("tune.csv", "tune.json", "best.yaml", "report.html", "study.db",
                 "plots/optimization_history.png", "plots/parallel_coordinate.png",
                 ".nnpipe-tune"):
        assert (out / name).is_file(), name
    csv_lines = (out / "tune.csv").read_text().splitlines()
    assert csv_lines[0].startswith("number,optuna_number,state,mlp_train.optimizer.lr,"
                                   "mlp_train.hidden,val_accuracy,")
    assert len(csv_lines) == 4
    assert first.best is not None
    assert load_pipeline(out / "best.yaml").spec.stages[4].hidden == yaml.safe_load(
        first.best["params"]["mlp_train.hidden"])
    completed = [r for r in first.rows if r["state"] == "COMPLETE"]
    assert all((Path(r["run_dir"]) / "manifest.json").is_file() for r in completed)
    # the same study, a larger budget: the first trials are kept, two more are run
    again = run_tune(tiny, params, options(tmp_path, trials=5), cache_dir=tmp_path / "cache")
    assert again.ran == 2
    assert [(r["optuna"], r["params"]) for r in again.rows[:3]] == \
        [(r["optuna"], r["params"]) for r in first.rows]
    assert sorted(r["number"] for r in again.rows) == [0, 1, 2, 3, 4]
    # shared stages came from the cache in every trial: only mlp_train and evaluate ran
    manifests = [yaml.safe_load((Path(r["run_dir"]) / "manifest.json").read_text())
                 for r in again.rows if r["state"] == "COMPLETE"]
    assert all(s["status"] == "cached" for m in manifests for s in m["stages"][:4])


def _kill_mid_trial(command: list[str], url: str) -> list:
    """Start the study, SIGKILL it while one trial is complete and another running, and return
    the trials as the database holds them after the kill (fails if the study ended first). The
    kill can land just after the running trial finished (a poll is stale by the time the signal
    arrives), so the caller checks the stored state, not the poll."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
        try:
            trials = stored_trials(url, "tiny")
        except Exception:  # not created yet
            continue
        states = [t.state.name for t in trials]
        if "COMPLETE" in states and any(t.state.name == "RUNNING" and NUMBER in t.user_attrs
                                        for t in trials):
            os.kill(process.pid, signal.SIGKILL)  # mid-trial: one done, one running
            break
    process.wait(30)
    assert process.returncode == -signal.SIGKILL, (
        f"the study ended (exit {process.returncode}) before it could be killed: "
        f"{process.stderr.read().decode(errors='replace')[-2000:]}")
    return stored_trials(url, "tiny")


def test_a_study_killed_mid_trial_resumes_to_exactly_n_trials(tiny, tmp_path):
    for attempt in range(3):  # a kill that lands between two trials is not the case under test
        out = tmp_path / f"tune{attempt}"
        command = [sys.executable, "-m", "pipeline.cli", "tune", str(tiny),
                   "--param", "mlp_train.optimizer.lr=float(0.01,0.5,log)", "--trials", "3",
                   "--pruner", "none", "--set", "mlp_train.epochs=40", "--out", str(out),
                   "--cache-dir", str(tmp_path / "cache")]
        url = f"sqlite:///{out / 'study.db'}"
        killed = _kill_mid_trial(command, url)
        if [t.state.name for t in killed].count("RUNNING") == 1:
            break
    else:
        pytest.fail("three kills in a row landed between trials")
    before = [(t.number, t.params) for t in killed if t.state.name == "COMPLETE"]
    assert before

    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "marked failed, their budget given back" in result.stdout
    trials = stored_trials(url, "tiny")
    counted = [t for t in trials if t.state.name in COUNTED]
    assert len(counted) == 3
    assert sorted(t.user_attrs[NUMBER] for t in counted) == [0, 1, 2]  # none lost, no gap
    assert [t.state.name for t in trials].count("FAIL") == 1  # the killed one, kept as failed
    assert [(t.number, t.params) for t in trials if t.number in dict(before)] == before


@pytest.mark.parametrize("jobs, seeds", [(2, None), (1, 2)])  # loky workers; this process
def test_the_deadline_stops_the_running_trials_and_the_study_loses_none(tiny, tmp_path, jobs,
                                                                        seeds):
    # trials far longer than the deadline: only the deadline can end them
    params = [parse_param(t) for t in SPACE]
    deadline = 8.0
    result = run_tune(tiny, params, options(tmp_path, trials=50, jobs=jobs, pruner="none",
                                            deadline=deadline, seeds=seeds,
                                            fixed=("mlp_train.epochs=1000000",)),
                      cache_dir=tmp_path / "cache")
    assert result.seconds < deadline + 60  # not the hours a million epochs take
    trials = stored_trials(result.info["storage"], "tiny")
    assert trials and {t.state.name for t in trials} == {"PRUNED"}  # none failed or running
    assert sorted(t.user_attrs[NUMBER] for t in trials) == list(range(len(trials)))
    for t in trials:  # each stopped at a step it reported, with that step's value
        assert t.user_attrs["nnpipe_stopped"] == "deadline"
        assert t.last_step is not None and t.user_attrs["nnpipe_epochs"] == t.last_step
        assert t.value == t.intermediate_values[t.last_step]
    lines = (tmp_path / "tune" / "tune.csv").read_text().splitlines()
    assert lines[0].endswith(",error,stopped")
    assert all(line.endswith(",deadline") for line in lines[1:])


def test_start_if_fits_ends_a_real_study_before_its_deadline_losing_no_trial(tiny, tmp_path):
    # trials of a fraction of a second against a 4 s deadline: once their median no longer
    # fits in the time left none starts, so the study ends by the deadline, numbered 0..N-1
    params = [parse_param(t) for t in SPACE]
    result = run_tune(tiny, params, options(tmp_path, trials=500, pruner="none", deadline=4.0,
                                            start_if_fits=True),
                      cache_dir=tmp_path / "cache")
    trials = stored_trials(result.info["storage"], "tiny")
    assert result.info["start_if_fits"] is True and result.ran == len(trials) < 500
    assert sorted(t.user_attrs[NUMBER] for t in trials) == list(range(len(trials)))
    assert {t.state.name for t in trials} <= set(COUNTED)  # none failed or left running
    assert "COMPLETE" in {t.state.name for t in trials}


def test_trials_on_a_local_dask_cluster_share_one_storage(tiny, tmp_path):
    params = [parse_param(t) for t in SPACE]
    result = run_tune(tiny, params, options(tmp_path, trials=4, backend="dask", jobs=2),
                      cache_dir=tmp_path / "cache")
    url = result.info["storage"]
    trials = stored_trials(url, "tiny")
    assert len([t for t in trials if t.state.name in COUNTED]) == 4
    assert {t.user_attrs.get("nnpipe_seconds") is not None for t in trials} == {True}
    assert sorted(r["number"] for r in result.rows) == [0, 1, 2, 3]


def test_seeds_rank_by_the_mean_and_compare_the_two_best(tiny, tmp_path):
    from scipy import stats

    params = [parse_param("mlp_train.optimizer.lr=choice(0.05,0.5)")]
    result = run_tune(tiny, params, options(tmp_path, trials=2, seeds=3, sampler="grid",
                                            pruner="none"), cache_dir=tmp_path / "cache")
    ranked = sorted((r for r in result.rows if r["state"] == "COMPLETE"),
                    key=lambda r: -r["value"])
    assert all(len(r["values"]) == 3 for r in ranked)
    assert ranked[0]["value"] == pytest.approx(sum(ranked[0]["values"]) / 3)
    p = stats.ttest_ind(ranked[0]["values"], ranked[1]["values"], equal_var=False).pvalue
    if p == p:  # not nan (identical constant samples give p = 1 in nnpipe)
        assert f"{p:.3g}" in result.sentence
    assert "3 seeds" in result.sentence


# --- the documented example ----------------------------------------------------------------

def readme_command() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```console\n\$ (nnpipe tune .*?)```", text, flags=re.S).group(1)
    return shlex.split(block.replace("\\\n", " "))


def test_the_readme_example_runs_as_written_on_a_tiny_pipeline(tiny, tmp_path):
    args = readme_command()
    assert args[:3] == ["nnpipe", "tune", "examples/mnist.yaml"]
    assert (ROOT / args[2]).is_file()
    args[2] = str(tiny)  # the same command on the tiny pipeline, fewer trials
    args[args.index("--trials") + 1] = "3"
    result = cli.invoke(app, [*args[1:], "--out", str(tmp_path / "t"),
                              "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output
    assert "best configuration:" in result.output


def test_tune_help_shows_the_readme_example():
    result = cli.invoke(app, ["tune", "--help"], terminal_width=200)
    flat = " ".join(result.output.split())
    for word in readme_command()[1:]:
        assert word in flat, word


def test_sampler_seeds_and_resumed_studies_never_replay_each_others_draws():
    from pipeline.tune.study import sampler_seed

    seeds = {sampler_seed(seed, trials) for seed in range(10) for trials in range(10)}
    assert len(seeds) == 100  # seed s resumed after n trials is no other (seed, n) pair
    assert sampler_seed(3, 5) == sampler_seed(3, 5)


def test_the_sampler_seed_chooses_the_search_and_repeats_it(tiny, tmp_path):
    params = [parse_param("mlp_train.dropout=float(0,0.5)")]

    def drawn(seed: int, out: str) -> list:
        result = run_tune(tiny, params, options(tmp_path, trials=2, sampler="random",
                                                sampler_seed=seed, out=tmp_path / out),
                          cache_dir=tmp_path / "cache")
        assert result.info["sampler_seed"] == seed
        return [r["params"] for r in result.rows]

    first = drawn(0, "a")
    assert drawn(0, "b") == first
    assert drawn(1, "c") != first


def test_a_study_is_continued_only_with_the_space_it_was_started_with(tiny, tmp_path):
    params = [parse_param("mlp_train.dropout=float(0,0.5)")]
    run_tune(tiny, params, options(tmp_path, trials=1), cache_dir=tmp_path / "cache")
    other = [parse_param("mlp_train.dropout=float(0,0.3)")]
    with pytest.raises(UserError, match=r"started with --param mlp_train.dropout=float\(0,0.5\)"):
        run_tune(tiny, other, options(tmp_path, trials=2), cache_dir=tmp_path / "cache")
