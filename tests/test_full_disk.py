"""A full disk while writing the cache or the run directory: one line naming the folder, exit
status 1, no temporary file left behind, and the next run works once there is space.

The disk is full for real where the machine allows it (a 1 MB tmpfs, filled to the last byte: CI
runs as root, like this test's machine); the same cases also run with the failure injected (a
launcher makes every write below the folder fail with ENOSPC), which is what the tmpfs case falls
back to when mounting is not permitted. No case is skipped.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import pytest

from pipeline.io.leftovers import is_nnpipe_temporary

GOOD = Path(__file__).resolve().parent / "data" / "good" / "pipeline.yaml"

#: ``python -c LAUNCHER ARGS`` is ``nnpipe ARGS`` with every write below $FULL_DISK failing with
#: ENOSPC while the file $FULL_FLAG exists (opened files are wrapped; nothing else changes).
LAUNCHER = r'''
import builtins, errno, io, os, sys
FULL, FLAG = os.environ["FULL_DISK"], os.environ["FULL_FLAG"]

def full(path):
    return os.path.exists(FLAG) and os.path.abspath(path).startswith(FULL + os.sep)

class Full:
    def __init__(self, handle):
        self._handle = handle
    def write(self, data):
        if len(data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return 0
    def __getattr__(self, name):
        return getattr(self._handle, name)
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        self._handle.close()

_open, _fdopen = builtins.open, os.fdopen

def open_(file, mode="r", *args, **kwargs):
    handle = _open(file, mode, *args, **kwargs)
    writing = any(c in mode for c in "wax+")
    if writing and isinstance(file, (str, bytes, os.PathLike)) and full(os.fsdecode(file)):
        return Full(handle)
    return handle

def fdopen(fd, mode="r", *args, **kwargs):
    handle = _fdopen(fd, mode, *args, **kwargs)
    if any(c in mode for c in "wax+") and full(os.readlink(f"/proc/self/fd/{fd}")):
        return Full(handle)
    return handle

builtins.open = io.open = open_
os.fdopen = fdopen
sys.argv = ["nnpipe", *sys.argv[1:]]
from pipeline.cli import app
app()
'''


@contextmanager
def full_disk(tmp_path: Path, how: str) -> Iterator[tuple[Path, Callable[[], None], list[str], dict]]:
    """(a folder on a full disk, a function that makes room, the command, its environment)."""
    folder = tmp_path / "full"
    folder.mkdir()
    env = dict(os.environ)
    mounted = how == "tmpfs" and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)],
        capture_output=True).returncode == 0
    try:
        if mounted:
            filler = folder / "filler"
            with pytest.raises(OSError) as raised, open(filler, "wb") as handle:
                while True:  # fill the disk to its last byte
                    handle.write(b"\0" * 65536)
                    handle.flush()
            assert raised.value.errno == errno.ENOSPC
            yield folder, filler.unlink, [sys.executable, "-m", "pipeline.cli"], env
        else:
            flag = tmp_path / "disk-is-full"
            flag.write_text("")
            env.update(FULL_DISK=str(folder), FULL_FLAG=str(flag))
            yield folder, flag.unlink, [sys.executable, "-c", LAUNCHER], env
    finally:
        if mounted:
            subprocess.run(["umount", str(folder)], check=False)


def temporaries(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.rglob("*") if is_nnpipe_temporary(p.name))


def assert_disk_full_line(done: subprocess.CompletedProcess, folder: Path) -> None:
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: no space left on the device of {folder}"), lines[0]


@pytest.mark.parametrize("how", ["tmpfs", "injected"])
@pytest.mark.parametrize("where", ["cache", "run directory"])
def test_a_full_disk(tmp_path, where, how):
    with full_disk(tmp_path, how) as (full, make_room, nnpipe, env):
        disk, other = (full, tmp_path) if where == "cache" else (tmp_path, full)
        cache, out = disk / "cache", other / "runs" / "run"
        command = [*nnpipe, "run", str(GOOD), "--out", str(out), "--cache-dir", str(cache)]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        # The line names the folder that is full: the cache, or the run directory's parent.
        assert_disk_full_line(done, cache if where == "cache" else out.parent)
        if where == "run directory":
            assert f"while writing the run directory {out}" in done.stderr
        assert temporaries(full) == [] and not out.exists()
        assert not list((cache / "joblib").rglob("output.pkl.*"))  # no half-written entry
        make_room()
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and done.stderr == "", done.stderr
        stages = json.loads((out / "manifest.json").read_text())["stages"]
        # What was cached before the disk filled stays cached.
        assert {stage["status"] for stage in stages} == ({"ran"} if where == "cache"
                                                         else {"cached"})
        assert temporaries(full) == []
