"""Losses: a value (mean over the batch), its gradient with respect to the network's raw output,
and the link that turns a raw output into predictions.

The network's last layer is linear; the loss decides what its output means. Cross-entropy reads it
as logits and fuses the softmax into the loss (stable, and the gradient is simply
``(softmax - y) / n``); mean squared error reads it as the prediction itself.

Targets are one-hot (or any per-row target) of shape (n, k); integer labels of shape (n,) are
converted to one-hot with k = the output's width. A plugin registers a ``Loss`` object under the
``nnpipe.losses`` entry-point group.

Class weights (``mlp_train``'s ``class_weight``) need a loss with ``weighted``: cross-entropy has
it, as PyTorch's ``cross_entropy(weight=w, label_smoothing=s)``; a loss without it is refused when
the pipeline file is validated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np


@dataclass(frozen=True)
class Loss:
    """A loss on the network's raw output.

    Attributes:
        name: the name it is registered under (saved in ``model.json``).
        value: ``(output (n, k), target) -> float``, the mean over the batch.
        gradient: ``(output (n, k), target) -> dL/doutput (n, k)`` of that mean.
        link: ``output (n, k) -> predictions (n, k)`` (probabilities for cross-entropy).
        fused: optional ``(output, target) -> (value, gradient)`` computing both at once (the
            training loop needs both for every batch); without it, value and gradient are called.
        weighted: optional ``(output, target, weight (k,), smoothing) -> (value, gradient)``,
            the class-weighted loss and its gradient, ``target`` the true one-hot rows (n, k):
            each sample's loss weighted by its class's weight, summed, and divided by the sum of
            those weights; ``smoothing`` is label smoothing applied as PyTorch applies it with
            weights. Needed for ``class_weight``.
    """

    name: str
    value: Callable[[np.ndarray, np.ndarray], float]
    gradient: Callable[[np.ndarray, np.ndarray], np.ndarray]
    link: Callable[[np.ndarray], np.ndarray]
    fused: Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]] | None = None
    weighted: Callable[..., tuple[float, np.ndarray]] | None = None


def value_and_gradient(loss: Any, output: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """The loss's mean value and its gradient dL/doutput (n, k), through ``fused`` if it has one.
    ``loss`` may be any object with ``value`` and ``gradient`` (a plugin's need not be a Loss)."""
    fused = getattr(loss, "fused", None)
    if fused is not None:
        return fused(output, target)
    return loss.value(output, target), loss.gradient(output, target)


def as_one_hot(target: np.ndarray, k: int, dtype: Any = np.float64) -> np.ndarray:
    """Integer labels (n,) -> one-hot (n, k); a 2-d target is returned as is (cast to dtype)."""
    target = np.asarray(target)
    if target.ndim == 2:
        return target.astype(dtype, copy=False)  # (n, k)
    labels = target.astype(np.intp)  # (n,)
    if labels.size and (labels.min() < 0 or labels.max() >= k):
        raise ValueError(f"labels must lie in [0, {k}); found {labels.min()}..{labels.max()}")
    one_hot = np.zeros((labels.shape[0], k), dtype=dtype)  # (n, k)
    one_hot[np.arange(labels.shape[0]), labels] = 1
    return one_hot


def smooth_labels(y: np.ndarray, smoothing: float) -> np.ndarray:
    """Label smoothing (Szegedy et al. 2016): one-hot rows (n, k) -> (1 - s) y + s / k, rows still
    summing to 1, so cross-entropy's fused gradient stays (softmax - y) / n. A new array."""
    k = y.shape[1]
    return (y * (1 - smoothing) + smoothing / k).astype(y.dtype, copy=False)  # (n, k)


def _target(output: np.ndarray, target: np.ndarray) -> np.ndarray:
    return as_one_hot(target, output.shape[1], output.dtype)  # (n, k)


# ----------------------------------------------------------------------------------------------
# softmax cross-entropy, from logits z:
#   log softmax(z) = z - logsumexp(z),   logsumexp(z) = m + log(sum(exp(z - m))),  m = max(z)
#   L = -mean_i sum_j y_ij log softmax(z)_ij       dL/dz = (softmax(z) - y) / n
# (the gradient assumes each target row sums to 1, as one-hot rows do).

def log_softmax(z: np.ndarray) -> np.ndarray:
    shifted = z - z.max(axis=1, keepdims=True)  # (n, k), every row's max is 0
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # (n, k), all finite


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))  # (n, k) in (0, 1]
    return e / e.sum(axis=1, keepdims=True)  # (n, k), rows sum to 1


