"""The key chain: one function for runner, plan and sweep; typed records; plan's explanations."""

from __future__ import annotations

import json
import textwrap

import pytest
from typer.testing import CliRunner

from pipeline.engine.cache import StageCache
from pipeline.cli import app
from pipeline.engine.config import load_pipeline
from pipeline.engine.chain import StageKey, key_chain
from pipeline.engine.keys import FileHasher, digest
from pipeline.engine.plan import plan
from pipeline.engine.runner import Runner
from pipeline.sweep.shared import stage_keys

TOY = """\
    name: toy
    stages:
      - {kind: produce, count: 4}
      - {kind: affine, scale: 2, shift: 0}
      - {kind: total}
    """


def load(tmp_path, overrides=()):
    path = tmp_path / "p.yaml"
    path.write_text(textwrap.dedent(TOY))
    return load_pipeline(path, list(overrides))


@pytest.fixture
def cache(tmp_path):
    return StageCache(tmp_path / "cache", warn=lambda message: None)


def run(pipeline, cache):
    return Runner(cache=cache, state_dir=cache.location).run(pipeline, write=False)


def test_each_key_is_the_digest_of_its_parts_and_chains_to_the_one_before(tmp_path, toy_registry):
    chain = key_chain(load(tmp_path))
    assert [(link.index, link.id, link.kind) for link in chain] == [
        (0, "produce", "produce"), (1, "affine", "affine"), (2, "total", "total")]
    assert all(link.key == digest(link.parts) for link in chain)
    assert [link.parts["previous"] for link in chain] == [None, chain[0].key, chain[1].key]
    changed = key_chain(load(tmp_path, ["affine.shift=1"]))
    assert changed[0].key == chain[0].key
    assert changed[1].key != chain[1].key and changed[2].key != chain[2].key


def test_runner_plan_and_sweep_use_the_same_keys(tmp_path, toy_registry, cache):
    pipeline = load(tmp_path)
    expected = [link.key for link in key_chain(pipeline)]
    assert [report.key for report in run(pipeline, cache).stages] == expected
    assert [stage.key for stage in plan(pipeline, cache)] == expected
    assert stage_keys(pipeline, None, FileHasher()) == expected


def test_a_record_round_trips_and_is_what_the_cache_stores(tmp_path, toy_registry, cache):
    pipeline = load(tmp_path)
    run(pipeline, cache)
    for link in key_chain(pipeline):
        assert StageKey.from_json(json.loads(json.dumps(link.to_json()))) == link
        assert cache.stage_record(link.key) == link


def test_a_record_of_the_previous_version_is_read(tmp_path, toy_registry):
    link = key_chain(load(tmp_path))[0]
    old = {"label": "stages[0] (produce)", "pipeline": "toy", "stage_id": "produce", "index": 0,
           "kind": "produce", "parts": dict(link.parts), "input_paths": [], "key": link.key,
           "size": 12, "created": "2026-01-01T00:00:00"}
    assert StageKey.from_json(old) == link


@pytest.mark.parametrize("garbage", [None, [], "text", 3, {}, {"parts": []},
                                     {"index": "x", "stage_id": "a", "kind": "b", "key": "c",
                                      "parts": {}},
                                     {"index": 0, "stage_id": "a", "kind": "b", "key": "c",
                                      "parts": {"spec": 5}},
                                     {"index": 0, "stage_id": "a", "kind": "b", "key": "c",
                                      "parts": {"code": [1]}},
                                     {"index": 0, "stage_id": "a", "kind": "b", "key": "c",
                                      "parts": {"code": {"modules": "x"}}},
                                     {"index": 0, "stage_id": "a", "kind": "b", "key": "c",
                                      "parts": {"inputs": "abc"}}])
def test_an_unreadable_record_is_no_record(garbage):
    assert StageKey.from_json(garbage) is None


def test_old_and_unreadable_records_never_crash_plan_or_cache_info(tmp_path, toy_registry, cache):
    pipeline = load(tmp_path)
    run(pipeline, cache)
    records = sorted((cache.location / "records").glob("*.json"))
    records[0].write_text("[1, 2]")  # valid JSON of the wrong shape
    records[1].write_text("{not json")
    assert {s.status for s in plan(load(tmp_path, ["affine.shift=5"]), cache)} >= {"will run"}
    assert len(cache.entries()) == 3
    assert CliRunner().invoke(app, ["cache", "info", "--cache-dir",
                                    str(cache.location)]).exit_code == 0


def test_plan_says_cached_for_an_entry_that_is_not_the_last_run(tmp_path, toy_registry, cache):
    run(load(tmp_path), cache)
    run(load(tmp_path, ["affine.scale=5", "affine.shift=7"]), cache)  # the last run
    assert [s.status for s in plan(load(tmp_path), cache)] == ["cached"] * 3


def test_a_miss_is_explained_against_the_nearest_earlier_key(tmp_path, toy_registry, cache):
    run(load(tmp_path), cache)  # scale 2, shift 0
    run(load(tmp_path, ["affine.scale=5", "affine.shift=7"]), cache)  # the last run
    lines = [s.line() for s in plan(load(tmp_path, ["affine.shift=1"]), cache)]
    # the first run differs in one field, the last run in two: the nearer one explains
    assert lines[1] == "stages[1] affine: will run: spec field shift changed from 0 to 1"
    lines = [s.line() for s in plan(load(tmp_path, ["affine.scale=5", "affine.shift=8"]), cache)]
    assert lines[1] == "stages[1] affine: will run: spec field shift changed from 7 to 8"


def test_plan_check_exits_1_when_a_stage_would_run_and_0_when_all_are_cached(tmp_path,
                                                                             toy_registry):
    path = tmp_path / "p.yaml"
    path.write_text(textwrap.dedent(TOY))
    cache = ["--cache-dir", str(tmp_path / "cache")]
    cli = CliRunner()
    result = cli.invoke(app, ["plan", str(path), "--check", *cache])
    assert result.exit_code == 1 and "will run" in result.output
    assert cli.invoke(app, ["plan", str(path), *cache]).exit_code == 0  # no gate without --check
    assert cli.invoke(app, ["run", str(path), "--out", str(tmp_path / "r"), *cache]).exit_code == 0
    result = cli.invoke(app, ["plan", str(path), "--check", *cache])
    assert result.exit_code == 0, result.output
    assert result.output.count(": cached") == 3
    changed = cli.invoke(app, ["plan", str(path), "--check", "--set", "total.kind=total",
                               "--set", "affine.shift=3", *cache])
    assert changed.exit_code == 1 and "spec field shift changed from 0 to 3" in changed.output
    forced = cli.invoke(app, ["plan", str(path), "--check", "--from", "total", *cache])
    assert forced.exit_code == 1


def test_a_cache_of_the_previous_version_still_explains_a_miss(tmp_path, toy_registry, cache):
    run(load(tmp_path), cache)
    for path in (cache.location / "records").glob("*.json"):
        old = json.loads(path.read_text())
        old["input_paths"] = list(old.pop("inputs"))  # as the runner wrote it before StageKey
        path.write_text(json.dumps(old))
    assert [s.status for s in plan(load(tmp_path), cache)] == ["cached"] * 3
    lines = [s.line() for s in plan(load(tmp_path, ["affine.scale=3"]), cache)]
    assert lines[1] == "stages[1] affine: will run: spec field scale changed from 2 to 3"
    assert [r.status for r in run(load(tmp_path), cache).stages] == ["cached"] * 3
