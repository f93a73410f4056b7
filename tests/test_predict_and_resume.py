"""End to end through the command line: ``nnpipe predict`` on a saved run reproduces the
evaluator's accuracy, and a run killed (SIGKILL) after epoch k and run again ends bit-identical to
an uninterrupted one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pipeline.cli import app

MNIST = Path(__file__).resolve().parent.parent / "plugins" / "data" / "mnist-10k"
NNPIPE = [sys.executable, "-c", "from pipeline.cli import app; app()"]


def pipeline_file(tmp_path: Path, epochs: int, hidden: str = "[32]", batch: int = 64,
                  normalize: str = "standardize", augment: str | None = None) -> Path:
    """A small MNIST-sample pipeline; ``augment`` is an augment stage in flow style, or none."""
    path = tmp_path / "tiny.yaml"
    augment = f"\n{' ' * 10}- {augment}" if augment else ""  # indented as the stages below
    path.write_text(textwrap.dedent(f"""\
        name: tiny
        seed: 3
        stages:
          - kind: idx_reader
            dataset: mnist-10k
          - kind: split
            validation_fraction: 0.1{augment}
          - kind: normalize
            method: {normalize}
          - kind: one_hot
            classes: 10
          - kind: mlp_train
            hidden: {hidden}
            optimizer: {{kind: adam, lr: 0.002}}
            dropout: 0.1
            batch_size: {batch}
            epochs: {epochs}
          - kind: evaluate
            split: test
        """))
    return path


# --- predict -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def saved_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("predict")
    out = tmp / "run"
    result = CliRunner().invoke(app, ["run", str(pipeline_file(tmp, epochs=1)), "--out", str(out),
                                      "--quiet", "--cache-dir", str(tmp / "cache")])
    assert result.exit_code == 0, result.output
    return out


def test_predict_reproduces_the_evaluators_accuracy(saved_run):
    result = CliRunner().invoke(app, [
        "predict", str(saved_run), str(MNIST / "t10k-images-idx3-ubyte.gz"),
        "--labels", str(MNIST / "t10k-labels-idx1-ubyte.gz"), "--top", "2", "--limit", "3"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("t10k-images-idx3-ubyte.gz[0]  ")
    assert len(lines[0].split(": ")) == 3  # two classes with their probabilities
    assert lines[3] == "... 1997 more (--limit -1 shows all)"
    evaluated = json.loads((saved_run / "metrics.json").read_text())["accuracy"]
    assert lines[-1] == f"accuracy {evaluated:.4f}  (2000 samples)"


def test_predict_reads_png_images_like_idx_rows(saved_run, tmp_path):
    from PIL import Image  # comes with matplotlib

    from plugins.idx import read_idx
    from plugins.mlp.predict import predict

    images = read_idx(MNIST / "t10k-images-idx3-ubyte.gz")[:4]  # (4, 28, 28) uint8
    for i, image in enumerate(images):
        Image.fromarray(image).save(tmp_path / f"digit{i}.png")
    Image.fromarray(np.stack([images[0]] * 3, axis=2)).save(tmp_path / "rgb.png")
    from_idx = predict(saved_run, MNIST / "t10k-images-idx3-ubyte.gz")
    from_png = predict(saved_run, tmp_path, top=1)
    assert from_png.names == ["digit0.png", "digit1.png", "digit2.png", "digit3.png", "rgb.png"]
    np.testing.assert_allclose(from_png.probabilities[:4], from_idx.probabilities[:4], rtol=1e-5)
    np.testing.assert_allclose(from_png.probabilities[4], from_idx.probabilities[0], rtol=1e-5)
    single = predict(saved_run, tmp_path / "digit1.png")
    assert single.names == ["digit1.png"] and single.labels[0] == from_idx.labels[1]


@pytest.mark.parametrize("args, message", [
    (["nowhere", "x.png"], "not a run directory"),
    (["RUN", "missing.png"], "no such file"),
    (["RUN", "LABELS"], "1-d IDX array"),
    (["RUN", "small.png"], "the model expects 784 values"),
])
def test_predict_bad_input_is_a_one_line_error(saved_run, tmp_path, args, message):
    from PIL import Image

    Image.fromarray(np.zeros((5, 5), dtype=np.uint8)).save(tmp_path / "small.png")
    substitute = {"RUN": str(saved_run), "LABELS": str(MNIST / "t10k-labels-idx1-ubyte.gz")}
    args = [substitute.get(a, str(tmp_path / a)) for a in args]
    result = CliRunner().invoke(app, ["predict", *args])
    assert result.exit_code == 2
    assert message in result.output and len(result.output.strip().splitlines()) == 1


# --- kill and resume -----------------------------------------------------------------------------

def checkpoint_epoch(cache: Path) -> int:
    for path in cache.glob("checkpoints/*/checkpoint.npz"):
        try:
            with np.load(path, allow_pickle=False) as npz:
                return int(json.loads(str(npz["meta"]))["epoch"])
        except (OSError, ValueError, KeyError):
            pass  # being replaced right now
    return 0


#: Fresh distortions are drawn anew each epoch from (seed, epoch): the resumed run must draw them
#: exactly as the uninterrupted one did.
FRESH = ("{kind: augment, fresh: true, max_shift: 2, rotate: 10, scale: 0.1, "
         "elastic: {alpha: 34, sigma: 4}}")


@pytest.mark.parametrize("augment", [None, FRESH], ids=["plain", "fresh-augment"])
def test_a_run_killed_after_epoch_k_resumes_to_identical_weights(tmp_path, augment):
    epochs, k = 4, 2
    pipeline = pipeline_file(tmp_path, epochs=epochs, hidden="[128]", batch=32, augment=augment)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}

    reference = tmp_path / "reference"
    subprocess.run([*NNPIPE, "run", str(pipeline), "--out", str(reference), "--quiet",
                    "--cache-dir", str(tmp_path / "cache-ref")], env=env, check=True)

    cache = tmp_path / "cache"
    args = [*NNPIPE, "run", str(pipeline), "--out", str(tmp_path / "resumed"),
            "--cache-dir", str(cache)]
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while checkpoint_epoch(cache) < k and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    killed_at = checkpoint_epoch(cache)
    assert k <= killed_at < epochs, "the run was not killed mid-training"
    assert not (tmp_path / "resumed").exists()

    rerun = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
    assert f"resuming from the checkpoint of epoch {killed_at}" in rerun.stdout + rerun.stderr
    with np.load(reference / "model.npz") as a, np.load(tmp_path / "resumed" / "model.npz") as b:
        assert a.files == b.files
        for name in a.files:
            assert np.array_equal(a[name], b[name]), name
    assert checkpoint_epoch(cache) == 0  # the checkpoint is removed once the stage completes
    history = json.loads((tmp_path / "resumed" / "history.json").read_text())
    reference_history = json.loads((reference / "history.json").read_text())
    assert [e["val_loss"] for e in history] == [e["val_loss"] for e in reference_history]


def test_a_nan_loss_stops_the_run_and_writes_no_run_directory(tmp_path):
    path = tmp_path / "diverges.yaml"
    path.write_text(textwrap.dedent("""\
        name: diverges
        stages:
          - kind: idx_reader
            dataset: mnist-10k
          - kind: one_hot
            classes: 10
          - kind: mlp_train
            hidden: [16]
            loss: mse
            optimizer: {kind: sgd, lr: 1.0e+6}
            epochs: 2
          - kind: evaluate
            split: test
        """))
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(out), "--quiet",
                                      "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code == 1
    assert "epoch 1, step" in result.output and "smaller learning rate" in result.output
    assert not out.exists()
