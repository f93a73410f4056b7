"""SIGKILL or SIGTERM while the run directory or a cache entry is being written.

SIGKILL: the next run is complete and correct, nothing half-written is ever taken for a good result
by a later run (or a user), and the next run removes the temporary files and ``.partial`` folders
the killed one left (only nnpipe's own, only when their owner is gone). SIGTERM: handled like
Ctrl-C, one line and exit status 143, nothing half-written kept.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from support import make_distribution

SLOW_SAVE = '''
import os, time
from pathlib import Path
from typing import Literal
from pipeline.spec import StageSpec

class Report:
    def __init__(self, value):
        self.value = value

    def save(self, directory):
        (Path(directory) / "first.txt").write_text(str(self.value))
        marker = os.environ.get("SLOW_SAVE_MARKER")
        if marker:  # tell the test we are half-way through writing, then dawdle
            Path(marker).write_text("half")
            time.sleep(30)
        (Path(directory) / "second.txt").write_text(str(self.value))
        return ["first.txt", "second.txt"]

class MakeReport(StageSpec):
    kind: Literal["make_report"] = "make_report"
    value: int = 7
    outputs = ("report",)

    def run(self, inputs, context):
        return {"report": Report(self.value)}
'''


def kill_when(marker: Path, command: list[str], env: dict,
              sig: int = signal.SIGKILL) -> subprocess.CompletedProcess:
    """Start ``command``; send it ``sig`` as soon as it writes ``marker`` (half-way through a
    write); return how it ended (its status and output)."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the process never reached the write"
        time.sleep(0.05)
    os.kill(process.pid, sig)
    stdout, stderr = process.communicate(timeout=60)
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def nnpipe_temporaries(folder: Path) -> list[str]:
    """Every name below ``folder`` that is one of nnpipe's (or joblib's) temporary names."""
    from pipeline.io.leftovers import is_nnpipe_temporary

    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if is_nnpipe_temporary(p.name))


def assert_interrupted_line(done: subprocess.CompletedProcess) -> None:
    """SIGTERM ends like Ctrl-C: status 143 and the one interrupted line, no traceback."""
    assert done.returncode == 143, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("interrupted: nothing half-written was kept")


def test_sigkill_while_writing_the_run_directory(tmp_path):
    command, env, out, marker = _slow_save_run(tmp_path)
    kill_when(marker, command, env)
    assert not out.exists()  # half-written files live only in a hidden staging folder
    left = nnpipe_temporaries(out.parent)
    assert len(left) == 1 and left[0].endswith(".partial"), left  # the killed run's staging

    env.pop("SLOW_SAVE_MARKER")
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert nnpipe_temporaries(out.parent) == []  # the next run removed it
    assert (out / "first.txt").read_text() == (out / "second.txt").read_text() == "7"
    manifest = json.loads((out / "manifest.json").read_text())
    assert "second.txt" in manifest["files"]


SLOW_PICKLE = '''
import os, time
from pathlib import Path
from typing import Literal
from pipeline.spec import StageSpec


def _rebuild(value):
    return Numbers(value)


class Numbers:
    """An artifact whose pickling (the cache write) stops half-way when asked to."""

    def __init__(self, value):
        self.value = value

    def __reduce__(self):
        marker = os.environ.get("SLOW_PICKLE_MARKER")
        if marker:  # the cache write has begun: tell the test, then dawdle
            Path(marker).write_text("writing")
            time.sleep(30)
        return (_rebuild, (self.value,))


class Make(StageSpec):
    kind: Literal["make_numbers"] = "make_numbers"
    value: int = 3
    outputs = ("numbers",)

    def run(self, inputs, context):
        return {"numbers": Numbers(self.value)}


class Show(StageSpec):
    kind: Literal["show_numbers"] = "show_numbers"
    inputs = ("numbers",)
    outputs = ("shown",)

    def run(self, inputs, context):
        return {"shown": inputs["numbers"].value * 2}
'''


