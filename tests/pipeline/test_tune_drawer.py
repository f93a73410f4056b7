"""The plots' helper process (``pipeline.tune.drawer``) and one storage read per pruning
judgement (``pipeline.tune.study.TrialsReadOnce``)."""

from __future__ import annotations

import os
import signal

import optuna
import pytest

from pipeline.tune.drawer import Drawer
from pipeline.tune.study import TrialsReadOnce, make_pruner

PLOTS = ["optimization_history.png", "param_importances.png", "parallel_coordinate.png"]


@pytest.fixture
def stored_study(tmp_path):
    """A finished study of 6 trials over two parameters in an SQLite file: its URL and name."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(storage=url, study_name="s", direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: t.suggest_float("lr", 1e-3, 1e-1, log=True)
                   - t.suggest_float("dropout", 0, 0.5), n_trials=6)
    return url, "s"


def test_the_helper_draws_the_three_plots_of_the_stored_study(stored_study, tmp_path):
    with Drawer(*stored_study) as drawer:
        drawn = drawer.result(drawer.submit(tmp_path / "plots", wait=120))
    assert drawn is not None
    written, notes = drawn
    assert [p.name for p in written] == PLOTS and notes == []
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == sorted(PLOTS)


def test_a_helper_still_importing_or_dead_draws_nothing_and_says_so(stored_study, tmp_path):
    with Drawer(*stored_study) as drawer:
        # asked before its imports can be done: None, and nothing half-drawn is left
        assert drawer.result(drawer.submit(tmp_path / "early", wait=0)) is None
        assert not (tmp_path / "early").exists()
        for pid in list(drawer.executor._processes):  # the helper dies (killed, no memory)
            os.kill(pid, signal.SIGKILL)
        assert drawer.result(drawer.submit(tmp_path / "dead", wait=120)) is None


def test_a_pruning_judgement_reads_the_complete_trials_from_the_storage_once():
    study = optuna.create_study(direction="maximize")
    for value in (0.5, 0.7):  # two complete trials: the median rule may judge
        trial = study.ask()
        for step in range(1, 6):
            trial.report(value, step)
        study.tell(trial, value)
    trial = study.ask()
    for step in range(1, 4):
        trial.report(0.1, step)
    reads = []
    original = study.get_trials

    def counting(deepcopy=True, states=None):
        reads.append(states)
        return original(deepcopy=deepcopy, states=states)

    study.get_trials = counting
    frozen = study._storage.get_trial(trial._trial_id)
    assert bool(make_pruner("median", 0.2).prune(study, frozen))  # 0.1 < median 0.6
    assert len(reads) == 1


def test_trials_read_once_gives_copies_when_asked_and_the_study_otherwise():
    study = optuna.create_study(direction="minimize")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    once = TrialsReadOnce(study)
    shared = once.get_trials(deepcopy=False)
    copied = once.get_trials(deepcopy=True)
    assert [t.number for t in copied] == [t.number for t in shared] == [0, 1]
    assert copied[0] is not shared[0] and shared[0] is once.get_trials(deepcopy=False)[0]
    assert once.direction == study.direction


def test_a_study_without_a_complete_trial_draws_nothing_and_logs_nothing(tmp_path, capfd):
    from pipeline.tune.plots import write_plots

    study = optuna.create_study(direction="maximize")
    trial = study.ask({"lr": optuna.distributions.FloatDistribution(1e-3, 1e-1)})
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    written, notes = write_plots(study, tmp_path / "plots")
    assert written == [] and not (tmp_path / "plots").exists()
    assert notes == [f"{name.removesuffix('.png')}: not drawn (no complete trial)"
                     for name in PLOTS]
    # Optuna's own "There are no complete trials" lines went to stderr before
    assert "complete" not in capfd.readouterr().err
