"""The layers: each against float64 central differences (check_layer), batch and layer norm
against their closed forms and PyTorch's documented BatchNorm1d rules, the check itself failing
on wrong layers, and whole networks with batch norm, layer norm and dropout gradient-checked in
training mode with the dropout masks held fixed."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pytest

from pipeline.testing import (TOLERANCE, PluginCheckError, check_plugin, numerical_gradient,
                              relative_error)
from plugins.mlp import losses
from plugins.mlp.layers import ActivationLayer, Dense, Dropout, Layer, Pass, Shapes, resolve
from plugins.mlp.layers.gradcheck import check_layer
from plugins.mlp.layers.normalization import BatchNorm, LayerNorm
from plugins.mlp.model import MLP


def test_every_built_in_layer_passes_its_check(builtin_registry):
    names = builtin_registry.names("layers")
    assert names == ["batch_norm", "dense", "dropout", "layer_norm"]
    for name in names:
        layer = builtin_registry.load("layers", name)
        check_layer(layer)
        assert check_plugin("layers", layer, builtin_registry)  # what ``plugins --check`` runs


def test_every_built_in_activation_is_a_layer_passing_the_check(builtin_registry):
    for name in builtin_registry.names("activations"):
        layer = resolve(name)
        assert isinstance(layer, ActivationLayer) and layer.kind == name
        check_layer(layer)


@pytest.mark.parametrize("layer", [Dense(units=4), BatchNorm(), LayerNorm(), Dropout(p=0.3)],
                         ids=lambda l: l.kind)
@pytest.mark.parametrize("shape", [(3, 1), (5, 7), (9, 2)])
def test_layers_at_other_shapes(layer, shape):
    check_layer(layer, n=shape[0], fan_in=shape[1], seed=shape[0])


# --- the check fails on wrong layers -------------------------------------------------------------

class _Scale(Layer):
    """y = x * s (s per feature), with a switch for each kind of mistake."""

    kind: Literal["scale"] = "scale"
    mistake: str = ""

    def shapes(self, fan_in: int) -> Shapes:
        return Shapes(fan_in, {"s": (fan_in,)})

    def forward(self, x, params, state, ctx) -> tuple[np.ndarray, Any]:
        y = x * params["s"]
        if self.mistake == "batch_dependent" and not ctx.training:
            y = y - y.mean(axis=0)
        if self.mistake == "random_eval" and not ctx.training:
            y = y + np.random.default_rng().normal(size=y.shape)
        return y, x

    def backward(self, dy, x, params, grads, ctx):
        grads["s"][...] = np.sum(dy * x, axis=0) * (2 if self.mistake == "param_grad" else 1)
        dx = dy * params["s"]
        return dx.T.T * (1.5 if self.mistake == "input_grad" else 1)


def test_the_reference_scale_layer_passes():
    check_layer(_Scale())


@pytest.mark.parametrize("mistake, message", [
    ("input_grad", "dL/dx: relative error"), ("param_grad", "dL/ds: relative error"),
    ("batch_dependent", "row 0 alone"), ("random_eval", "called twice")])
def test_the_check_catches_each_mistake(mistake, message):
    with pytest.raises(PluginCheckError, match=message):
        check_layer(_Scale(mistake=mistake))


def test_the_check_catches_a_wrong_output_width():
    class Wide(_Scale):
        def shapes(self, fan_in):
            return Shapes(fan_in + 1, {"s": (fan_in,)})

    with pytest.raises(PluginCheckError, match="shapes\\(\\) promised"):
        check_layer(Wide())


# --- batch norm: PyTorch's BatchNorm1d rules, by hand ----------------------------------------------

def _bn(x: np.ndarray, training: bool, params=None, state=None):
    layer = BatchNorm()
    h = x.shape[1]
    params = params or {"gamma": np.ones(h), "beta": np.zeros(h)}
    state = state or {"running_mean": np.zeros(h), "running_var": np.ones(h)}
    y, _ = layer.forward(x, params, state, Pass(training=training))
    return y, params, state


def test_batch_norm_training_output_and_running_statistics():
    x = np.array([[1.0, 10.0], [2.0, 14.0], [6.0, 12.0]])  # (3, 2)
    y, _, state = _bn(x, training=True)
    mean = np.array([3.0, 12.0])
    biased = np.array([14 / 3, 8 / 3])  # mean of squared deviations (4+1+9)/3, (4+4+0)/3
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(biased + 1e-5), rtol=1e-12)
    np.testing.assert_allclose(state["running_mean"], 0.1 * mean, rtol=1e-12)
    unbiased = biased * 3 / 2  # 7, 4
    np.testing.assert_allclose(state["running_var"], 0.9 + 0.1 * unbiased, rtol=1e-12)


def test_batch_norm_evaluation_uses_the_running_statistics():
    x = np.array([[1.0, -2.0], [3.0, 5.0]])
    params = {"gamma": np.array([2.0, 0.5]), "beta": np.array([1.0, -1.0])}
    state = {"running_mean": np.array([0.5, 1.0]), "running_var": np.array([4.0, 0.25])}
    y, _, after = _bn(x, training=False, params=params, state=state)
    expected = 2.0 * (x[:, 0] - 0.5) / np.sqrt(4.0 + 1e-5) + 1.0, \
        0.5 * (x[:, 1] - 1.0) / np.sqrt(0.25 + 1e-5) - 1.0
    np.testing.assert_allclose(y, np.stack(expected, axis=1), rtol=1e-12)
    np.testing.assert_array_equal(after["running_mean"], [0.5, 1.0])  # untouched
    # one row alone gives its row of the batch: nothing depends on the batch
    np.testing.assert_allclose(_bn(x[1:], False, params, state)[0][0], y[1], rtol=1e-15)


def test_layer_norm_normalises_each_row():
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(4, 6))
    y, _ = LayerNorm().forward(x, {"gamma": np.ones(6), "beta": np.zeros(6)}, {}, Pass())
    np.testing.assert_allclose(y.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=1), x.var(axis=1) / (x.var(axis=1) + 1e-5), rtol=1e-12)


def test_dropout_masks_and_evaluation_identity():
    x = np.ones((50, 40), dtype=np.float32)
    y, mask = Dropout(p=0.25).forward(x, {}, {}, Pass(rng=np.random.default_rng(0)))
    assert set(np.unique(y)) == {0.0, np.float32(1 / 0.75)} and y.dtype == np.float32
    assert abs(np.mean(y == 0) - 0.25) < 0.03
    assert Dropout(p=0.25).forward(x, {}, {}, Pass(training=False))[0] is x
    with pytest.raises(ValueError, match="random generator"):
        Dropout(p=0.25).forward(x, {}, {}, Pass(rng=None))


def test_resolve_errors():
    with pytest.raises(Exception, match="unknown layer 'rleu'.*did you mean 'relu'"):
        resolve("rleu")
    with pytest.raises(ValueError, match="takes no fields"):
        resolve({"kind": "relu", "units": 3})
    with pytest.raises(Exception, match="units"):
        resolve({"kind": "dense"})


# --- whole networks, training mode ---------------------------------------------------------------

STACKS = {
    "bn_relu": [{"kind": "dense", "units": 6}, {"kind": "batch_norm"}, "relu",
                {"kind": "dense", "units": 5}, {"kind": "batch_norm"}, "tanh"],
    "ln_gelu_dropout": [{"kind": "dense", "units": 6}, {"kind": "layer_norm"}, "gelu",
                        {"kind": "dropout", "p": 0.3}, {"kind": "dense", "units": 4}, "sigmoid"],
    "all": [{"kind": "dropout", "p": 0.2}, {"kind": "dense", "units": 7}, {"kind": "batch_norm"},
            "elu", {"kind": "dropout", "p": 0.4}, {"kind": "dense", "units": 5},
            {"kind": "layer_norm"}, "tanh", {"kind": "dense", "units": 4}, {"kind": "batch_norm"}],
}


@pytest.mark.parametrize("stack", STACKS, ids=str)
@pytest.mark.parametrize("seed", range(2))
def test_network_with_normalisation_and_dropout_against_finite_differences(stack, seed):
    rng = np.random.default_rng(seed)
    model = MLP([4, 3], layers=STACKS[stack], dtype="float64", init="glorot_normal", rng=rng)
    x, y = rng.normal(size=(8, 4)), rng.integers(0, 3, size=8)

    def loss() -> float:  # training mode, the same masks every time
        return losses.cross_entropy.value(model.forward(x, rng=np.random.default_rng(7)), y)

    model.backward(losses.cross_entropy.gradient(model.forward(x, rng=np.random.default_rng(7)), y))
    analytic = model.grads.copy()
    numeric = numerical_gradient(loss, model.params)
    assert relative_error(analytic, numeric) < TOLERANCE
    assert np.all(np.isfinite(model.stats))


def test_network_layout_views_and_state():
    model = MLP([4, 3], layers=STACKS["bn_relu"], rng=0)
    assert [l.kind for l in model.layers] == ["dense", "batch_norm", "relu", "dense", "batch_norm",
                                              "tanh", "dense"]
    assert model.params.size == 4 * 6 + 6 + 2 * 6 + 6 * 5 + 5 + 2 * 5 + 5 * 3 + 3
    assert model.stats.size == 2 * 6 + 2 * 5
    for views, flat in ((model.layer_params, model.params), (model.layer_grads, model.grads),
                        (model.layer_state, model.stats)):
        assert all(np.shares_memory(v, flat) for named in views for v in named.values())
    np.testing.assert_array_equal(model.layer_params[1]["gamma"], 1)
    np.testing.assert_array_equal(model.layer_state[1]["running_var"], 1)


def test_batch_norm_model_save_load_and_evaluation_mode(tmp_path):
    model = MLP([4, 3], layers=STACKS["bn_relu"], rng=0)
    x = np.random.default_rng(1).normal(size=(16, 4)).astype(np.float32)
    for _ in range(3):
        model.forward(x, rng=np.random.default_rng(0))  # running statistics move
    assert not np.all(model.layer_state[1]["running_var"] == 1)
    model.save(tmp_path)
    loaded = MLP.load(tmp_path)
    np.testing.assert_array_equal(loaded.stats, model.stats)
    np.testing.assert_array_equal(loaded.output(x), model.output(x))
    # evaluation mode uses the running statistics, not the batch's: one row alone gives the same
    np.testing.assert_allclose(model.output(x[:1])[0], model.output(x)[0], rtol=1e-6)
    with np.load(tmp_path / "model.npz") as npz:
        assert "batch_norm1.running_mean" in npz.files and "dense2.W" in npz.files


def test_parameter_groups_mark_the_dense_weights_only():
    model = MLP([4, 3], layers=STACKS["bn_relu"], rng=0)
    groups = model.parameter_groups()
    assert list(groups) == ["dense0.W", "dense0.b", "batch_norm0.gamma", "batch_norm0.beta",
                            "dense1.W", "dense1.b", "batch_norm1.gamma", "batch_norm1.beta",
                            "dense2.W", "dense2.b"]
    assert [kind for kind, _ in groups.values()].count("weight") == 3
    for name, (kind, part) in groups.items():  # each slice is exactly that array's view
        view = dict(model.array_names())[name]
        assert np.shares_memory(model.params[part], view) and model.params[part].size == view.size
        assert (kind == "weight") == name.endswith(".W")
    assert sum(p.stop - p.start for _, p in groups.values()) == model.params.size
