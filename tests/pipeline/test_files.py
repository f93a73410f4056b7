"""pipeline.files: atomic writes, flushed to disk one by one or, inside ``synced_together``,
all at once when the block ends."""

from __future__ import annotations

import errno
import os
import threading

import pytest

from pipeline import files
from pipeline.files import DiskFullError, atomic_open, synced_together, write_json, write_text


@pytest.fixture
def fsyncs(monkeypatch):
    """Every fsync: (the file's inode, the thread that flushed it), in order."""
    done = []
    real = os.fsync

    def fsync(fd):
        done.append((os.fstat(fd).st_ino, threading.current_thread().name))
        real(fd)

    monkeypatch.setattr(files.os, "fsync", fsync)
    return done


def test_outside_the_block_each_file_is_flushed_as_it_is_written(tmp_path, fsyncs):
    write_text(tmp_path / "a.txt", "a")
    assert [ino for ino, _ in fsyncs] == [(tmp_path / "a.txt").stat().st_ino]
    write_json(tmp_path / "b.json", {"b": 1})
    assert len(fsyncs) == 2


def test_inside_the_block_every_file_is_flushed_when_it_ends(tmp_path, fsyncs):
    names = [f"f{i}.txt" for i in range(20)]
    with synced_together():
        for name in names:
            write_text(tmp_path / name, name)
        (tmp_path / "sub").mkdir()
        write_json(tmp_path / "sub" / "x.json", [1])
        assert fsyncs == []  # nothing flushed yet
    written = {(tmp_path / n).stat().st_ino for n in names} | {(tmp_path / "sub" / "x.json").stat().st_ino}
    assert {ino for ino, _ in fsyncs} == written and len(fsyncs) == len(written)
    assert all(thread.startswith("nnpipe-sync") for _, thread in fsyncs)  # on the pool's threads
    assert (tmp_path / "f3.txt").read_text() == "f3.txt"
    write_text(tmp_path / "after.txt", "x")  # the block is over: flushed at once again
    assert len(fsyncs) == len(written) + 1


def test_an_error_inside_the_block_flushes_nothing_and_propagates(tmp_path, fsyncs):
    with pytest.raises(KeyError):
        with synced_together():
            write_text(tmp_path / "a.txt", "a")
            raise KeyError("boom")
    assert fsyncs == []


def test_a_file_removed_before_the_end_is_skipped(tmp_path, fsyncs):
    with synced_together():
        write_text(tmp_path / "gone.txt", "a")
        write_text(tmp_path / "kept.txt", "b")
        (tmp_path / "gone.txt").unlink()
    assert [ino for ino, _ in fsyncs] == [(tmp_path / "kept.txt").stat().st_ino]


def failing_fsync(monkeypatch, code: int) -> None:
    """Every fsync fails with the OSError ``code``."""
    def fsync(fd):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(files.os, "fsync", fsync)


def test_a_full_disk_found_while_flushing_names_the_folder(tmp_path, monkeypatch):
    failing_fsync(monkeypatch, errno.ENOSPC)
    with pytest.raises(DiskFullError) as raised:
        with synced_together():
            write_text(tmp_path / "a.txt", "a")
    assert raised.value.folder == tmp_path and "no space left" in str(raised.value)


def test_another_error_while_flushing_is_raised_as_it_is(tmp_path, monkeypatch):
    failing_fsync(monkeypatch, errno.EIO)
    with pytest.raises(OSError) as raised:
        with synced_together():
            with atomic_open(tmp_path / "a.bin") as handle:
                handle.write(b"x")
    assert raised.value.errno == errno.EIO
