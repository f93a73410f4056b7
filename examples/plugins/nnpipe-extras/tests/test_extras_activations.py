"""swish, checked with the activation check of the network's plugin groups (plugins.mlp.checks)."""

from __future__ import annotations

import numpy as np

from nnpipe_extras.activations import swish
from plugins.mlp.checks import check_activation


def test_swish_passes_the_activation_check():
    check_activation(swish)


def test_swish_derivative_near_zero_and_far_out():
    # Swish is smooth everywhere: no kink to avoid, so check at 0 and in the saturated tails.
    check_activation(swish, z=np.array([[0.0, 1e-4, -1e-4], [12.0, -12.0, 40.0]]))


def test_swish_values():
    z = np.array([0.0, 1.0, -30.0], dtype=np.float32)
    a = swish.value(z)
    assert a.dtype == np.float32
    np.testing.assert_allclose(a, [0.0, 1 / (1 + np.exp(-1.0)), 0.0], atol=1e-6)
