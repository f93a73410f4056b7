"""The focal loss (Lin et al. 2017) on softmax logits z (n, k) with per-row targets y (n, k):

    p = softmax(z),   L = -mean_i sum_j y_ij (1 - p_ij)^gamma log p_ij

It down-weights the examples the network already gets right (p near 1); gamma = 0 is plain
cross-entropy. The gradient with respect to the logits, by the chain rule through the softmax
(dp_j/dz_m = p_j (delta_jm - p_m)):

    c_ij = gamma (1 - p_ij)^(gamma - 1) p_ij log p_ij - (1 - p_ij)^gamma
    w_ij = y_ij c_ij
    dL/dz_im = (w_im - p_im sum_j w_ij) / n

(with gamma = 0: c = -1, so dL/dz = (p - y) / n for rows summing to 1, cross-entropy's gradient).
Registered as ``focal`` (gamma 2) in the ``nnpipe.losses`` entry-point group.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from plugins.mlp.losses import as_one_hot, log_softmax, softmax


@dataclass(frozen=True)
class FocalLoss:
    """The focal loss with focusing parameter ``gamma`` (>= 0); duck-types nnpipe's ``Loss``."""

    gamma: float = 2.0
    name: str = "focal"

    def __post_init__(self):
        if not self.gamma >= 0:
            raise ValueError(f"focal loss: gamma must be >= 0, got {self.gamma}")

    def _parts(self, z: np.ndarray, y: np.ndarray):
        y = as_one_hot(y, z.shape[1], z.dtype)  # (n, k)
        log_p = log_softmax(z)  # (n, k), finite
        p = np.exp(log_p)  # (n, k)
        q = np.maximum(-np.expm1(log_p), np.finfo(z.dtype).tiny)  # (n, k) = 1 - p, exact near p = 1
        return y, log_p, p, q

    def value(self, z: np.ndarray, y: np.ndarray) -> float:
        """Mean over the batch of -sum_j y_j (1 - p_j)^gamma log p_j."""
        y, log_p, _, q = self._parts(z, y)
        return float(-(y * q ** self.gamma * log_p).sum()) / z.shape[0]

    def gradient(self, z: np.ndarray, y: np.ndarray) -> np.ndarray:
        """dL/dz (n, k) of the batch mean, derived above; the dtype of ``z``."""
        y, log_p, p, q = self._parts(z, y)
        c = self.gamma * q ** (self.gamma - 1) * p * log_p - q ** self.gamma  # (n, k)
        w = y * c  # (n, k)
        grad = w - p * w.sum(axis=1, keepdims=True)  # (n, k)
        grad /= z.shape[0]
        return grad.astype(z.dtype, copy=False)

    def link(self, z: np.ndarray) -> np.ndarray:
        """Class probabilities softmax(z) (n, k)."""
        return softmax(z)


focal = FocalLoss(gamma=2.0)
