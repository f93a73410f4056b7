"""The stage cache: reruns load what did not change, rerun what did, and never load a bad entry."""

from __future__ import annotations

import sys
import textwrap

import pytest

from pipeline.engine.cache import StageCache, parse_size
from pipeline.engine.config import load_pipeline
from pipeline.errors import UserError
from pipeline.engine.plan import plan, resolve_stage
from pipeline.registry import Registry, set_default_registry
from pipeline.engine.runner import Runner
from support import entry_points

TOY = """\
    name: toy
    stages:
      - {kind: produce, count: 4}
      - {kind: double, factor: 3}
      - {kind: total}
    """


def load(tmp_path, text=TOY, overrides=()):
    path = tmp_path / "p.yaml"
    path.write_text(textwrap.dedent(text))
    return load_pipeline(path, list(overrides))


@pytest.fixture
def cache(tmp_path):
    warnings: list[str] = []
    store = StageCache(tmp_path / "cache", warn=warnings.append)
    store.warnings = warnings
    return store


def run(pipeline, cache, **options):
    result = Runner(cache=cache, state_dir=cache.location if cache else None,
                    **options).run(pipeline, write=False)
    return result, [r.status for r in result.stages]


def test_an_unchanged_rerun_loads_every_stage(tmp_path, toy_registry, cache):
    first, statuses = run(load(tmp_path), cache)
    assert statuses == ["ran", "ran", "ran"]
    second, statuses = run(load(tmp_path), cache)
    assert statuses == ["cached", "cached", "cached"]
    assert second.artifacts == first.artifacts
    assert [r.key for r in second.stages] == [r.key for r in first.stages]


def test_equal_specs_written_differently_share_entries(tmp_path, toy_registry, cache):
    run(load(tmp_path, "name: toy\nstages:\n  - {kind: produce}\n  - {kind: double}\n"), cache)
    respelled = """\
        name: toy
        stages:
          - {count: 3, kind: produce, id: source}
          - {factor: 2, kind: double}
        """
    _, statuses = run(load(tmp_path, respelled), cache)
    assert statuses == ["cached", "cached"]


def test_a_changed_field_reruns_that_stage_and_what_follows(tmp_path, toy_registry, cache):
    run(load(tmp_path), cache)
    result, statuses = run(load(tmp_path, overrides=["double.factor=5"]), cache)
    assert statuses == ["cached", "ran", "ran"]
    assert result.artifacts["total"] == 5 * (0 + 1 + 2 + 3)


def test_from_forces_a_stage_and_the_following_ones(tmp_path, toy_registry, cache):
    pipeline = load(tmp_path)
    run(pipeline, cache)
    _, statuses = run(pipeline, cache, force_from=resolve_stage(pipeline, "double"))
    assert statuses == ["cached", "ran", "ran"]
    assert resolve_stage(pipeline, "2") == resolve_stage(pipeline, "stages[2]") == 2
    with pytest.raises(UserError,
                       match="--from nope: unknown stage 'nope'; the stages are 0:produce"):
        resolve_stage(pipeline, "nope")


def test_without_a_cache_nothing_is_stored(tmp_path, toy_registry):
    _, statuses = run(load(tmp_path), None)
    assert statuses == ["ran", "ran", "ran"]
    assert not (tmp_path / "cache").exists()


def test_a_truncated_entry_is_recomputed_with_a_warning(tmp_path, toy_registry, cache):
    first, _ = run(load(tmp_path), cache)
    key = first.stages[1].key
    entry = cache.store_dir / key / "output.pkl"
    whole = entry.stat().st_size
    entry.write_bytes(entry.read_bytes()[:-7])
    second, statuses = run(load(tmp_path), cache)
    # Recomputed under the same key, so the stage after it still finds its own entry.
    assert statuses == ["cached", "ran", "cached"]
    assert second.artifacts == first.artifacts
    assert cache.warnings == [
        f"cache entry of stages[1] (double) is damaged (its size is {whole - 7} bytes, "
        f"{whole} were written); recomputing it"
    ]
    assert cache.lookup(key) is not None  # rewritten whole


