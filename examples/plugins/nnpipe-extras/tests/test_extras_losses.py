"""The focal loss: its hand-derived gradient against finite differences, and its special cases."""

from __future__ import annotations

import numpy as np
import pytest

from nnpipe_extras.losses import FocalLoss, focal
from pipeline.testing import PluginCheckError
from plugins.mlp.checks import check_loss
from plugins.mlp.losses import cross_entropy


@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0, 5.0])
@pytest.mark.parametrize("seed", range(3))
def test_focal_gradient_passes_the_loss_check(gamma, seed):
    check_loss(FocalLoss(gamma=gamma), seed=seed)


def test_focal_gradient_with_soft_targets():
    rng = np.random.default_rng(1)
    target = rng.dirichlet(np.ones(4), size=5)  # (5, 4) rows summing to 1
    check_loss(focal, target=target)


def test_gamma_zero_is_cross_entropy():
    rng = np.random.default_rng(0)
    z, labels = rng.normal(size=(6, 4)), rng.integers(0, 4, size=6)
    plain = FocalLoss(gamma=0.0)
    assert plain.value(z, labels) == pytest.approx(cross_entropy.value(z, labels))
    np.testing.assert_allclose(plain.gradient(z, labels), cross_entropy.gradient(z, labels))


def test_confident_right_answers_cost_less_than_with_cross_entropy():
    z = np.array([[8.0, 0.0, 0.0]])  # p(class 0) ~ 0.9993
    assert focal.value(z, np.array([0])) < 1e-3 * cross_entropy.value(z, np.array([0]))


def test_a_wrong_focal_gradient_would_be_caught():
    """The check is worth trusting only if it fails on the gradient of a slightly different loss."""

    class Wrong(FocalLoss):
        def gradient(self, z, y):
            return FocalLoss(gamma=self.gamma + 0.1).gradient(z, y)

    with pytest.raises(PluginCheckError, match="relative error"):
        check_loss(Wrong())


def test_negative_gamma_is_refused():
    with pytest.raises(ValueError, match="gamma must be >= 0"):
        FocalLoss(gamma=-1.0)
