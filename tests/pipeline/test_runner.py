"""The runner: wiring checked before running, artifacts passed along, run directory written whole."""

from __future__ import annotations

import json
import textwrap

import pytest

from pipeline.engine.config import load_pipeline
from pipeline.errors import RunError, UserError
from pipeline.engine.runner import Runner
from pipeline.engine.wiring import check_wiring


def pipeline_from(tmp_path, text):
    path = tmp_path / "p.yaml"
    path.write_text(textwrap.dedent(text))
    return load_pipeline(path)


def test_artifacts_flow_between_stages(tmp_path, toy_registry):
    pipeline = pipeline_from(tmp_path, """\
        stages:
          - {kind: produce, count: 4}
          - {kind: double, factor: 3}
          - {kind: total}
        """)
    seen = []
    result = Runner(on_stage=seen.append).run(pipeline, write=False)
    assert result.artifacts["total"] == 3 * (0 + 1 + 2 + 3)
    assert [r.id for r in seen] == ["produce", "double", "total"]
    assert all(r.status == "ran" for r in seen)


def test_wiring_is_checked_before_anything_runs(tmp_path, toy_registry):
    pipeline = pipeline_from(tmp_path, """\
        stages:
          - {kind: total}
          - {kind: produce}
        """)
    with pytest.raises(UserError) as caught:
        check_wiring(pipeline)
    assert "stages[0] (total) needs 'numbers', which no earlier stage produces" in str(caught.value)


@pytest.mark.parametrize("stages, total, seen", [
    ("  - {kind: produce, count: 4}\n  - {kind: maybe_scaled}\n", 6, ["numbers"]),
    ("  - {kind: produce, count: 4}\n  - {kind: factor}\n  - {kind: maybe_scaled}\n", 60,
     ["factor", "numbers"]),
])
def test_optional_inputs_are_passed_when_an_earlier_stage_produced_them(tmp_path, stages, total,
                                                                      seen):
    from pipeline.registry import Registry, set_default_registry
    from support import entry_points

    more = {"produce": "toy_stages:Produce", "maybe_scaled": "toy_stages:MaybeScaled",
            "factor": "toy_stages:Factor"}
    set_default_registry(Registry(entry_points("nnpipe.stages", more)))
    pipeline = pipeline_from(tmp_path, "stages:\n" + stages)
    check_wiring(pipeline)  # an absent optional input is no wiring error
    try:
        assert Runner().run(pipeline, write=False).artifacts["total"] == (total, seen)
    finally:
        set_default_registry(None)


def test_a_stage_returning_other_outputs_is_a_run_error(tmp_path, toy_registry):
    pipeline = pipeline_from(tmp_path, "stages:\n  - {kind: liar}\n")
    with pytest.raises(RunError, match="returned \\['something_else'\\], but declares outputs"):
        Runner().run(pipeline, write=False)


def test_run_directory_holds_resolved_pipeline_and_manifest(tmp_path, toy_registry):
    pipeline = pipeline_from(tmp_path, "name: toy\nstages:\n  - {kind: produce}\n  - {kind: total}\n")
    out = tmp_path / "run"
    Runner().run(pipeline, out=out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert [s["id"] for s in manifest["stages"]] == ["produce", "total"]
    assert "numpy" in manifest["versions"]
    resolved = (out / "pipeline.yaml").read_text()
    assert "count: 3" in resolved  # the default is spelled out
    # Nothing temporary is left beside the run directory.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.yaml", "run"]


def test_every_file_of_the_run_directory_is_on_disk_before_it_takes_its_name(tmp_path, toy_registry,
                                                                           monkeypatch):
    # The files are flushed together (pipeline.files.synced_together), not one by one, but
    # each of them before the staging folder is renamed into place.
    import os

    from pipeline import files
    from pipeline.engine import runner

    events, real_fsync, real_replace = [], os.fsync, os.replace
    monkeypatch.setattr(files.os, "fsync", lambda fd: (events.append(("sync", os.fstat(fd).st_ino)),
                                                       real_fsync(fd))[1])
    monkeypatch.setattr(runner.os, "replace", lambda a, b: (events.append(("rename", str(b))),
                                                            real_replace(a, b))[1])
    pipeline = pipeline_from(tmp_path, "name: toy\nstages:\n  - {kind: produce}\n  - {kind: total}\n")
    out = tmp_path / "run"
    Runner().run(pipeline, out=out)
    renamed = events.index(("rename", str(out)))
    synced = {ino for what, ino in events[:renamed] if what == "sync"}
    written = {p.stat().st_ino for p in out.rglob("*") if p.is_file()}
    assert {"manifest.json", "pipeline.yaml"} <= {p.name for p in out.iterdir()}
    assert written <= synced


def test_a_failed_run_leaves_no_run_directory(tmp_path, toy_registry):
    pipeline = pipeline_from(tmp_path, "stages:\n  - {kind: liar}\n")
    with pytest.raises(RunError):
        Runner().run(pipeline, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_the_manifest_records_each_input_file_with_its_sha256(tmp_path, toy_registry, monkeypatch):
    import hashlib

    from toy_stages import ReadsFile

    data = tmp_path / "data.txt"
    data.write_text("hello")
    monkeypatch.setattr(ReadsFile, "input_files", lambda self, context: [self.path],
                        raising=False)
    pipeline = pipeline_from(tmp_path, f"stages:\n  - {{kind: reads_file, path: {data}}}\n")
    Runner().run(pipeline, out=tmp_path / "run")
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["stages"][0]["inputs"] == {
        str(data): hashlib.sha256(b"hello").hexdigest()}
