"""The acceptance check of ``nnpipe export``: for the default pipeline (examples/mnist.yaml, as
``make demo`` runs it, with one epoch here), onnxruntime's probabilities for the 2,000 test digits
of the bundled sample equal ``nnpipe predict``'s within 1e-5, and the file passes onnx.checker."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.registry import default_registry
from plugins.idx import read_idx

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "plugins" / "data" / "mnist-10k" / "t10k-images-idx3-ubyte.gz"


def readme_onnx_block() -> str:
    """The ```python block of the README's "Exporting to ONNX" section."""
    section = (ROOT / "README.md").read_text().split("## Exporting to ONNX", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    return block


def test_onnxruntime_equals_nnpipe_predict_on_the_default_pipeline(tmp_path, monkeypatch):
    run = tmp_path / "runs" / "mnist-mlp-demo"  # the README's run directory
    result = CliRunner().invoke(app, ["run", str(ROOT / "examples" / "mnist.yaml"), "--out", str(run),
                                      "--set", "mlp_train.epochs=1", "--set", "augment.copies=1",
                                      "--quiet", "--no-cache"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(app, ["export", str(run), "--format", "onnx"])
    assert result.exit_code == 0, result.output
    exported = run / "model.onnx"
    onnx.checker.check_model(onnx.load(str(exported)), full_check=True)

    expected = default_registry().load("predictors", "mlp")(run, IMAGES).probabilities  # (2000, 10)
    images = read_idx(IMAGES).astype(np.float32)  # (2000, 28, 28) raw pixels
    session = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    got = session.run(["probabilities"], {"images": images})[0]
    assert got.shape == (2000, 10)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    # the README's five lines, run as written beside a run directory of that name
    (tmp_path / "plugins").symlink_to(ROOT / "plugins")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(readme_onnx_block(), "README.md", "exec"), namespace)
    np.testing.assert_array_equal(namespace["probabilities"], got)
    accuracy = float(np.mean(got.argmax(axis=1) == read_idx(IMAGES.with_name("t10k-labels-idx1-ubyte.gz"))))
    assert accuracy == json.loads((run / "metrics.json").read_text())["accuracy"]


def test_onnxruntime_equals_nnpipe_predict_on_a_batch_norm_and_layer_norm_stack(tmp_path):
    """examples/layers.yaml (dense, batch norm, relu, dropout, dense, layer norm, gelu): batch
    norm exported with its running statistics, layer norm as LayerNormalization, dropout gone."""
    run = tmp_path / "layers-run"
    result = CliRunner().invoke(app, ["run", str(ROOT / "examples" / "layers.yaml"), "--out",
                                      str(run), "--set", "mlp_train.epochs=1", "--quiet",
                                      "--no-cache"])
    assert result.exit_code == 0, result.output
    kinds = [layer["kind"] for layer in json.loads((run / "model.json").read_text())["layers"]]
    assert {"batch_norm", "layer_norm", "dropout"} <= set(kinds)
    result = CliRunner().invoke(app, ["export", str(run), "--format", "onnx"])
    assert result.exit_code == 0, result.output
    exported = onnx.load(str(run / "model.onnx"))
    onnx.checker.check_model(exported, full_check=True)
    ops = {node.op_type for node in exported.graph.node}
    assert {"BatchNormalization", "LayerNormalization"} <= ops and "Dropout" not in ops

    expected = default_registry().load("predictors", "mlp")(run, IMAGES).probabilities  # (2000, 10)
    images = read_idx(IMAGES).astype(np.float32)  # (2000, 28, 28) raw pixels
    session = ort.InferenceSession(str(run / "model.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(["probabilities"], {"images": images})[0]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
