"""The cache checks content: a changed byte, a wrong output, a record, pointer or file-hash index
of the wrong shape are each one warning line and a recompute, never a wrong result or a traceback."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from pipeline.engine import cache_check
from pipeline.engine.cache import StageCache
from pipeline.engine.keys import FileHasher
from pipeline.engine.plan import plan
from pipeline.engine.runner import Runner
from test_cache import load as load_toy

def load(tmp_path):
    """test_cache's toy pipeline, with 40 numbers: a pickle with a middle worth changing."""
    return load_toy(tmp_path, overrides=["produce.count=40"])


def make_cache(tmp_path, **options):
    warnings: list[str] = []
    store = StageCache(tmp_path / "cache", warn=warnings.append, **options)
    store.warnings = warnings
    return store


def run(pipeline, cache):
    result = Runner(cache=cache, state_dir=cache.location).run(pipeline, write=False)
    return result, [r.status for r in result.stages]


def flip_middle(path, keep_times: bool = False) -> None:
    """Change one byte in the middle of ``path``, keeping its size (and, if asked, its mtime)."""
    data = bytearray(path.read_bytes())
    before = path.stat()
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    if keep_times:
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


@pytest.mark.parametrize("keep_times", [False, True])
@pytest.mark.parametrize("stage", [0, 1, 2])
def test_a_same_size_changed_byte_is_found_and_recomputed(tmp_path, toy_registry, stage,
                                                          keep_times):
    cache = make_cache(tmp_path)
    first, _ = run(load(tmp_path), cache)
    key = first.stages[stage].key
    entry = cache.store_dir / key / "output.pkl"
    size = entry.stat().st_size
    flip_middle(entry, keep_times)
    assert entry.stat().st_size == size
    second, statuses = run(load(tmp_path), cache)
    assert second.artifacts == first.artifacts  # never the changed bytes' numbers
    assert statuses[stage] == "ran"
    assert len(cache.warnings) == 1, cache.warnings
    assert f"stages[{stage}]" in cache.warnings[0]
    assert "its content does not match its checksum" in cache.warnings[0]
    assert cache.verify(key) is None  # rewritten whole
    _, statuses = run(load(tmp_path), cache)
    assert statuses == ["cached"] * 3 and len(cache.warnings) == 1


def test_a_stamp_taken_in_the_same_tick_as_the_write_does_not_vouch(tmp_path):
    entry = tmp_path / "output.pkl"
    entry.write_bytes(b"x" * 1000)
    record_path = tmp_path / "record.json"
    record = dict(cache_check.checksum_fields(entry), checksum="sha256:" + "0" * 64)
    ctime = record["stamp"][2]
    # Stamped long after the last change: the stamp vouches, the (wrong) checksum is not read.
    assert cache_check.check_content(entry, dict(record, stamped=ctime + 10**9), record_path) \
        is None
    # Stamped within the timestamp tick of the change: the bytes are hashed, and do not match.
    racy = dict(record, stamped=ctime + 1000)
    assert cache_check.check_content(entry, racy, record_path) == \
        "its content does not match its checksum"
    # NNPIPE_CACHE_VERIFY=always hashes whatever the stamp says.
    assert cache_check.check_content(entry, dict(record, stamped=ctime + 10**9), record_path,
                                     always=True) == "its content does not match its checksum"


def test_a_successful_hash_refreshes_the_stamp(tmp_path):
    entry = tmp_path / "output.pkl"
    entry.write_bytes(b"y" * 1000)
    record_path = tmp_path / "record.json"
    record = dict(cache_check.checksum_fields(entry))
    os.utime(entry, ns=(0, 0))  # a touched file: the same bytes
    assert cache_check.check_content(entry, record, record_path) is None
    refreshed = json.loads(record_path.read_text())
    assert refreshed["stamp"] == cache_check._stamp(entry.stat())
    assert refreshed["checksum"] == record["checksum"]


