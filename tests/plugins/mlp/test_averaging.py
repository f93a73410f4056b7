"""mlp_train's ``ema``: the exponential moving average of the weights (and batch norm's running
statistics), checked against averages computed by hand from the live weights of each step."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from pipeline.spec import StageContext
from plugins.mlp.averaging import WeightAverage
from plugins.mlp.trainer import MLPTrain
from support import StopAfter, blobs

#: Full-batch SGD on 240 rows: one step per epoch, so a run of k epochs ends on step k's weights.
#: Batch norm gives running statistics to average; dropout draws from the seeded generator.
STACK = [{"kind": "dense", "units": 8}, {"kind": "batch_norm"}, "relu",
         {"kind": "dropout", "p": 0.2}]
ONE_STEP_PER_EPOCH = dict(layers=STACK, batch_size=240, shuffle=False,
                          optimizer={"kind": "sgd", "lr": 0.3}, dtype="float64")


def _train(seed: int = 0, checkpoint_dir=None, progress=None, **fields):
    spec = MLPTrain(**{**ONE_STEP_PER_EPOCH, **fields})
    out = spec.run({"data": blobs()}, StageContext(seed=seed, progress=progress,
                                                   checkpoint_dir=checkpoint_dir))
    return out["model"], out["history"]


def test_the_saved_model_is_the_hand_computed_average_of_each_steps_weights():
    decay = 0.6
    live = [_train(epochs=k)[0] for k in (1, 2, 3)]  # the weights after steps 1, 2, 3
    averaged, _ = _train(epochs=3, ema=decay)
    # a1 = w1 (a copy after the first step), a_t = decay * a_(t-1) + (1 - decay) * w_t
    for name in ("params", "stats"):
        w1, w2, w3 = (getattr(m, name) for m in live)
        expected = decay * (decay * w1 + (1 - decay) * w2) + (1 - decay) * w3
        assert np.allclose(getattr(averaged, name), expected, rtol=1e-12, atol=1e-12)
        assert not np.allclose(getattr(averaged, name), w3)  # it is not the live weights


def test_validation_figures_are_those_of_the_averaged_weights():
    model, history = _train(epochs=4, ema=0.5)
    validation = blobs().split("validation")
    assert history[-1].val_loss == pytest.approx(model.loss(validation.x, validation.y),
                                                 rel=1e-12)


def test_averaging_leaves_the_training_itself_unchanged():
    # the live weights follow the same path with or without ema: the train figures agree
    _, plain = _train(epochs=4)
    _, averaged = _train(epochs=4, ema=0.9)
    assert [e.train_loss for e in plain] == [e.train_loss for e in averaged]
    assert [e.val_loss for e in plain] != [e.val_loss for e in averaged]


class _Model:
    """What WeightAverage reads: flat params (P,) and stats (S,)."""

    def __init__(self, params, stats):
        self.params = np.array(params, dtype=np.float32)
        self.stats = np.array(stats, dtype=np.float32)


def test_the_update_rule_on_numbers_solved_by_hand_and_the_swap_restores_live_weights():
    model = _Model([1.0, 2.0], [4.0])
    average = WeightAverage(0.75, model)
    average.update(model)  # first step: a copy
    model.params[...] = [5.0, -2.0]
    model.stats[...] = [0.0]
    average.update(model)  # 0.75 * [1, 2] + 0.25 * [5, -2] = [2, 1]; 0.75 * 4 = 3
    assert average.params.tolist() == [2.0, 1.0] and average.stats.tolist() == [3.0]
    assert average.steps == 2
    with average.swapped_in(model):
        assert model.params.tolist() == [2.0, 1.0] and model.stats.tolist() == [3.0]
    assert model.params.tolist() == [5.0, -2.0] and model.stats.tolist() == [0.0]


@pytest.mark.parametrize("fields", [
    {"batch_size": 32, "shuffle": True, "optimizer": {"kind": "adam", "lr": 0.01},
     "dtype": "float32"},
    {"early_stopping": {"patience": 50}},
], ids=["adam-batches", "early-stopping"])
def test_an_interrupted_run_resumes_bit_identical_with_its_average(tmp_path, fields):
    whole, whole_history = _train(epochs=5, ema=0.8, **fields)
    with pytest.raises(KeyboardInterrupt):
        _train(epochs=5, ema=0.8, checkpoint_dir=tmp_path, progress=StopAfter(2), **fields)
    resumed, history = _train(epochs=5, ema=0.8, checkpoint_dir=tmp_path, **fields)
    assert np.array_equal(resumed.params, whole.params)
    assert np.array_equal(resumed.stats, whole.stats)
    assert [e.val_loss for e in history] == [e.val_loss for e in whole_history]


def test_early_stopping_keeps_the_best_averaged_weights():
    # a gain under min_delta does not count: the run stops once the average settles
    spec = dict(epochs=30, ema=0.5, early_stopping={"patience": 1, "min_delta": 0.05})
    model, history = _train(**spec)
    best = len(history) - 2  # the last epoch that counted, then patience 1, then the stop
    assert 1 <= best and len(history) < 30
    at_best, _ = _train(**{**spec, "epochs": best, "early_stopping": None})
    assert np.array_equal(model.params, at_best.params)
    assert np.array_equal(model.stats, at_best.stats)


@pytest.mark.parametrize("value", [0, 1, 1.5, -0.1, "high"])
def test_a_decay_outside_zero_to_one_is_refused_at_the_field(value):
    with pytest.raises(ValidationError) as raised:
        MLPTrain(ema=value)
    assert [e["loc"] for e in raised.value.errors()] == [("ema",)]


def test_off_by_default_and_in_the_schema():
    assert MLPTrain().ema is None
    schema = MLPTrain.model_json_schema()
    assert "ema" in schema["properties"]
