"""Stage keys: equal specs share a key, any change that matters makes a new one."""

from __future__ import annotations

import importlib
import sys

from pipeline.keys import FileHasher, code_fingerprint, stage_key
from pipeline.spec import StageContext
from toy_stages import Double, Produce, ReadsFile


def key(stage, previous=None, seed=0):
    return stage_key(stage, previous, StageContext(seed=seed))


def test_equal_specs_written_differently_share_a_key():
    spelled_out = Double.model_validate({"factor": 2, "kind": "double"})
    defaulted = Double.model_validate({"kind": "double"})
    with_id = Double(id="twice")  # an id is a label, not a setting
    assert key(spelled_out) == key(defaulted) == key(with_id)


def test_a_changed_field_seed_or_previous_key_changes_the_key():
    base = key(Double())
    assert key(Double(factor=3)) != base
    assert key(Double(), seed=1) != base
    assert key(Double(), previous="abc") != base


def test_a_stage_that_ignores_the_seed_keeps_its_key(monkeypatch):
    monkeypatch.setattr(Produce, "uses_seed", False)
    assert key(Produce(), seed=1) == key(Produce(), seed=2)


def test_file_content_is_part_of_the_key_not_its_time(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("one")
    stage = ReadsFile(path=path)
    stage.__class__.input_files = lambda self, context: [self.path]
    try:
        first = key(stage)
        path.touch()
        assert key(stage) == first
        path.write_text("two")
        assert key(stage) != first
    finally:
        del stage.__class__.input_files


def test_file_hashes_are_reused_while_size_and_mtime_hold(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"x" * 100)
    memo = tmp_path / "memo.json"
    hasher = FileHasher(memo)
    digest = hasher.hash(path)
    hasher.flush()
    again = FileHasher(memo)
    assert again.memo[str(path.resolve())][2] == digest
    assert again.hash(path) == digest


def test_editing_a_helper_module_changes_the_fingerprint(tmp_path, monkeypatch):
    package = tmp_path / "toyplug"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "helper.py").write_text("def f(x):\n    return x + 1\n")
    (package / "stage.py").write_text("from .helper import f\n")
    (package / "other.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    before = code_fingerprint(["toyplug.stage"])
    assert set(before) == {"toyplug.stage", "toyplug.helper"}
    (package / "other.py").write_text("X = 2\n")  # not imported by the stage
    assert code_fingerprint(["toyplug.stage"]) == before
    (package / "helper.py").write_text("def f(x):\n    return x + 20\n")
    assert code_fingerprint(["toyplug.stage"]) != before
    for name in [m for m in sys.modules if m.startswith("toyplug")]:
        del sys.modules[name]