def test_verify_always_hashes_every_load(tmp_path, toy_registry, monkeypatch):
    cache = make_cache(tmp_path)
    first, _ = run(load(tmp_path), cache)
    calls = []
    real = cache_check._hash_open_file
    monkeypatch.setattr(cache_check, "_hash_open_file", lambda p: calls.append(p) or real(p))
    for stage in first.stages:  # make every stamp vouch, as if written long ago
        path = cache.location / "records" / f"{stage.key}.json"
        record = json.loads(path.read_text())
        record["stamped"] = record["stamp"][2] + 10**10
        path.write_text(json.dumps(record))
    run(load(tmp_path), cache)
    assert calls == []
    monkeypatch.setenv("NNPIPE_CACHE_VERIFY", "always")
    _, statuses = run(load(tmp_path), make_cache(tmp_path))
    assert statuses == ["cached"] * 3 and len(calls) == 3


def test_an_entry_with_other_outputs_than_the_stage_declares(tmp_path, toy_registry):
    cache = make_cache(tmp_path)
    first, _ = run(load(tmp_path), cache)
    key = first.stages[2].key
    record = cache.stage_record(key)  # the typed record the runner stores
    shutil.rmtree(cache.store_dir / key)
    cache.store(key, {"sum": 5}, record)  # written whole, with its own checksum
    second, statuses = run(load(tmp_path), cache)
    assert statuses == ["cached", "cached", "ran"] and second.artifacts == first.artifacts
    assert cache.warnings == [
        "cache entry of stages[2] (total) is damaged (it holds ['sum'], the stage declares "
        "['total']); recomputing it"]


def test_an_entry_whose_output_type_is_not_the_one_written(tmp_path, toy_registry):
    cache = make_cache(tmp_path)
    first, _ = run(load(tmp_path), cache)
    key = first.stages[2].key
    path = cache.location / "records" / f"{key}.json"
    record = json.loads(path.read_text())
    assert record["outputs"] == {"total": "builtins.int"}
    record["outputs"]["total"] = "builtins.str"
    path.write_text(json.dumps(record))
    second, statuses = run(load(tmp_path), cache)
    assert statuses == ["cached", "cached", "ran"] and second.artifacts == first.artifacts
    assert "its 'total' is a builtins.int, a builtins.str was written" in cache.warnings[0]


def test_a_pickle_that_is_not_a_dict_is_damaged(tmp_path, toy_registry):
    cache = make_cache(tmp_path)
    first, _ = run(load(tmp_path), cache)
    key = first.stages[0].key
    entry = cache.store_dir / key / "output.pkl"
    entry.write_bytes(pickle.dumps([1, 2, 3]))
    path = cache.location / "records" / f"{key}.json"
    record = json.loads(path.read_text())
    record.update(cache_check.checksum_fields(entry))  # a record that vouches for the list
    path.write_text(json.dumps(record))
    _, statuses = run(load(tmp_path), cache)
    assert statuses[0] == "ran" and "it holds a list, not a stage's outputs" in cache.warnings[0]


# --- JSON of the wrong shape -----------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)
RECORD_FIELDS = ["key", "size", "checksum", "stamp", "stamped", "outputs", "parts", "label",
                 "input_paths"]


@pytest.fixture
def filled(tmp_path_factory, toy_registry):
    """A cache holding the toy pipeline's three entries (each example restores what it broke)."""
    tmp_path = tmp_path_factory.mktemp("filled")
    cache = make_cache(tmp_path)
    pipeline = load(tmp_path)
    result, _ = run(pipeline, cache)
    return tmp_path, cache, pipeline, result


def shape_settings(function):
    return settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])(function)


@shape_settings
@given(value=JSON)
def test_a_record_of_any_shape_is_one_warning_and_a_recompute(filled, value):
    tmp_path, cache, pipeline, first = filled
    key = first.stages[1].key
    path = cache.location / "records" / f"{key}.json"
    saved = path.read_text()
    path.write_text(json.dumps(value))
    cache.warnings.clear()
    try:
        result, statuses = run(pipeline, cache)
        assert result.artifacts == first.artifacts
        assert statuses == ["cached", "ran", "cached"]
        assert len(cache.warnings) == 1 and "\n" not in cache.warnings[0]
        assert "stages[1] (double) is damaged (its record" in cache.warnings[0]
    finally:
        path.write_text(saved)  # the entry was rewritten with the same bytes