def _softmax_exp(shifted: np.ndarray) -> np.ndarray:
    """``exp(shifted)`` (n, k) for a softmax in a gradient, but 0 where ``shifted`` is below
    ``log(sqrt(tiny))`` (-43.7 in float32, -354 in float64: probabilities below 1e-19 and
    1e-154). Why: a confident network's shifted logits spread to -250 and beyond; those between
    -104 and -87 have subnormal float32 exponentials, and the gradients they pass back through
    the matrix products stay subnormal, each multiply costing the CPU a microcode assist of a
    hundred cycles (tune_vs_grid.py's network at learning rate 0.01 slowed from 0.45 to 0.8 s an
    epoch by epoch 28). A probability below 1e-19 changes nothing a float32 gradient holds."""
    floor = 0.5 * math.log(float(np.finfo(shifted.dtype).tiny))
    e = np.zeros_like(shifted)  # (n, k)
    return np.exp(shifted, out=e, where=shifted >= floor)  # (n, k) in [0, 1]


def cross_entropy_value(z: np.ndarray, y: np.ndarray) -> float:
    y = _target(z, y)  # (n, k)
    return float(-(y * log_softmax(z)).sum()) / z.shape[0]


def cross_entropy_gradient(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    y = _target(z, y)  # (n, k)
    grad = _softmax_exp(z - z.max(axis=1, keepdims=True))  # (n, k)
    grad /= grad.sum(axis=1, keepdims=True)  # (n, k) softmax
    grad -= y
    grad /= z.shape[0]
    return grad  # (n, k)


def cross_entropy_fused(z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Value and gradient from one softmax: the same operations as the two functions above, so
    the same numbers bit for bit, with one exp instead of two."""
    y = _target(z, y)  # (n, k)
    shifted = z - z.max(axis=1, keepdims=True)  # (n, k), every row's max is 0
    e = _softmax_exp(shifted)  # (n, k) in [0, 1]
    total = e.sum(axis=1, keepdims=True)  # (n, 1)
    value = float(-(y * (shifted - np.log(total))).sum()) / z.shape[0]
    e /= total  # (n, k) softmax
    e -= y
    e /= z.shape[0]
    return value, e  # (n, k)


def cross_entropy_weighted(z: np.ndarray, y: np.ndarray, weight: np.ndarray,
                           smoothing: float = 0.0) -> tuple[float, np.ndarray]:
    """Class-weighted cross-entropy and its gradient, as PyTorch's
    ``cross_entropy(z, labels, weight=w, label_smoothing=s)`` with the mean reduction:

        q = (1 - s) y + s / k                        the smoothed targets (n, k)
        L = sum_ij w_j q_ij (-log softmax(z)_ij) / sum_i w_{y_i}
        dL/dz_ij = (softmax(z)_ij sum_c w_c q_ic - w_j q_ij) / sum_i w_{y_i}

    (the denominator uses the true labels, as PyTorch's does). ``y``: one-hot rows (n, k) or
    labels (n,); ``weight``: (k,) positive."""
    y = _target(z, y)  # (n, k) true one-hot targets
    weight = np.asarray(weight, dtype=z.dtype)  # (k,)
    wq = (smooth_labels(y, smoothing) if smoothing else y) * weight  # (n, k) w_j q_ij
    total = float((y @ weight).sum())  # sum_i w_{y_i}
    shifted = z - z.max(axis=1, keepdims=True)  # (n, k), every row's max is 0
    e = _softmax_exp(shifted)  # (n, k)
    row_sum = e.sum(axis=1, keepdims=True)  # (n, 1)
    value = float(-(wq * (shifted - np.log(row_sum))).sum()) / total
    e /= row_sum  # (n, k) softmax
    e *= wq.sum(axis=1, keepdims=True)  # (n, k) p_ij sum_c w_c q_ic
    e -= wq
    e /= total
    return value, e  # (n, k)


# ----------------------------------------------------------------------------------------------
# mean squared error, on the raw output o (the notebook's mse_loss):
#   L = 0.5 * mean_i sum_j (o_ij - y_ij)^2  =  sum((o - y)^2) / (2n)      dL/do = (o - y) / n

def mse_value(o: np.ndarray, y: np.ndarray) -> float:
    diff = o - _target(o, y)  # (n, k)
    return 0.5 * float((diff * diff).sum()) / o.shape[0]


def mse_gradient(o: np.ndarray, y: np.ndarray) -> np.ndarray:
    grad = o - _target(o, y)  # (n, k)
    grad /= o.shape[0]
    return grad


def identity(o: np.ndarray) -> np.ndarray:
    return o  # (n, k)


#: Softmax cross-entropy from logits: -mean_i sum_j y_ij log softmax(z)_ij; predicts softmax(z).
cross_entropy = Loss("cross_entropy", cross_entropy_value, cross_entropy_gradient, softmax,
                     cross_entropy_fused, cross_entropy_weighted)
#: Half mean squared error: 0.5 * mean over the batch of sum over outputs of (o - y)^2; predicts o.
mse = Loss("mse", mse_value, mse_gradient, identity)


def check(obj: Any) -> str | None:
    """None when ``obj`` can serve as a loss, else what is wrong (for the registry)."""
    missing = [a for a in ("value", "gradient", "link") if not callable(getattr(obj, a, None))]
    if missing:
        return (f"expected a Loss with callable value, gradient and link; "
                f"{type(obj).__name__} has no callable {', '.join(missing)}")
    return None
