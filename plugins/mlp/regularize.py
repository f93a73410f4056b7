"""What ``mlp_train`` adds to the data loss: the L1 penalty, which parameters weight decay acts on,
and class weights.

The model says where each parameter array lives in its flat vector (``model.parameter_groups()``:
name -> (kind, slice)); everything here works from those kinds, so a network made of other layers
only has to name its groups:

    L1            l1 * sum(|W|) over the ``weight`` groups is added to each batch's mean loss, so
                  l1 * sign(W) to their gradient (sign(0) = 0, as PyTorch's gradient of abs); the
                  penalty's value is never computed: reported losses are the data loss
    weight decay  with ``decay_biases: false`` only the ``weight`` groups decay (biases and any
                  normalisation parameters do not): the optimiser gets that mask
    class weights ``balanced`` is scikit-learn's ``n / (k * count_c)`` over the train split's
                  labels, or one given weight per class; the loss applies them (its ``weighted``)
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from pipeline.errors import DataError

Groups = Mapping[str, tuple[str, slice]]


def kind_mask(groups: Groups, size: int, kinds: Sequence[str]) -> np.ndarray:
    """A boolean mask (size,) of the flat vector's entries whose group kind is in ``kinds``."""
    mask = np.zeros(size, dtype=bool)  # (P,)
    for kind, where in groups.values():
        if kind in kinds:
            mask[where] = True
    return mask


class L1Penalty:
    """Adds the gradient of ``strength * sum(|params[mask]|)`` to a gradient vector in place.

    Args:
        strength: the ``l1`` coefficient (> 0).
        mask: boolean (P,), true for the entries penalised (the dense weights).
        dtype: the parameters' dtype; the buffers below are allocated once, in it.
    """

    def __init__(self, strength: float, mask: np.ndarray, dtype: np.dtype):
        self.scale = mask.astype(dtype) * dtype.type(strength)  # (P,) l1 on weights, 0 elsewhere
        self.work = np.empty(mask.shape, dtype=dtype)  # (P,)

    def add_gradient(self, params: np.ndarray, grads: np.ndarray) -> None:
        """``grads += l1 * sign(params)`` on the masked entries: three passes, no allocation."""
        np.sign(params, out=self.work)
        self.work *= self.scale
        grads += self.work


def class_weights(setting: str | Sequence[float], labels: np.ndarray, k: int) -> np.ndarray:
    """The (k,) float64 class weights for ``setting`` (``"balanced"`` or one weight per class),
    given the train split's labels (n,) in [0, k). Raises ``DataError`` (exit 2) when a list has
    the wrong length or ``balanced`` meets a class with no training sample."""
    if setting == "balanced":
        counts = np.bincount(labels, minlength=k)  # (k,)
        if np.any(counts == 0):
            missing = ", ".join(str(c) for c in np.flatnonzero(counts == 0)[:10])
            raise DataError(f"class_weight: balanced needs every class in the train split; "
                            f"no sample of class {missing}")
        return labels.shape[0] / (k * counts.astype(np.float64))  # (k,) scikit-learn's formula
    weights = np.asarray(setting, dtype=np.float64)  # (k,)
    if weights.shape != (k,):
        raise DataError(f"class_weight gives {weights.size} weights; the data has {k} classes "
                        f"(one weight per class, in label order)")
    return weights