def _slow_pickle_run(tmp_path: Path) -> tuple[list[str], dict, Path, Path]:
    """The command (without --out), environment, cache and marker of a run that dawdles while
    writing its first cache entry."""
    site = tmp_path / "site"
    make_distribution(site, "slow-pickle", "1.0",
                      {"nnpipe.stages": {"make_numbers": "slow_pickle:Make",
                                         "show_numbers": "slow_pickle:Show"}},
                      {"slow_pickle.py": SLOW_PICKLE})
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text("stages:\n  - {kind: make_numbers, value: 21}\n  - {kind: show_numbers}\n")
    marker, cache = tmp_path / "marker", tmp_path / "cache"
    env = dict(os.environ, PYTHONPATH=str(site), SLOW_PICKLE_MARKER=str(marker),
               NNPIPE_CACHE=str(cache))
    return [sys.executable, "-m", "pipeline.cli", "run", str(pipeline)], env, cache, marker


def test_sigkill_while_writing_a_cache_entry(tmp_path):
    command, env, cache, marker = _slow_pickle_run(tmp_path)

    kill_when(marker, command + ["--out", str(tmp_path / "killed")], env)
    assert not (tmp_path / "killed").exists()
    left = [name.rpartition("/")[2] for name in nnpipe_temporaries(cache)]
    assert len(left) == 2 and left[0].startswith(".nnpipe-writer-"), left  # the writer's mark
    assert left[1].startswith("output.pkl."), left  # and joblib's temporary file

    env.pop("SLOW_PICKLE_MARKER")
    for attempt in ("first", "second"):  # the rerun computes, the one after it loads the entry
        done = subprocess.run(command + ["--out", str(tmp_path / attempt)], env=env,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert "warning" not in done.stderr  # the killed write left nothing that looks like an entry
        manifest = json.loads((tmp_path / attempt / "manifest.json").read_text())
        assert [s["status"] for s in manifest["stages"]] == (
            ["ran", "ran"] if attempt == "first" else ["cached", "cached"])
        assert nnpipe_temporaries(cache) == []  # the killed write's temporary file is gone


def _slow_save_run(tmp_path: Path) -> tuple[list[str], dict, Path, Path]:
    """The command, environment, run directory and marker of a run that dawdles mid-write."""
    site = tmp_path / "site"
    make_distribution(site, "slow-save", "1.0", {"nnpipe.stages": {"make_report": "slow_save:MakeReport"}},
                      {"slow_save.py": SLOW_SAVE})
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text("stages:\n  - {kind: make_report, value: 7}\n")
    out, marker = tmp_path / "runs" / "run", tmp_path / "marker"
    env = dict(os.environ, PYTHONPATH=str(site), SLOW_SAVE_MARKER=str(marker),
               NNPIPE_CACHE=str(tmp_path / "cache"))
    return [sys.executable, "-m", "pipeline.cli", "run", str(pipeline), "--out", str(out)], env, \
        out, marker


def test_sigterm_while_writing_the_run_directory_is_like_ctrl_c(tmp_path):
    command, env, out, marker = _slow_save_run(tmp_path)
    done = kill_when(marker, command, env, signal.SIGTERM)
    assert_interrupted_line(done)
    assert not out.exists()
    assert nnpipe_temporaries(out.parent) == []  # the staging folder went with it


def test_sigterm_while_writing_a_cache_entry_is_like_ctrl_c(tmp_path):
    command, env, cache, marker = _slow_pickle_run(tmp_path)
    command = [*command, "--out", str(tmp_path / "run")]
    assert_interrupted_line(kill_when(marker, command, env, signal.SIGTERM))
    assert not (tmp_path / "run").exists()
    assert nnpipe_temporaries(cache) == []  # joblib's temporary file and the writer's mark
    env.pop("SLOW_PICKLE_MARKER")
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    assert done.returncode == 0 and "warning" not in done.stderr, done.stderr


def test_the_next_run_removes_only_abandoned_temporaries(tmp_path):
    """Owner gone (pid dead on this host, or on another host and untouched for a day): removed.
    A live owner, a fresh owner on another host, joblib's fresh file of a dead pid with no mark,
    names without an owner tag (older versions', or the user's) and the user's files: kept."""
    from typer.testing import CliRunner

    from pipeline.cli import app
    from pipeline.io.leftovers import host_tag

    HOST = host_tag()

    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    dead, alive = finished.pid, os.getpid()
    runs, entry = tmp_path / "runs", tmp_path / "cache" / "joblib" / "stages" / ("ab" * 32)
    old, minutes_ago = time.time() - 2 * 24 * 3600, time.time() - 20 * 60
    gone = {runs / f".run.{dead}@{HOST}.abcdefgh.partial": "dir",
            runs / f".model.npz.{dead}@{HOST}.k2j3h4g5.tmp": "file",
            runs / f".metrics.json.{alive}@00000000.abcdefgh.tmp": old,  # other host, a day
            runs / f".run.old-{dead}@{HOST}": "dir",
            entry / f"output.pkl.{'c' * 32}-{dead}-7": "file",
            entry / f".nnpipe-writer-{dead}@{HOST}": "file",
            tmp_path / "cache" / "records" / f".x.json.{dead}@{HOST}.abcdefgh.tmp": "file",
            tmp_path / "cache" / "joblib" / "stages" / ("12" * 32) / f"output.pkl.{'f' * 32}-{dead}-7":
                minutes_ago}  # joblib's, no mark, 20 minutes old, its pid dead here: removed
    kept = {runs / f".run.{alive}@{HOST}.abcdefgh.partial": "dir",
            runs / f".run.{dead}@00000000.abcdefgh.partial": "dir",
            runs / ".fresh.npz.abcdefgh.tmp": "file", runs / ".older.npz.abcdefgh.tmp": old,
            tmp_path / "cache" / "joblib" / "stages" / ("ef" * 32) / f"output.pkl.{'e' * 32}-{alive}-7":
                minutes_ago,  # joblib's, 20 minutes old, its pid alive: kept
            tmp_path / "cache" / "joblib" / "stages" / ("cd" * 32) / f"output.pkl.{'d' * 32}-{dead}-7":
                "file",
            runs / ".notes.tmp": old, runs / "draft.partial": old, runs / "notes.txt": old}
    for path, what in {**gone, **kept}.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if what == "dir":
            path.mkdir()
            (path / "inside.txt").write_text("x")
        else:
            path.write_text("x")
        if isinstance(what, float):
            os.utime(path, (what, what))
    good = Path(__file__).resolve().parent.parent / "data" / "good" / "pipeline.yaml"
    result = CliRunner().invoke(app, ["run", str(good), "--out", str(runs / "r"),
                                      "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output
    assert [p.name for p in gone if p.exists()] == []
    assert [p.name for p in kept if not p.exists()] == []


def test_sigterm_during_a_sweep(tmp_path):
    """The sweep's parent ends like Ctrl-C; its killed workers' staging folders are hidden and
    removed by the next sweep into the same directory, which completes."""
    command, env, _, marker = _slow_save_run(tmp_path)
    sweep = [*command[:3], "sweep", command[4], "--grid", "make_report.value=1,2", "--jobs", "2",
             "--out", str(tmp_path / "sweep")]
    assert_interrupted_line(kill_when(marker, sweep, env, signal.SIGTERM))
    assert not [p for p in (tmp_path / "sweep").iterdir() if not p.name.startswith(".")
                and p.name != "sweep.json"]  # no run directory, whole or half, in sight
    env.pop("SLOW_SAVE_MARKER")
    done = subprocess.run(sweep, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert nnpipe_temporaries(tmp_path / "sweep") == []
    assert all((tmp_path / "sweep" / name / "second.txt").is_file()
               for name in ("000-value=1", "001-value=2"))
