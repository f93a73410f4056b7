"""``nnpipe tune``'s directory goes through the one output check (``pipeline.io.outputs``), and a
running trial's owner is a process, not a pid: a reused pid does not keep a dead trial alive."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import optuna
import psutil
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.errors import UserError
from pipeline.io.outputs import TUNE_MARKER, tune_dir_problem
from pipeline.tune.owner import alive, process_start, this_owner
from pipeline.tune.study import OWNER, open_storage, recover

cli = CliRunner()
PARAM = "mlp_train.dropout=float(0,0.5)"


def tree(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` with its bytes (to show nothing was touched)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def tune(tiny, out, cache, *extra):
    return cli.invoke(app, ["tune", str(tiny), "--param", PARAM, "--trials", "1", "--out",
                            str(out), "--cache-dir", str(cache), *extra])


# --- the tune directory ------------------------------------------------------------------

@pytest.mark.parametrize("contents", [
    {"notes.txt": "keep me"},  # a user's folder
    {TUNE_MARKER: "made by nnpipe tune\n", "notes.txt": "keep me"},  # a foreign file inside
    {TUNE_MARKER: "made by nnpipe tune\n", "trials/mine/data.csv": "1,2"},  # not a run dir
    {TUNE_MARKER: "made by nnpipe tune\n", "plots/notes.txt": "keep me"},
])
def test_a_folder_holding_what_nnpipe_did_not_write_is_exit_2_and_untouched(
        tiny, tmp_path, contents):
    out = tmp_path / "mine"
    for name, text in contents.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)
    before = tree(out)
    result = tune(tiny, out, tmp_path / "cache")
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1 and f"--out {out}" in result.output
    assert tree(out) == before and sorted(p.name for p in out.iterdir()) == sorted(
        {name.split("/")[0] for name in contents})


def test_the_working_folder_and_the_cache_folder_are_refused(tiny, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    result = tune(tiny, cache, cache)
    assert result.exit_code == 2 and "is the cache folder" in result.output
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    result = tune(tiny, work, cache)
    assert result.exit_code == 2 and "is the working folder" in result.output
    assert list(work.iterdir()) == [] and list(cache.iterdir()) == []


def test_only_a_marked_folder_of_nnpipe_files_is_a_tune_directory(tmp_path):
    out = tmp_path / "t"
    out.mkdir()
    assert tune_dir_problem(out) is None  # empty: nothing to lose
    (out / "study.db").write_bytes(b"")
    assert "not made by nnpipe tune" in tune_dir_problem(out)
    (out / TUNE_MARKER).write_text("made by nnpipe tune\n")
    (out / "plots").mkdir()
    (out / "plots" / "optimization_history.png").write_bytes(b"png")
    assert tune_dir_problem(out) is None
    (out / "trials").mkdir()
    (out / "trials" / "000").mkdir()  # an empty folder is not a run directory of nnpipe's
    (out / "trials" / "000" / "x.txt").write_text("x")
    assert "holding something nnpipe did not write (trials)" in tune_dir_problem(out)


# --- owners and pid reuse ----------------------------------------------------------------

@pytest.fixture
def stranger():
    """A live process unrelated to any study (what a reused pid would belong to)."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield process
    process.kill()
    process.wait()


def test_the_start_recorded_is_the_processes_start(stranger):
    """Oracle: psutil's create time is boot time + start ticks / clock ticks per second."""
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    start = process_start(stranger.pid)
    assert start.startswith(boot + "-")
    ticks = int(start.rpartition("-")[2])
    created = psutil.boot_time() + ticks / os.sysconf("SC_CLK_TCK")
    assert abs(created - psutil.Process(stranger.pid).create_time()) < 1.0
    assert process_start(stranger.pid) != process_start(os.getpid())


def test_a_live_process_holding_the_recorded_pid_is_not_the_owner(stranger):
    host, pid = socket.gethostname(), stranger.pid
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert alive(f"{host}:{pid}:{process_start(pid)}") is True  # the owner itself
    assert alive(f"{host}:{pid}:{boot}-1") is False  # same pid, started at another time
    assert alive(f"{host}:{pid}:another-boot-{process_start(pid).rpartition('-')[2]}") is False
    assert alive(f"{host}:{pid}") is True  # an owner recorded without a start: the pid alone
    assert alive(f"elsewhere:{pid}:{process_start(pid)}") is None  # another host: cannot tell
    assert alive(this_owner()) is True


def test_a_dead_process_is_not_the_owner(tmp_path):
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    owner = f"{socket.gethostname()}:{process.pid}:{process_start(process.pid)}"
    process.wait()
    assert alive(owner) is False


def _running_trial(tmp_path, owner: str):
    storage = open_storage(f"sqlite:///{tmp_path / 'study.db'}")
    study = optuna.create_study(storage=storage, study_name="s", direction="maximize")
    trial = study.ask()
    trial.set_user_attr(OWNER, owner)
    return study


def test_a_dead_trial_whose_pid_was_reused_is_recovered(tmp_path, stranger):
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    study = _running_trial(tmp_path, f"{socket.gethostname()}:{stranger.pid}:{boot}-1")
    assert recover(study) == [0]
    assert [t.state.name for t in study.get_trials()] == ["FAIL"]


def test_a_trial_of_a_live_owner_is_still_refused(tmp_path, stranger):
    owner = f"{socket.gethostname()}:{stranger.pid}:{process_start(stranger.pid)}"
    study = _running_trial(tmp_path, owner)
    with pytest.raises(UserError, match="is being run by process"):
        recover(study)
    assert [t.state.name for t in study.get_trials()] == ["RUNNING"]


@pytest.mark.parametrize("command", [["tune", "--param", PARAM, "--trials", "1"],
                                     ["sweep", "--grid", "mlp_train.epochs=1,2"]])
def test_a_cache_dir_that_is_a_file_is_exit_2_before_anything_is_written(tiny, tmp_path,
                                                                          command):
    (tmp_path / "afile").write_text("mine")
    result = cli.invoke(app, [command[0], str(tiny), *command[1:], "--out", str(tmp_path / "o"),
                              "--cache-dir", str(tmp_path / "afile")])
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1 and "is a file" in result.output
    assert "--no-cache" not in result.output  # neither command has that option
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]
    assert (tmp_path / "afile").read_text() == "mine"
