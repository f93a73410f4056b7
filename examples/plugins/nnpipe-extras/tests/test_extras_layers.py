"""gaussian_noise, checked with the layer contract's check (float64 central differences with the
noise held fixed, float32, evaluation mode), and what it does."""

from __future__ import annotations

import numpy as np

from nnpipe_extras.layers import GaussianNoise
from plugins.mlp.layers import Pass
from plugins.mlp.checks import check_layer


def test_gaussian_noise_passes_the_layer_check():
    check_layer(GaussianNoise)
    check_layer(GaussianNoise(std=2.0), n=7, fan_in=3)


def test_noise_in_training_only_with_the_asked_spread():
    x = np.zeros((400, 50), dtype=np.float32)
    y, _ = GaussianNoise(std=0.5).forward(x, {}, {}, Pass(rng=np.random.default_rng(0)))
    assert y.dtype == np.float32 and abs(float(y.std()) - 0.5) < 0.01
    assert GaussianNoise(std=0.5).forward(x, {}, {}, Pass(training=False))[0] is x


def test_it_trains_in_a_stack():
    from pipeline.artifacts import Dataset, Split
    from pipeline.spec import StageContext
    from plugins.mlp.trainer import MLPTrain

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    x = 3.0 * np.eye(2, 4)[y] + rng.normal(size=(200, 4))
    data = Dataset({"train": Split(x[:160], y[:160]), "validation": Split(x[160:], y[160:])})
    spec = MLPTrain(layers=[{"kind": "gaussian_noise", "std": 0.3}, {"kind": "dense", "units": 8},
                            "relu"], epochs=5, batch_size=16, optimizer={"kind": "sgd", "lr": 0.1})
    out = spec.run({"data": data}, StageContext(seed=0))
    assert out["history"][-1].val_accuracy > 0.9
