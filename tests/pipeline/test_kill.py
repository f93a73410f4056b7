"""SIGKILL while the run directory or a cache entry is being written: the next run is complete and
correct, and nothing half-written is ever taken for a good result by a later run (or a user)."""

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


def kill_when(marker: Path, command: list[str], env: dict) -> None:
    """Start ``command``; SIGKILL it as soon as it writes ``marker`` (half-way through a write)."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the process never reached the write"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


def test_sigkill_while_writing_the_run_directory(tmp_path):
    site = tmp_path / "site"
    make_distribution(site, "slow-save", "1.0", {"nnpipe.stages": {"make_report": "slow_save:MakeReport"}},
                      {"slow_save.py": SLOW_SAVE})
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text("stages:\n  - {kind: make_report, value: 7}\n")
    out = tmp_path / "runs" / "run"
    marker = tmp_path / "marker"
    env = dict(os.environ, PYTHONPATH=str(site), SLOW_SAVE_MARKER=str(marker),
               NNPIPE_CACHE=str(tmp_path / "cache"))
    command = [sys.executable, "-m", "pipeline.cli", "run", str(pipeline), "--out", str(out)]

    kill_when(marker, command, env)
    assert not out.exists()  # half-written files live only in a hidden staging folder

    env.pop("SLOW_SAVE_MARKER")
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
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


def test_sigkill_while_writing_a_cache_entry(tmp_path):
    site = tmp_path / "site"
    make_distribution(site, "slow-pickle", "1.0",
                      {"nnpipe.stages": {"make_numbers": "slow_pickle:Make",
                                         "show_numbers": "slow_pickle:Show"}},
                      {"slow_pickle.py": SLOW_PICKLE})
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text("stages:\n  - {kind: make_numbers, value: 21}\n  - {kind: show_numbers}\n")
    marker = tmp_path / "marker"
    cache = tmp_path / "cache"
    env = dict(os.environ, PYTHONPATH=str(site), SLOW_PICKLE_MARKER=str(marker),
               NNPIPE_CACHE=str(cache))
    command = [sys.executable, "-m", "pipeline.cli", "run", str(pipeline)]

    kill_when(marker, command + ["--out", str(tmp_path / "killed")], env)
    assert not (tmp_path / "killed").exists()

    env.pop("SLOW_PICKLE_MARKER")
    for attempt in ("first", "second"):  # the rerun computes, the one after it loads the entry
        done = subprocess.run(command + ["--out", str(tmp_path / attempt)], env=env,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert "warning" not in done.stderr  # the killed write left nothing that looks like an entry
        manifest = json.loads((tmp_path / attempt / "manifest.json").read_text())
        assert [s["status"] for s in manifest["stages"]] == (
            ["ran", "ran"] if attempt == "first" else ["cached", "cached"])