@shape_settings
@given(field=st.sampled_from(RECORD_FIELDS), value=JSON)
@example(field="outputs", value={"\n": None})  # a key that is a newline: still one line
def test_a_record_with_one_field_of_the_wrong_shape(filled, field, value):
    tmp_path, cache, pipeline, first = filled
    key = first.stages[0].key
    path = cache.location / "records" / f"{key}.json"
    saved = path.read_text()
    record = json.loads(saved)
    record[field] = value
    path.write_text(json.dumps(record))
    cache.warnings.clear()
    try:
        result, statuses = run(pipeline, cache)
        assert result.artifacts == first.artifacts
        assert len(cache.warnings) <= 1 and all("\n" not in w for w in cache.warnings)
        lines = [stage.line() for stage in plan(pipeline, cache)]
        assert len(lines) == 3
    finally:
        path.write_text(saved)


@shape_settings
@given(value=JSON)
def test_a_pointer_of_any_shape_is_ignored_with_a_warning(filled, value):
    tmp_path, cache, pipeline, first = filled
    pointer = next((cache.location / "last").iterdir())
    saved = pointer.read_text()
    pointer.write_text(json.dumps(value))
    cache.warnings.clear()
    try:
        name, stage_id = "toy", json.loads(saved)["stage_id"]
        found = cache.last_key(name, stage_id)
        assert found is None or (isinstance(found, str) and len(found) == 64)
        assert len(cache.warnings) <= 1
        assert (found is None) == (len(cache.warnings) == 1)
    finally:
        pointer.write_text(saved)


@pytest.mark.parametrize("text", ["[1, 2]", "7", '"x"', "null", "{", '{"a": 1, "a": 2}',
                                  '{"/x": [1, 2]}', '{"/x": [1, 2, "nothex"]}',
                                  '{"/x": [true, 2, "' + "0" * 64 + '"]}'])
def test_a_damaged_file_hash_index_costs_a_rehash_and_a_warning(tmp_path, text):
    memo = tmp_path / "file-hashes.json"
    memo.write_text(text)
    warnings: list[str] = []
    hasher = FileHasher(memo, warn=warnings.append)
    data = tmp_path / "data.bin"
    data.write_bytes(b"abc")
    assert hasher.hash(data) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert len(warnings) == 1 and "\n" not in warnings[0] and str(memo) in warnings[0]
    hasher.flush()
    assert FileHasher(memo, warn=warnings.append).memo[str(data.resolve())][2].startswith("ba78")
    assert len(warnings) == 1


def test_cache_files_that_are_fifos_are_not_waited_on(tmp_path, toy_registry):
    cache = make_cache(tmp_path)
    first, _ = run(load(tmp_path), cache)
    key = first.stages[1].key
    record = cache.location / "records" / f"{key}.json"
    record.unlink()
    os.mkfifo(record)
    pointer = next((cache.location / "last").iterdir())
    pointer.unlink()
    os.mkfifo(pointer)
    os.mkfifo(cache.location / "file-hashes.json.fifo")
    (cache.location / "file-hashes.json").unlink(missing_ok=True)
    (cache.location / "file-hashes.json").symlink_to(cache.location / "file-hashes.json.fifo")
    result, statuses = run(load(tmp_path), cache)
    assert result.artifacts == first.artifacts and statuses[1] == "ran"
    assert any("its record cannot be read" in w and "FIFO" in w for w in cache.warnings)


def test_plan_says_a_damaged_entry_will_run(tmp_path, toy_registry):
    cache = make_cache(tmp_path)
    first, _ = run(load(tmp_path), cache)
    flip_middle(cache.store_dir / first.stages[1].key / "output.pkl")
    lines = [stage.line() for stage in plan(load(tmp_path), cache)]
    assert lines[0].endswith("cached")
    assert lines[1] == ("stages[1] double: will run: cache entry not usable (its content does "
                        "not match its checksum)")
    assert lines[2] == "stages[2] total: will run (after stages[1])"


