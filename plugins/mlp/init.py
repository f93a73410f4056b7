"""Weight initialisers: ``(fan_in, fan_out, rng) -> (W (fan_in, fan_out), b (fan_out,))`` float64.

The model casts what they return to its own dtype. A plugin registers such a function under the
``nnpipe.initializers`` entry-point group.

Scales (n_in = fan_in, n_out = fan_out):
    uniform         W, b ~ U(-0.005, 0.005)                   the seed notebook's (rand - 0.5) / 100
    normal          W ~ N(0, 0.01^2)
    glorot_uniform  W ~ U(-l, l), l = sqrt(6 / (n_in + n_out))    Glorot & Bengio 2010
    glorot_normal   W ~ N(0, 2 / (n_in + n_out))
    he_uniform      W ~ U(-l, l), l = sqrt(6 / n_in)              He et al. 2015, for relu
    he_normal       W ~ N(0, 2 / n_in)
    lecun_uniform   W ~ U(-l, l), l = sqrt(3 / n_in)              LeCun et al. 1998
    lecun_normal    W ~ N(0, 1 / n_in)
Every initialiser but ``uniform`` sets the biases to zero. The normals are plain, not truncated.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

Params = tuple[np.ndarray, np.ndarray]


def uniform(fan_in: int, fan_out: int, rng: np.random.Generator) -> Params:
    W = rng.uniform(-0.005, 0.005, size=(fan_in, fan_out))  # (fan_in, fan_out)
    b = rng.uniform(-0.005, 0.005, size=fan_out)  # (fan_out,)
    return W, b


def _normal(std: float, fan_in: int, fan_out: int, rng: np.random.Generator) -> Params:
    return rng.normal(0.0, std, size=(fan_in, fan_out)), np.zeros(fan_out)


def _uniform(limit: float, fan_in: int, fan_out: int, rng: np.random.Generator) -> Params:
    return rng.uniform(-limit, limit, size=(fan_in, fan_out)), np.zeros(fan_out)


def normal(fan_in: int, fan_out: int, rng: np.random.Generator) -> Params:
    return _normal(0.01, fan_in, fan_out, rng)


def glorot_uniform(fan_in: int, fan_out: int, rng: np.random.Generator) -> Params:
    return _uniform(math.sqrt(6.0 / (fan_in + fan_out)), fan_in, fan_out, rng)


def glorot_normal(fan_in: int, fan_out: int, rng: np.random.Generator) -> Params:
    return _normal(math.sqrt(2.0 / (fan_in + fan_out)), fan_in, fan_out, rng)


def he_uniform(fan_in: int, fan_out: int, rng: np.random.Generator) -> Params:
    return _uniform(math.sqrt(6.0 / fan_in), fan_in, fan_out, rng)


def he_normal(fan_in: int, fan_out: int, rng: np.random.Generator) -> Params:
    return _normal(math.sqrt(2.0 / fan_in), fan_in, fan_out, rng)


def lecun_uniform(fan_in: int, fan_out: int, rng: np.random.Generator) -> Params:
    return _uniform(math.sqrt(3.0 / fan_in), fan_in, fan_out, rng)


def lecun_normal(fan_in: int, fan_out: int, rng: np.random.Generator) -> Params:
    return _normal(math.sqrt(1.0 / fan_in), fan_in, fan_out, rng)


def check(obj: Any) -> str | None:
    """None when ``obj`` can serve as an initialiser, else what is wrong (for the registry)."""
    if not callable(obj):
        return f"expected a function (fan_in, fan_out, rng) -> (W, b); got {type(obj).__name__}"
    return None
