"""l1, decay_biases and class_weight: each changes the gradient exactly as worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from pipeline.artifacts import Dataset
from pipeline.errors import DataError
from pipeline.spec import StageContext
from pipeline.testing import PluginCheckError
from plugins.mlp.checks import check_loss
from plugins.mlp.losses import Loss, cross_entropy, cross_entropy_weighted, mse
from plugins.mlp.model import MLP
from plugins.mlp.regularize import L1Penalty, class_weights, kind_mask
from plugins.mlp.trainer import MLPTrain
from plugins.mlp.training import regularizers
from support import blobs


def one_step(data: Dataset, **fields) -> tuple[np.ndarray, np.ndarray]:
    """(initial params, params after ONE full-batch SGD step) in float64."""
    spec = MLPTrain(**{"hidden": [5], "epochs": 1, "batch_size": 10_000, "shuffle": False,
                       "dtype": "float64", "seed": 3, "optimizer": {"kind": "sgd", "lr": 0.5},
                       **fields})
    start = MLP([4, 5, 3], spec.activation, spec.loss, "float64", init=spec.init,
                rng=np.random.default_rng(3)).params.copy()  # the trainer's first draw
    return start, spec.run({"data": data}, StageContext(seed=0))["model"].params


# --- parameter groups ------------------------------------------------------------------------

def test_parameter_groups_cover_the_flat_vector_in_layout_order():
    model = MLP([4, 5, 3], init=None)
    groups = model.parameter_groups()
    assert list(groups) == ["dense0.W", "dense0.b", "dense1.W", "dense1.b"]  # model.npz names
    assert [kind for kind, _ in groups.values()] == ["weight", "bias", "weight", "bias"]
    assert [(s.start, s.stop) for _, s in groups.values()] == [(0, 20), (20, 25), (25, 40), (40, 43)]
    model.params[...] = np.arange(43)
    assert np.array_equal(model.params[groups["dense1.W"][1]].reshape(5, 3), model.W[1])
    mask = kind_mask(groups, 43, ["weight"])
    assert mask.sum() == 35 and not mask[20:25].any() and not mask[40:].any()


# --- L1 ----------------------------------------------------------------------------------------

def test_l1_gradient_by_hand():
    params = np.array([0.5, -2.0, 0.0, 3.0])
    grads = np.array([1.0, 1.0, 1.0, 1.0])
    L1Penalty(0.1, np.array([True, True, True, False]), np.dtype(np.float64)).add_gradient(params, grads)
    # + 0.1 * sign(w) on the first three (sign(0) = 0), nothing on the unmasked fourth
    np.testing.assert_array_equal(grads, [1.1, 0.9, 1.0, 1.0])
    np.testing.assert_array_equal(params, [0.5, -2.0, 0.0, 3.0])


def test_l1_in_the_trainer_moves_weights_by_lr_l1_sign_and_leaves_biases():
    """One full-batch SGD step from the same start: the data gradient is the same with and
    without l1, so the difference is exactly -lr * l1 * sign(W0) on the weights, 0 on biases."""
    data = blobs()
    start, plain = one_step(data)
    _, penalised = one_step(data, l1=0.01)
    weights = kind_mask(MLP([4, 5, 3], init=None).parameter_groups(), start.size, ["weight"])
    expected = np.where(weights, -0.5 * 0.01 * np.sign(start), 0.0)
    np.testing.assert_allclose(penalised - plain, expected, rtol=1e-9, atol=1e-15)
    assert np.abs(expected).sum() > 0


def test_reported_loss_is_the_data_loss():
    data = blobs()
    spec = dict(hidden=[5], epochs=1, batch_size=10_000, shuffle=False, dtype="float64", seed=3,
                optimizer={"kind": "sgd", "lr": 0.5})
    plain = MLPTrain(**spec).run({"data": data}, StageContext(seed=0))["history"][0]
    huge = MLPTrain(**spec, l1=100.0).run({"data": data}, StageContext(seed=0))["history"][0]
    assert huge.train_loss == plain.train_loss  # the first (only) step's loss, before any update


# --- decay_biases -------------------------------------------------------------------------------

def test_the_trainers_decay_mask_is_the_dense_weights():
    model = MLP([4, 5, 3], init=None)
    mask, penalty = regularizers(MLPTrain(decay_biases=False, l1=0.1), model)
    np.testing.assert_array_equal(mask, kind_mask(model.parameter_groups(), 43, ["weight"]))
    np.testing.assert_array_equal(penalty.scale, 0.1 * mask.astype(np.float32))
    assert regularizers(MLPTrain(), model) == (None, None)


@pytest.mark.parametrize("optimizer", [{"kind": "sgd", "lr": 0.5, "weight_decay": 0.1},
                                       {"kind": "adamw", "lr": 0.05, "weight_decay": 0.5},
                                       {"kind": "nadam", "lr": 0.05, "weight_decay": 0.5}],
                         ids=lambda o: o["kind"])
def test_decay_biases_false_changes_only_the_bias_update(optimizer):
    """One full-batch step from ``uniform`` init (non-zero biases), with and without
    decay_biases: the weights get the same update; the biases differ by exactly the decay."""
    data = blobs()
    base = {"init": "uniform", "optimizer": optimizer}
    start, decayed = one_step(data, **base)
    _, kept = one_step(data, **base, decay_biases=False)
    biases = ~kind_mask(MLP([4, 5, 3], init=None).parameter_groups(), start.size, ["weight"])
    np.testing.assert_allclose(decayed[~biases], kept[~biases], rtol=1e-12, atol=0)
    if optimizer["kind"] == "sgd":
        # p1 = p0 - lr (g + wd p0) with the decay, p0 - lr g without: lr * wd * b0 apart
        np.testing.assert_allclose(kept[biases] - decayed[biases], 0.5 * 0.1 * start[biases],
                                   rtol=1e-9)
    elif optimizer["kind"] == "adamw":
        # p *= 1 - lr wd before the same Adam step: lr * wd * b0 apart
        np.testing.assert_allclose(kept[biases] - decayed[biases], 0.05 * 0.5 * start[biases],
                                   rtol=1e-9)
    else:  # NAdam's L2 term goes through its normalisation: the biases differ, no closed form
        assert not np.allclose(decayed[biases], kept[biases], rtol=1e-6, atol=0)


# --- class weights ------------------------------------------------------------------------------
# Two samples, three classes: z_1 = (0, 0, 0) gives p = (1/3, 1/3, 1/3); z_2 = (ln 2, 0, 0) gives
# p = (1/2, 1/4, 1/4). Labels (0, 1), weights w = (1, 2, 3).

Z = np.array([[0.0, 0.0, 0.0], [math.log(2), 0.0, 0.0]])
Y = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
W = np.array([1.0, 2.0, 3.0])


def test_class_weighted_cross_entropy_by_hand():
    value, grad = cross_entropy_weighted(Z, Y, W)
    # (w_0 * -ln(1/3) + w_1 * -ln(1/4)) / (w_0 + w_1)
    assert value == pytest.approx((math.log(3) + 2 * math.log(4)) / 3, rel=1e-12)
    # row i: w_{y_i} (p_i - y_i) / 3
    np.testing.assert_allclose(grad, [[(1 / 3 - 1) / 3, 1 / 9, 1 / 9],
                                      [2 * 0.5 / 3, 2 * (0.25 - 1) / 3, 2 * 0.25 / 3]], rtol=1e-12)


def test_class_weights_with_label_smoothing_by_hand():
    """PyTorch: (1 - s) * weighted NLL + s / k * sum_i sum_c w_c (-log p_ic) / sum_i w_{y_i}.
    s = 0.3: q_1 = (0.8, 0.1, 0.1), q_2 = (0.1, 0.8, 0.1); w q_1 = (0.8, 0.2, 0.3),
    w q_2 = (0.1, 1.6, 0.3); sum_i w_{y_i} = 3."""
    value, grad = cross_entropy_weighted(Z, Y, W, smoothing=0.3)
    nll = (math.log(3) + 2 * math.log(4)) / 3
    smooth = ((1 + 2 + 3) * math.log(3) + 1 * math.log(2) + (2 + 3) * math.log(4)) / 3
    assert value == pytest.approx(0.7 * nll + 0.1 * smooth, rel=1e-12)
    # dL/dz_ij = (p_ij sum_c w_c q_ic - w_j q_ij) / 3, with sum_c w q_1 = 1.3, w q_2 = 2.0
    np.testing.assert_allclose(grad, [[(1.3 / 3 - 0.8) / 3, (1.3 / 3 - 0.2) / 3, (1.3 / 3 - 0.3) / 3],
                                      [(1.0 - 0.1) / 3, (0.5 - 1.6) / 3, (0.5 - 0.3) / 3]],
                               rtol=1e-12)


def test_weighted_loss_passes_the_contract_check_and_a_wrong_one_fails():
    check_loss(cross_entropy)  # includes weighted's finite-difference check

    def wrong(z, y, weight, smoothing=0.0):
        value, grad = cross_entropy_weighted(z, y, weight, smoothing)
        return value, grad * 1.1

    with pytest.raises(PluginCheckError, match="weighted"):
        check_loss(Loss("bad", cross_entropy.value, cross_entropy.gradient, cross_entropy.link,
                        weighted=wrong))


def test_balanced_weights_are_scikit_learns_formula():
    # n = 4, k = 2, counts (3, 1): n / (k * count) = 4 / 6, 4 / 2
    np.testing.assert_allclose(class_weights("balanced", np.array([0, 0, 1, 0]), 2), [2 / 3, 2.0])
    np.testing.assert_array_equal(class_weights([1, 2, 3], np.array([0]), 3), [1.0, 2.0, 3.0])
    with pytest.raises(DataError, match="no sample of class 2"):
        class_weights("balanced", np.array([0, 1, 1]), 3)
    with pytest.raises(DataError, match="gives 2 weights; the data has 3 classes"):
        class_weights([1.0, 2.0], np.array([0]), 3)


def test_class_weight_in_the_trainer():
    """Equal weights of any size change nothing (the mean divides by their sum); unequal ones
    change the gradient; a list of the wrong length fails before training."""
    data = blobs()
    _, plain = one_step(data)
    _, equal = one_step(data, class_weight=[2.5, 2.5, 2.5])
    np.testing.assert_allclose(equal, plain, rtol=1e-12, atol=1e-15)
    _, weighted = one_step(data, class_weight=[1.0, 5.0, 1.0])
    assert not np.allclose(weighted, plain)
    _, balanced = one_step(data, class_weight="balanced")
    assert not np.allclose(balanced, plain)
    with pytest.raises(DataError, match="gives 2 weights"):
        one_step(data, class_weight=[1.0, 2.0])


def test_class_weight_needs_a_loss_that_supports_it():
    with pytest.raises(ValidationError) as raised:
        MLPTrain(loss="mse", class_weight="balanced")
    errors = {e["loc"]: e["msg"] for e in raised.value.errors()}
    assert list(errors) == [("class_weight",)]
    assert "loss 'mse' does not support class weights" in errors[("class_weight",)]
    assert mse.weighted is None
    for bad in ("uniform", [1.0, -1.0], [0.0, 1.0]):
        with pytest.raises(ValidationError):
            MLPTrain(class_weight=bad)
