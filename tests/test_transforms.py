"""Fitted transforms, generically: the run directory records the chain in order, and predict, the
Python API and the ONNX export replay it. The pca example pipeline (examples/pca.yaml, a plugin
transform after the built-in normaliser) is the proof: predict on its run reproduces the
evaluator's test accuracy, and onnxruntime gives predict's probabilities within 1e-5."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from typer.testing import CliRunner

import pipeline
from pipeline.cli import app
from pipeline.errors import UserError
from plugins.idx import read_idx

ROOT = Path(__file__).resolve().parent.parent
MNIST = ROOT / "plugins" / "data" / "mnist-10k"
IMAGES, LABELS = MNIST / "t10k-images-idx3-ubyte.gz", MNIST / "t10k-labels-idx1-ubyte.gz"


@pytest.fixture(scope="module")
def pca_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pca") / "run"
    result = CliRunner().invoke(app, ["run", str(ROOT / "examples" / "pca.yaml"), "--out", str(out),
                                      "--set", "mlp_train.epochs=2", "--quiet", "--no-cache"])
    assert result.exit_code == 0, result.output
    return out


def test_the_run_records_the_chain_in_order(pca_run):
    chain = json.loads((pca_run / "transforms.json").read_text())["chain"]
    assert [(e["kind"], e["index"], e["input_shape"]) for e in chain] == [
        ("normalize", 2, [784]), ("pca", 3, [784])]
    assert [e["dir"] for e in chain] == [".", "."]  # the files the artifacts left
    for entry in chain:
        assert all((pca_run / entry["dir"] / name).is_file() for name in entry["files"])
    files = json.loads((pca_run / "manifest.json").read_text())["files"]
    assert "transforms.json" in files and "pca.npz" in files


def test_predict_on_the_pca_run_reproduces_the_evaluators_accuracy(pca_run):
    result = CliRunner().invoke(app, ["predict", str(pca_run), str(IMAGES), "--labels", str(LABELS),
                                      "--limit", "0"])
    assert result.exit_code == 0, result.output
    accuracy = json.loads((pca_run / "metrics.json").read_text())["accuracy"]
    assert f"accuracy {accuracy:.4f}  (2000 samples)" in result.output
    api = pipeline.load_run(pca_run).predict(read_idx(IMAGES), labels=read_idx(LABELS))
    assert api.accuracy == accuracy  # the evaluator's, exactly


def test_onnxruntime_equals_predict_on_the_pca_run(pca_run):
    result = CliRunner().invoke(app, ["export", str(pca_run), "--out", str(pca_run / "pca.onnx")])
    assert result.exit_code == 0, result.output
    session = ort.InferenceSession(str(pca_run / "pca.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"images": read_idx(IMAGES).astype(np.float32)})[0]
    expected = pipeline.load_run(pca_run).predict(IMAGES).probabilities
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


def test_a_run_from_before_the_chain_still_predicts_with_its_normalizer(pca_run, tmp_path):
    # The default pipeline's chain is the normaliser alone; without transforms.json (as every run
    # written before it was recorded) predict reads normalizer.json, with the same result.
    run = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", str(ROOT / "examples" / "mnist.yaml"), "--out", str(run),
                                      "--set", "mlp_train.epochs=1", "--set", "augment.copies=1",
                                      "--quiet", "--no-cache"])
    assert result.exit_code == 0, result.output
    now = pipeline.load_run(run).predict(IMAGES).probabilities
    old = tmp_path / "old"
    shutil.copytree(run, old)
    (old / "transforms.json").unlink()
    # a run that lists the chain but lost it is refused, not silently read another way ...
    with pytest.raises(UserError, match="transforms.json: missing, but the run's manifest lists it"):
        pipeline.load_run(old).predict(IMAGES)
    # ... while one written before the chain existed (its manifest lists none) reads normalizer.json
    manifest = json.loads((old / "manifest.json").read_text())
    manifest["files"] = [f for f in manifest["files"] if not f.startswith("transforms")]
    (old / "manifest.json").write_text(json.dumps(manifest))
    np.testing.assert_array_equal(pipeline.load_run(old).predict(IMAGES).probabilities, now)


def test_inputs_of_the_wrong_size_name_the_stage_fitted_on_them(pca_run):
    with pytest.raises(UserError, match=r"expects 784 values per sample \(what stages\[2\] "
                                        r"\(normalize\) was fitted on\)"):
        pipeline.load_run(pca_run).predict(np.zeros((2, 10, 10)))


@pytest.mark.parametrize("entry, message", [
    ({"kind": "pca", "dir": "../../"}, "is not a folder of this run"),
    ({"kind": "no_such_stage", "dir": "."}, "no_such_stage"),
    ({"kind": "pca", "dir": "empty"}, "not a saved pca"),
])
def test_a_damaged_chain_is_exit_2(pca_run, tmp_path, entry, message):
    run = tmp_path / "run"
    shutil.copytree(pca_run, run)
    (run / "empty").mkdir()
    (run / "transforms.json").write_text(json.dumps({"format": "nnpipe-transforms/1",
                                                     "chain": [entry]}))
    result = CliRunner().invoke(app, ["predict", str(run), str(IMAGES), "--limit", "0"])
    assert result.exit_code == 2 and message in result.output, result.output
    assert "Traceback" not in result.output
    (run / "transforms.json").write_text("[1, 2")
    result = CliRunner().invoke(app, ["predict", str(run), str(IMAGES)])
    assert result.exit_code == 2 and "not a transform chain" in result.output


# --- the contract, without data ---------------------------------------------------------------

def test_a_transform_output_that_is_not_an_output_is_refused_before_running():
    from types import SimpleNamespace
    from typing import Literal

    from pipeline.engine.wiring import check_wiring
    from pipeline.spec import StageSpec

    class Misdeclared(StageSpec):
        kind: Literal["misdeclared"] = "misdeclared"
        outputs = ("data",)
        transform_output = "fitted"

    fake = SimpleNamespace(stages=[Misdeclared()], stage_ids=lambda: ["misdeclared"], path="p.yaml")
    with pytest.raises(UserError, match="transform_output 'fitted', which is not one of its outputs"):
        check_wiring(fake)


def test_write_chain_keeps_folders_inside_and_refuses_what_it_cannot_save(tmp_path):
    from pipeline.errors import RunError
    from pipeline.engine.transforms import Fitted, write_chain

    class Saves:
        def apply(self, x):
            return x

        def save(self, directory):
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "t.json").write_text("{}")
            return ["t.json"]

    files = write_chain(tmp_path / "run", [Fitted(1, "../../evil/id", "k", Saves())])
    assert files == ["transforms/1-_.._evil_id/t.json", "transforms.json"]
    assert not (tmp_path / "evil").exists()
    with pytest.raises(RunError, match=r"stages\[1\] \(x\).*has no save"):
        write_chain(tmp_path / "run2", [Fitted(1, "x", "x", object())])
