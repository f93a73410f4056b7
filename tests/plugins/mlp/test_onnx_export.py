"""ONNX export: onnxruntime on the exported file gives nnpipe's own predictions (within 1e-5) for
every built-in activation, both links, both normalisers and both dtypes; the batch-norm and
layer-norm forms match their closed forms; pieces without a form and files nnpipe did not write
are refused with exit status 2."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.errors import UserError
from pipeline.registry import Registry, plugin_entry_points, set_default_registry
from plugins.mlp import onnx_forms
from plugins.mlp.export import build, export_onnx, model_pieces, _refuse_missing
from plugins.mlp.model import MLP
from plugins.mlp.onnx_forms import OnnxGraph
from plugins.mlp.predict import predict
from plugins.normalize import fit_normalizer

ACTIVATIONS = ("relu", "sigmoid", "tanh", "leaky_relu", "elu", "gelu", "softplus", "identity")
SAMPLE_SHAPE = (3, 4)  # 12 raw "pixels" per sample


def session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def raw_images(n: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, *SAMPLE_SHAPE)).astype(np.uint8)


def saved_run(tmp_path: Path, activation: str, loss: str = "cross_entropy",
              dtype: str = "float32", method: str = "standardize") -> Path:
    """A run directory by hand: an MLP 12-16-8-5 with weights large enough that the hidden
    pre-activations span about -6..6 (every branch of every activation), a fitted normaliser and
    the metrics.json facts the export reads."""
    run = tmp_path / f"{activation}-{loss}-{dtype}-{method}"
    run.mkdir()
    model = MLP((12, 16, 8, 5), activation, loss, dtype, init="glorot_uniform", rng=1)
    model.params[...] *= 3
    model.save(run)
    fit_normalizer(raw_images(200, seed=1).reshape(200, -1), method, dtype).save(run)
    (run / "metrics.json").write_text(json.dumps({"class_names": list("abcde"),
                                                  "sample_shape": list(SAMPLE_SHAPE)}))
    return run


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_onnxruntime_equals_predict_for_every_builtin_activation(tmp_path, activation):
    run = saved_run(tmp_path, activation)
    images = raw_images()
    expected = predict(run, images).probabilities  # (64, 5)
    got = session(export_onnx(run)).run(None, {"images": images.astype(np.float32)})[0]
    assert got.shape == expected.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    assert expected.std() > 0.05  # the probabilities are not all alike: the check has teeth


@pytest.mark.parametrize("loss, dtype, method", [("mse", "float32", "scale"),
                                                 ("cross_entropy", "float64", "scale"),
                                                 ("mse", "float64", "standardize")])
def test_links_dtypes_and_normalisers(tmp_path, loss, dtype, method):
    run = saved_run(tmp_path, "gelu", loss, dtype, method)
    images = raw_images()
    got = session(export_onnx(run)).run(None, {"images": images.astype(np.float32)})[0]
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_allclose(got, predict(run, images).probabilities, rtol=0, atol=1e-5)


def test_the_file_passes_the_checker_and_carries_its_facts(tmp_path):
    run = saved_run(tmp_path, "relu")
    proto = onnx.load(str(export_onnx(run)))
    onnx.checker.check_model(proto, full_check=True)
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["class_names"]) == list("abcde")
    assert json.loads(props["input_shape"]) == list(SAMPLE_SHAPE)
    dims = [d.dim_value or d.dim_param for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["N", *SAMPLE_SHAPE] and proto.producer_name == "nnpipe"
    ops = [node.op_type for node in proto.graph.node]
    assert ops[:3] == ["Flatten", "Sub", "Div"] and ops.count("Gemm") == 3
    assert ops[-2:] == ["Softmax", "Identity"] and "Dropout" not in ops


# --- batch norm and layer norm, against their closed forms ----------------------------------

def run_form(form, x: np.ndarray, *args, **kwargs) -> np.ndarray:
    """Run one form alone on ``x`` (n, h) through onnxruntime."""
    from onnx import TensorProto, helper

    g = OnnxGraph(x.dtype)
    g.node("Identity", [form(g, "x", *args, **kwargs)], output="y")
    elem = helper.np_dtype_to_tensor_dtype(x.dtype)
    graph = helper.make_graph(g.nodes, "one", [helper.make_tensor_value_info("x", elem, ["N", x.shape[1]])],
                              [helper.make_tensor_value_info("y", elem, ["N", x.shape[1]])],
                              g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", onnx_forms.OPSET)],
                              ir_version=8)
    onnx.checker.check_model(model, full_check=True)
    path_free = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return path_free.run(None, {"x": x})[0]


def test_batch_norm_form_is_inference_mode_batch_norm():
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, size=(32, 6))  # (n, h) float64
    params = {"gamma": rng.uniform(0.5, 2, 6), "beta": rng.normal(size=6)}
    state = {"running_mean": rng.normal(size=6), "running_var": rng.uniform(0.1, 4, 6)}
    got = run_form(onnx_forms.batch_norm, x, params, state, eps=1e-3)
    expected = (params["gamma"] * (x - state["running_mean"]) / np.sqrt(state["running_var"] + 1e-3)
                + params["beta"])
    np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-8)  # ORT rounds a little


def test_layer_norm_form_normalises_each_row():
    rng = np.random.default_rng(1)
    x = rng.normal(-1.0, 5.0, size=(16, 7))  # (n, h) float64
    params = {"gamma": rng.uniform(0.5, 2, 7), "beta": rng.normal(size=7)}
    got = run_form(onnx_forms.layer_norm, x, params, eps=1e-5)
    mean = x.mean(axis=1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=1, keepdims=True)  # population variance, as layer norm
    expected = params["gamma"] * (x - mean) / np.sqrt(var + 1e-5) + params["beta"]
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


def test_the_plugin_guides_exportable_swish_computes_swish():
    import test_docs

    swish = test_docs.complete_examples()["exportable_swish"]
    z = np.linspace(-8, 8, 64, dtype=np.float32).reshape(8, 8)
    got = run_form(onnx_forms.activation_form(swish), z)
    np.testing.assert_allclose(got, swish.value(z), rtol=0, atol=1e-6)


def test_dropout_has_no_node_and_dense_is_one_gemm():
    g = OnnxGraph()
    assert onnx_forms.dropout(g, "x") == "x" and g.nodes == []
    onnx_forms.dense(g, "x", {"W": np.ones((2, 3)), "b": np.zeros(3)})
    assert [node.op_type for node in g.nodes] == ["Gemm"]


# --- a layer stack: plugin layers bring their own form, or are refused by name --------------

class _Doubler:
    kind = "doubler"

    def onnx(self, g, x, params, state):
        return g.node("Mul", [x, g.constant(2.0)])


class _Mystery:
    kind = "mystery"


class _Stack:
    """The shape of the layer-stack model: layers with their params and state views."""

    def __init__(self, layers):
        self.layers = layers
        self.layer_params = [{} for _ in layers]
        self.layer_state = [{} for _ in layers]


def test_a_stack_uses_a_layers_own_form_and_names_a_layer_without_one(tmp_path):
    pieces = model_pieces(_Stack([_Doubler(), _Mystery()]))
    g = OnnxGraph()
    assert pieces[0][1](g, "x", {}, {}, pieces[0][4]).startswith("mul")
    assert pieces[1][1] is None
    with pytest.raises(UserError, match=r"layer 'mystery' \(layers\[1\]\) from .*test_onnx_export"):
        _refuse_missing(tmp_path, [], pieces, onnx_forms.losses.cross_entropy)


# --- the command line: refusals --------------------------------------------------------------

def test_a_plugin_activation_without_a_form_is_exit_2_naming_it(tmp_path):
    set_default_registry(Registry(plugin_entry_points()))  # with nnpipe-extras
    from nnpipe_extras.activations import swish

    run = tmp_path / "swish"
    run.mkdir()
    MLP((12, 4, 3), swish, init="glorot_uniform", rng=0).save(run)
    result = CliRunner().invoke(app, ["export", str(run)])
    assert result.exit_code == 2
    assert "layer 'swish' (layers[1]) from nnpipe_extras.activations" in result.output
    assert "Traceback" not in result.output and not (run / "model.onnx").exists()


def test_out_never_replaces_a_file_nnpipe_did_not_write(tmp_path):
    run = saved_run(tmp_path, "tanh")
    mine = tmp_path / "notes.onnx"
    mine.write_bytes(b"my own notes")
    foreign = tmp_path / "other.onnx"  # a real ONNX file from someone else
    other = onnx.load(str(export_onnx(run)))
    other.producer_name = "pytorch"
    foreign.write_bytes(other.SerializeToString())
    for target in (mine, foreign, tmp_path):
        before = target.read_bytes() if target.is_file() else None
        result = CliRunner().invoke(app, ["export", str(run), "--out", str(target)])
        assert result.exit_code == 2, result.output
        assert "refusing" in result.output and "Traceback" not in result.output
        assert (target.read_bytes() if target.is_file() else None) == before
    # an earlier nnpipe export is replaced
    ours = tmp_path / "ours.onnx"
    for _ in range(2):
        result = CliRunner().invoke(app, ["export", str(run), "--out", str(ours)])
        assert result.exit_code == 0, result.output
    assert onnx.load(str(ours)).producer_name == "nnpipe"


def test_export_of_what_is_not_a_run_is_exit_2(tmp_path):
    for target in (tmp_path / "nowhere", tmp_path):
        result = CliRunner().invoke(app, ["export", str(target)])
        assert result.exit_code == 2 and result.output.startswith("error: "), result.output
    result = CliRunner().invoke(app, ["export", str(tmp_path), "--format", "tflite"])
    assert result.exit_code == 2 and "onnx" in result.output


def test_build_is_deterministic(tmp_path):
    run = saved_run(tmp_path, "elu")
    assert build(run).SerializeToString() == build(run).SerializeToString()
