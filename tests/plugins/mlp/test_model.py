"""The MLP: one flat parameter vector, one SGD step by hand, inference, initialisers, files."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from pipeline.errors import DataError, PluginError, UserError
from pipeline.registry import default_registry
from plugins.mlp import init
from plugins.mlp.model import MLP
from plugins.mlp.optim import SGD


def test_weights_and_gradients_are_views_of_two_flat_vectors():
    model = MLP([5, 4, 3], rng=0)
    assert model.params.shape == model.grads.shape == (5 * 4 + 4 + 4 * 3 + 3,)
    for arrays, flat in ((model.W + model.b, model.params), (model.dW + model.db, model.grads)):
        for array in arrays:
            assert np.shares_memory(array, flat)
    assert [W.shape for W in model.W] == [(5, 4), (4, 3)]
    assert [b.shape for b in model.b] == [(4,), (3,)]
    model.params[:] = np.arange(model.params.size)  # layout: W0, b0, W1, b1
    assert model.W[0][0, 0] == 0 and model.b[0][0] == 20 and model.W[1][0, 0] == 24
    assert model.b[1][-1] == model.params.size - 1


def test_one_sgd_step_on_a_2_2_2_network_by_hand():
    """relu, mse, lr 0.1, one sample x = [1, 2], target [1, 0].

    z1 = x @ W0 + b0 = [1*0.5 + 2*0.25, 1*-1 + 2*0.5] + [0, 0.5] = [1, 0.5];  a1 = relu(z1) = [1, 0.5]
    out = a1 @ W1 + b1 = [1*1 + 0.5*2, 1*0 + 0.5*-1] + [0, 1] = [2, 0.5]
    loss = 0.5 * ((2 - 1)^2 + 0.5^2) = 0.625;   dL/dout = out - y = [1, 0.5]
    dW1 = a1.T @ [1, 0.5] = [[1, 0.5], [0.5, 0.25]];   db1 = [1, 0.5]
    delta1 = ([1, 0.5] @ W1.T) * relu'(z1) = [1*1 + 0.5*0, 1*2 + 0.5*-1] * [1, 1] = [1, 1.5]
    dW0 = x.T @ [1, 1.5] = [[1, 1.5], [2, 3]];   db0 = [1, 1.5]
    """
    model = MLP([2, 2, 2], "relu", "mse", dtype="float64", init=None)
    model.W[0][...] = [[0.5, -1.0], [0.25, 0.5]]
    model.b[0][...] = [0.0, 0.5]
    model.W[1][...] = [[1.0, 0.0], [2.0, -1.0]]
    model.b[1][...] = [0.0, 1.0]
    x, y = np.array([[1.0, 2.0]]), np.array([[1.0, 0.0]])

    output = model.forward(x)
    np.testing.assert_array_equal(output, [[2.0, 0.5]])
    assert model.loss_fn.value(output, y) == 0.625
    model.backward(model.loss_fn.gradient(output, y))
    np.testing.assert_array_equal(model.dW[1], [[1.0, 0.5], [0.5, 0.25]])
    np.testing.assert_array_equal(model.db[1], [1.0, 0.5])
    np.testing.assert_array_equal(model.dW[0], [[1.0, 1.5], [2.0, 3.0]])
    np.testing.assert_array_equal(model.db[0], [1.0, 1.5])

    sgd = SGD(lr=0.1)
    params = model.params
    sgd.step(model.params, model.grads, sgd.init_state(model.params), lr=sgd.lr)
    assert model.params is params  # updated in place
    np.testing.assert_allclose(model.W[0], [[0.4, -1.15], [0.05, 0.2]], rtol=1e-15)
    np.testing.assert_allclose(model.b[0], [-0.1, 0.35], rtol=1e-15)
    np.testing.assert_allclose(model.W[1], [[0.9, -0.05], [1.95, -1.025]], rtol=1e-15)
    np.testing.assert_allclose(model.b[1], [-0.1, 0.95], rtol=1e-15)


def test_float32_all_the_way():
    model = MLP([6, 5, 3], rng=0)
    x = np.random.default_rng(0).random((4, 6))  # float64 in: cast once inside
    output = model.forward(x)
    model.backward(model.loss_fn.gradient(output, np.array([0, 1, 2, 0])))
    assert model.params.dtype == model.grads.dtype == output.dtype == np.float32
    assert all(a.dtype == np.float32 for a, *_ in model._cache)
    assert MLP([2, 2], dtype="float64").params.dtype == np.float64


def test_inference_is_batched_and_leaves_backward_alone():
    rng = np.random.default_rng(0)
    model = MLP([8, 16, 4], "tanh", rng=0)
    x = rng.random((50, 8), dtype=np.float32)
    proba = model.predict_proba(x, batch_size=7)
    np.testing.assert_allclose(proba, model.predict_proba(x), rtol=1e-6)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(model.predict(x), proba.argmax(axis=1))
    assert model.loss(x, model.predict(x)) < model.loss(x, (model.predict(x) + 1) % 4)
    model.forward(x[:3])
    cache = model._cache
    model.predict_proba(x)
    assert model._cache is cache


def test_images_are_flattened_and_a_wrong_width_is_a_data_error():
    model = MLP([12, 3], rng=0)
    images = np.zeros((5, 3, 4), dtype=np.uint8)
    assert model.predict(images).shape == (5,)
    with pytest.raises(DataError, match="expects 12 input features"):
        model.predict(np.zeros((5, 11)))


def test_unknown_activation_is_a_user_error_listing_the_installed_ones():
    with pytest.raises(UserError) as raised:
        MLP([2, 2], activation="rlu")
    assert isinstance(raised.value, PluginError)
    message = str(raised.value)
    assert all(name in message for name in ("relu", "sigmoid", "tanh"))
    assert "did you mean 'relu'" in message


# --- initialisers ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["uniform", "normal", "glorot_uniform", "glorot_normal",
                                  "he_uniform", "he_normal", "lecun_uniform", "lecun_normal"])
def test_initializers(name):
    fn = default_registry().load("initializers", name, check=init.check)
    assert fn is getattr(init, name)
    W, b = fn(400, 300, np.random.default_rng(0))
    assert W.shape == (400, 300) and b.shape == (300,) and W.dtype == b.dtype == np.float64
    expected_std = {"uniform": 0.01 / np.sqrt(12), "normal": 0.01,
                    "glorot_uniform": np.sqrt(2 / 700), "glorot_normal": np.sqrt(2 / 700),
                    "he_uniform": np.sqrt(2 / 400), "he_normal": np.sqrt(2 / 400),
                    "lecun_uniform": np.sqrt(1 / 400), "lecun_normal": np.sqrt(1 / 400)}[name]
    assert W.std() == pytest.approx(expected_std, rel=0.02)
    if name == "uniform":  # the notebook's (rand - 0.5) / 100, biases included
        assert np.abs(W).max() <= 0.005 and np.abs(b).max() <= 0.005 and np.any(b != 0)
    else:
        assert np.all(b == 0)
    W2, _ = fn(400, 300, np.random.default_rng(0))
    np.testing.assert_array_equal(W, W2)


def test_init_check_and_a_bad_initializer():
    assert init.check(init.he_normal) is None and init.check(3) is not None
    with pytest.raises(ValueError, match="returned shapes"):
        MLP([3, 2], init=lambda fan_in, fan_out, rng: (np.zeros((fan_out, fan_in)), np.zeros(fan_out)))


# --- files and pickles -------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_save_load_round_trip(tmp_path, dtype):
    model = MLP([7, 5, 3], "sigmoid", "mse", dtype=dtype, rng=1)
    x = np.random.default_rng(0).random((9, 7))
    assert model.save(tmp_path) == ["model.npz", "model.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json", "model.npz"]  # no temp files

    with np.load(tmp_path / "model.npz", allow_pickle=False) as npz:
        assert npz.files == ["W0", "b0", "W1", "b1"]
        assert all(npz[name].dtype == np.dtype(dtype) for name in npz.files)  # no object arrays
    meta = json.loads((tmp_path / "model.json").read_text())
    assert meta["sizes"] == [7, 5, 3] and meta["activation"] == "sigmoid" and meta["loss"] == "mse"
    assert meta["dtype"] == dtype and meta["nnpipe_version"]

    loaded = MLP.load(tmp_path)
    assert loaded.sizes == model.sizes and loaded.dtype == model.dtype
    assert loaded.activation is model.activation and loaded.loss_fn is model.loss_fn
    np.testing.assert_array_equal(loaded.params, model.params)
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))


def test_load_reports_bad_directories(tmp_path):
    with pytest.raises(DataError, match="model.json: no such file"):
        MLP.load(tmp_path)
    MLP([3, 2], rng=0).save(tmp_path)
    meta = json.loads((tmp_path / "model.json").read_text())
    (tmp_path / "model.json").write_text(json.dumps({**meta, "sizes": [3, 4]}))
    with pytest.raises(DataError, match="W0 has shape"):
        MLP.load(tmp_path)
    np.savez(tmp_path / "model.npz", W0=np.array([object()], dtype=object), b0=np.zeros(4))
    with pytest.raises(DataError, match="cannot read"):
        MLP.load(tmp_path)
    (tmp_path / "model.json").write_text(json.dumps({**meta, "activation": "nope"}))
    with pytest.raises(PluginError, match="installed: elu, gelu, identity, leaky_relu, relu, sigmoid, softplus, tanh"):
        MLP.load(tmp_path)


def test_pickle_keeps_the_views():
    """The stage cache pickles models: the copy's weights must still be views of its params."""
    model = MLP([4, 3, 2], rng=0)
    copy = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(copy.params, model.params)
    copy.params[0] += 1
    assert copy.W[0][0, 0] == model.W[0][0, 0] + 1
    assert all(np.shares_memory(g, copy.grads) for g in copy.dW + copy.db)