@shape_settings
@given(value=JSON)
def test_a_file_hash_index_of_any_shape_is_never_a_traceback(tmp_path, value):
    memo = tmp_path / "file-hashes.json"
    memo.write_text(json.dumps(value))
    warnings: list[str] = []
    data = tmp_path / "data.bin"
    data.write_bytes(b"abc")
    hasher = FileHasher(memo, warn=warnings.append)
    assert hasher.hash(data).startswith("ba7816bf")
    assert len(warnings) <= 1 and all("\n" not in w for w in warnings)
    # No generated value holds a 64-hex sha256, so only an empty object is a valid index.
    assert bool(warnings) == (value != {})


def test_an_entry_another_process_just_replaced_is_a_silent_miss(tmp_path, toy_registry,
                                                                 monkeypatch):
    # Two processes computed the same entry: the other's file (a new inode, other bytes) is in
    # place, its record not yet. Not damage: a miss, nothing removed, no warning.
    cache = make_cache(tmp_path)
    first, _ = run(load(tmp_path), cache)
    key = first.stages[0].key
    entry = cache.store_dir / key / "output.pkl"
    replacement = entry.with_name("other.pkl")
    replacement.write_bytes(pickle.dumps({"numbers": list(range(40))}, protocol=2))
    os.replace(replacement, entry)
    assert cache.verify(key) == cache_check.REPLACED
    assert cache.lookup(key, "stages[0] (produce)", ("numbers",)) is None
    assert cache.warnings == [] and entry.exists()
    # Once it is older than a minute, other bytes under another inode are damage again.
    monkeypatch.setattr(cache_check, "_FRESH_NS", 0)
    problem = cache.verify(key)
    assert problem not in (None, cache_check.REPLACED)
    assert "size" in problem or "checksum" in problem


def test_an_entry_another_process_rewrote_with_the_same_bytes_is_a_hit(tmp_path, toy_registry):
    # Two processes computed the same entry and the last record written stamps the first
    # file's inode: the file in place is a new inode with the very bytes the record vouches
    # for. That is the stored entry, loaded (and its stamp refreshed), not a miss.
    cache = make_cache(tmp_path)
    first, _ = run(load(tmp_path), cache)
    key = first.stages[0].key
    entry = cache.store_dir / key / "output.pkl"
    replacement = entry.with_name("other.pkl")
    replacement.write_bytes(entry.read_bytes())
    os.replace(replacement, entry)  # same bytes, another inode, ctime now
    assert cache.verify(key) is None
    assert cache.lookup(key, "stages[0] (produce)", ("numbers",)) is not None
    assert cache.warnings == []
    second, statuses = run(load(tmp_path), cache)
    assert statuses[0] == "cached" and second.artifacts == first.artifacts


@pytest.mark.parametrize("value, always", [("", False), ("always", True), (" Always ", True)])
def test_nnpipe_cache_verify_values(monkeypatch, value, always):
    from pipeline.io import settings as env_settings

    monkeypatch.setenv("NNPIPE_CACHE_VERIFY", value)
    assert env_settings.cache_verify_always() is always


@pytest.mark.parametrize("value", ["maybe", "1", "true", "never"])
def test_an_unknown_nnpipe_cache_verify_is_exit_2_naming_it(tmp_path, monkeypatch, value):
    # a misspelt setting used to mean the default without a word
    from typer.testing import CliRunner

    from pipeline.cli import app

    monkeypatch.setenv("NNPIPE_CACHE_VERIFY", value)
    good = Path(__file__).resolve().parents[1] / "data" / "good" / "pipeline.yaml"
    result = CliRunner().invoke(app, ["run", str(good), "--out", str(tmp_path / "r"),
                                      "--cache-dir", str(tmp_path / "c")])
    assert result.exit_code == 2, result.output
    assert result.output.strip() == (
        f"error: NNPIPE_CACHE_VERIFY={value}: unknown value; set it to 'always' (hash every "
        f"cache entry on every load) or leave it unset")
