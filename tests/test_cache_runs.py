"""The stage cache with the real stages: concurrent runs, memory-mapped artifacts, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pipeline.engine.cache import StageCache
from pipeline.cli import app
from pipeline.engine.config import load_pipeline
from pipeline.engine.runner import Runner

TINY = """\
name: tiny-cached
seed: 3
stages:
  - {kind: idx_reader, dataset: mnist-10k}
  - {kind: split, validation_fraction: 0.1}
  - {kind: normalize, method: standardize}
  - {kind: one_hot, classes: 10}
  - {kind: mlp_train, hidden: [16], epochs: 1, batch_size: 64, optimizer: {kind: sgd, lr: 0.05}}
  - {kind: evaluate, split: test}
"""

cli = CliRunner()


@pytest.fixture
def tiny(tmp_path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


def nnpipe(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipeline.cli", *args]


def test_two_concurrent_runs_share_one_cache_folder(tmp_path, tiny):
    cache = tmp_path / "cache"
    runs = [subprocess.Popen(nnpipe("run", str(tiny), "--out", str(tmp_path / f"run{i}"),
                                    "--cache-dir", str(cache)),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for i in range(2)]
    done = [(run.wait(timeout=300), *run.communicate()) for run in runs]
    for code, out, err in done:
        assert code == 0, err
        assert "warning" not in err
    metrics = [json.loads((tmp_path / f"run{i}" / "metrics.json").read_text()) for i in range(2)]
    assert metrics[0] == metrics[1]
    # The cache they left is whole: a third run loads every stage and gets the same numbers.
    third = subprocess.run(nnpipe("run", str(tiny), "--out", str(tmp_path / "run2"),
                                  "--cache-dir", str(cache)),
                           capture_output=True, text=True, timeout=300)
    assert third.returncode == 0, third.stderr
    assert third.stderr == ""
    assert [line.split()[0] for line in third.stdout.splitlines() if "stages[" in line] == \
        ["cached"] * 6
    assert json.loads((tmp_path / "run2" / "metrics.json").read_text()) == metrics[0]
    # No temporary files of either writer are left in the store.
    assert not [p for p in cache.rglob("*") if p.is_file() and ".tmp" in p.name
                or p.name.startswith("output.pkl.")]


def test_memory_mapped_artifacts_feed_the_stages_after_them(tmp_path, tiny):
    cache = StageCache(tmp_path / "cache", warn=pytest.fail)
    runner = lambda: Runner(cache=cache, state_dir=cache.location)  # noqa: E731
    cold = runner().run(load_pipeline(tiny), write=False)
    # Only the trainer's spec changed: the cached (read-only, memory-mapped) dataset trains it.
    more = runner().run(load_pipeline(tiny, ["mlp_train.epochs=2"]), write=False)
    assert [r.status for r in more.stages] == ["cached"] * 4 + ["ran", "ran"]
    # Only the evaluator's spec changed: the cached model is scored.
    other = runner().run(load_pipeline(tiny, ["evaluate.split=validation"]), write=False)
    assert [r.status for r in other.stages] == ["cached"] * 5 + ["ran"]
    warm = runner().run(load_pipeline(tiny), tmp_path / "run")
    assert [r.status for r in warm.stages] == ["cached"] * 6
    x = warm.artifacts["data"].split("train").x
    assert isinstance(x, np.memmap) and not x.flags.writeable
    assert warm.artifacts["metrics"].accuracy == cold.artifacts["metrics"].accuracy
    assert (tmp_path / "run" / "model.npz").is_file()
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert [s["key"] for s in manifest["stages"]] == [r.key for r in cold.stages]


def test_cache_commands(tmp_path, tiny):
    cache = tmp_path / "cache"
    ran = cli.invoke(app, ["run", str(tiny), "--out", str(tmp_path / "run"), "--cache-dir",
                           str(cache)])
    assert ran.exit_code == 0, ran.output
    assert "   ran  stages[4] mlp_train" in ran.output
    planned = cli.invoke(app, ["plan", str(tiny), "--cache-dir", str(cache),
                               "--set", "mlp_train.epochs=3"])
    assert planned.exit_code == 0, planned.output
    assert planned.output.splitlines()[3:] == [
        "stages[3] one_hot: cached",
        "stages[4] mlp_train: will run: spec field epochs changed from 1 to 3",
        "stages[5] evaluate: will run (after stages[4])",
    ]
    info = cli.invoke(app, ["cache", "info", "--cache-dir", str(cache)])
    assert info.exit_code == 0
    assert "6 entries" in info.output and "tiny-cached" in info.output
    assert len([l for l in info.output.splitlines() if "tiny-cached" in l]) == 6
    forced = cli.invoke(app, ["run", str(tiny), "--out", str(tmp_path / "run"), "--cache-dir",
                              str(cache), "--from", "normalize"])
    assert [l.split()[0] for l in forced.output.splitlines() if "stages[" in l] == \
        ["cached", "cached", "ran", "ran", "ran", "ran"]
    bad = cli.invoke(app, ["run", str(tiny), "--cache-dir", str(cache), "--from", "nothing"])
    assert bad.exit_code == 2
    assert "--from nothing: unknown stage 'nothing'; the stages are 0:idx_reader" in bad.output
    bad = cli.invoke(app, ["cache", "prune", "--max-size", "huge", "--cache-dir", str(cache)])
    assert bad.exit_code == 2 and "--max-size: 'huge' is not a size" in bad.output
    pruned = cli.invoke(app, ["cache", "prune", "--max-size", "1M", "--cache-dir", str(cache)])
    assert pruned.exit_code == 0, pruned.output
    left = StageCache(cache).entries()
    assert 0 < len(left) < 6 and sum(e.size for e in left) <= 1024 ** 2
    cleared = cli.invoke(app, ["cache", "clear", "--cache-dir", str(cache)])
    assert cleared.exit_code == 0 and StageCache(cache).entries() == []
    off = cli.invoke(app, ["run", str(tiny), "--out", str(tmp_path / "run"), "--cache-dir",
                           str(cache), "--no-cache"])
    assert off.exit_code == 0 and StageCache(cache).entries() == []


@pytest.mark.parametrize("keep_mtime", [False, True])
def test_flipped_bytes_in_a_cached_model_are_never_loaded(tmp_path, tiny, keep_mtime):
    """The issue's headline: a same-size entry with bytes changed in its middle was loaded, and
    the run's metrics and saved model disagreed. Now: one warning per entry, a recompute, and the
    rerun equal to the first run."""
    import os

    cache = tmp_path / "cache"
    args = ["run", str(tiny), "--out", str(tmp_path / "run"), "--cache-dir", str(cache)]
    first = cli.invoke(app, args)
    assert first.exit_code == 0, first.output
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    with np.load(tmp_path / "run" / "model.npz") as npz:
        weights = {name: npz[name].copy() for name in npz.files}
    entries = StageCache(cache).entries()
    model_entry = next(e for e in entries if e.kind == "mlp_train")
    for entry in entries:
        path = cache / "joblib" / "stages" / entry.key / "output.pkl"
        before = path.stat()
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF  # the middle of the pickle: array data for the big ones
        path.write_bytes(bytes(data))
        if keep_mtime:
            os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    second = cli.invoke(app, args)
    assert second.exit_code == 0, second.output
    warnings = [l for l in second.stderr.splitlines() if l.startswith("warning:")]
    assert len(warnings) == len(entries), second.stderr
    assert all("does not match its checksum" in w for w in warnings), warnings
    assert any(f"({model_entry.stage_id}) is damaged" in w for w in warnings)
    assert json.loads((tmp_path / "run" / "metrics.json").read_text()) == metrics
    with np.load(tmp_path / "run" / "model.npz") as npz:
        for name, array in weights.items():
            np.testing.assert_array_equal(npz[name], array)
    third = cli.invoke(app, args)
    assert [l.split()[0] for l in third.output.splitlines() if "stages[" in l] == ["cached"] * 6
    assert "warning" not in third.stderr