def test_a_garbled_entry_without_a_record_is_never_loaded(tmp_path, toy_registry, cache):
    first, _ = run(load(tmp_path), cache)
    key = first.stages[0].key
    (cache.location / "records" / f"{key}.json").unlink()  # no checksum to compare with
    entry = cache.store_dir / key / "output.pkl"
    entry.write_bytes(entry.read_bytes()[: len(entry.read_bytes()) // 2])
    # Without a record the entry may be one another process is still writing: a silent miss.
    assert cache.lookup(key, "stages[0] (produce)") is None
    second, statuses = run(load(tmp_path), cache)
    assert statuses == ["ran", "cached", "cached"]
    assert second.artifacts == first.artifacts
    assert cache.verify(key) is None  # rewritten whole, with a record


def test_plan_names_the_changed_field_and_what_follows(tmp_path, toy_registry, cache):
    run(load(tmp_path), cache)
    lines = [s.line() for s in plan(load(tmp_path, overrides=["double.factor=4"]), cache)]
    assert lines == [
        "stages[0] produce: cached",
        "stages[1] double: will run: spec field factor changed from 3 to 4",
        "stages[2] total: will run (after stages[1])",
    ]
    assert [s.status for s in plan(load(tmp_path), cache)] == ["cached"] * 3


def test_plan_of_a_pipeline_never_run(tmp_path, toy_registry, cache):
    first = plan(load(tmp_path), cache)[0]
    assert first.status == "will run" and "no earlier run" in first.reason


def test_plan_names_a_changed_input_file(tmp_path, toy_registry, cache, monkeypatch):
    from toy_stages import ReadsFile

    monkeypatch.setattr(ReadsFile, "input_files", lambda self, context: [self.path])
    data = tmp_path / "data.txt"
    data.write_text("one")
    text = "name: files\nstages:\n  - {kind: reads_file, path: data.txt}\n"
    run(load(tmp_path, text), cache)
    data.touch()
    assert plan(load(tmp_path, text), cache)[0].status == "cached"
    data.write_text("two")
    reason = plan(load(tmp_path, text), cache)[0].reason
    assert reason == f"input file {data} changed"


BUMP = '''
from typing import Literal
from pipeline.spec import StageSpec

class Bump(StageSpec):
    kind: Literal["bump"] = "bump"
    inputs = ("numbers",)
    outputs = ("numbers",)

    def run(self, inputs, context):
        return {"numbers": [n + BY for n in inputs["numbers"]]}

BY = 1
'''


def test_editing_a_stage_source_invalidates_it_and_what_follows(tmp_path, cache, monkeypatch):
    module = tmp_path / "plugin_src" / "bump_stage_for_test.py"
    module.parent.mkdir()
    module.write_text(BUMP)
    monkeypatch.syspath_prepend(str(module.parent))
    registry = Registry(entry_points("nnpipe.stages", {
        "produce": "toy_stages:Produce", "bump": "bump_stage_for_test:Bump",
        "total": "toy_stages:Total"}))
    set_default_registry(registry)
    try:
        text = "name: edit\nstages:\n  - {kind: produce}\n  - {kind: bump}\n  - {kind: total}\n"
        _, statuses = run(load(tmp_path, text), cache)
        assert statuses == ["ran", "ran", "ran"]
        _, statuses = run(load(tmp_path, text), cache)
        assert statuses == ["cached", "cached", "cached"]
        module.write_text(BUMP.replace("BY = 1", "BY = 10  # edited"))
        lines = [s.line() for s in plan(load(tmp_path, text), cache)]
        assert lines[1] == "stages[1] bump: will run: code of bump_stage_for_test changed"
        _, statuses = run(load(tmp_path, text), cache)
        assert statuses == ["cached", "ran", "ran"]
    finally:
        set_default_registry(None)
        sys.modules.pop("bump_stage_for_test", None)


def test_prune_removes_the_least_recently_used_entries(tmp_path, toy_registry, cache):
    run(load(tmp_path, overrides=["produce.count=2000"]), cache)
    sizes = {e.key: e.size for e in cache.entries()}
    assert len(sizes) == 3
    removed = cache.prune(max(sizes.values()))
    assert removed >= 1
    left = cache.entries()
    assert sum(e.size for e in left) <= max(sizes.values())
    for key in set(sizes) - {e.key for e in left}:
        assert cache.record(key) is None
    assert cache.clear() == len(left)
    assert cache.entries() == []


def test_sizes_parse():
    assert parse_size("500M") == 500 * 1024 ** 2
    assert parse_size("1.5GB") == int(1.5 * 1024 ** 3)
    assert parse_size("4096") == 4096
    assert parse_size("64k") == 64 * 1024
    with pytest.raises(UserError, match="--max-size: 'lots' is not a size"):
        parse_size("lots")


def test_the_command_line_warns_in_one_line_and_recomputes(tmp_path, toy_registry):
    from typer.testing import CliRunner

    from pipeline.cli import app

    path = tmp_path / "p.yaml"
    path.write_text(textwrap.dedent(TOY))
    args = ["run", str(path), "--out", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "c")]
    assert CliRunner().invoke(app, args).exit_code == 0
    cache = StageCache(tmp_path / "c")
    for entry in cache.entries():
        output = cache.store_dir / entry.key / "output.pkl"
        output.write_bytes(output.read_bytes()[:20])
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 3 and "stages[0] (produce) is damaged" in warnings[0]
    assert "Traceback" not in result.output
    assert [line.split()[0] for line in result.output.splitlines() if "stages[" in line
            and not line.startswith("warning")] == ["ran", "ran", "ran"]
