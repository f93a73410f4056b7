"""The mlp_train stage: validation of its spec, learning, determinism, batches, history, progress,
and the seed notebook's settings on MNIST."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

import plugins
from pipeline.artifacts import Dataset, Split
from pipeline.errors import DataError, RunError
from pipeline.progress import ListProgress
from pipeline.spec import StageContext
from plugins.mlp.model import MLP
from plugins.mlp.optim import SGD
from plugins.mlp.trainer import History, MLPTrain
from support import StopAfter, blobs


def train(spec: MLPTrain, data: Dataset, seed: int = 0, progress=None) -> tuple[MLP, History]:
    out = spec.run({"data": data}, StageContext(seed=seed, progress=progress))
    assert set(out) == set(MLPTrain.outputs)
    return out["model"], out["history"]


SMALL = dict(hidden=[8], epochs=3, batch_size=16, optimizer={"kind": "sgd", "lr": 0.1})


# --- the spec ----------------------------------------------------------------------------------

def test_defaults_and_json_round_trip():
    spec = MLPTrain()
    assert (spec.hidden, spec.activation, spec.loss, spec.init) == ([256, 128], "relu", "cross_entropy", "he_normal")
    assert spec.optimizer == SGD(lr=0.01) and (spec.batch_size, spec.epochs) == (128, 10)
    assert spec.inputs == ("data",) and spec.outputs == ("model", "history")
    dumped = MLPTrain(optimizer={"kind": "sgd", "lr": 0.5}).model_dump(mode="json")
    assert dumped["optimizer"] == SGD(lr=0.5).model_dump(mode="json")  # every field, for cache keys
    assert dumped["optimizer"]["momentum"] == 0.0  # a subclass's own fields are kept
    assert MLPTrain.model_validate(dumped).model_dump(mode="json") == dumped


def _errors(**fields) -> dict[tuple, str]:
    with pytest.raises(ValidationError) as raised:
        MLPTrain(**fields)
    return {error["loc"]: error["msg"] for error in raised.value.errors()}


def test_bad_activation_lists_the_installed_ones():
    errors = _errors(activation="rlu")
    assert errors == {("activation",): "unknown activation 'rlu'; installed: elu, gelu, identity, "
                                       "leaky_relu, relu, sigmoid, softplus, tanh "
                                       "(did you mean 'relu'?)"}


def test_every_problem_is_reported_with_its_path():
    errors = _errors(loss="cross_entropi", init="he", hidden=[0],
                     optimizer={"kind": "sgd", "lr": -1, "momentun": 0.9})
    assert set(errors) == {("loss",), ("init",), ("hidden", 0), ("optimizer", "lr"),
                           ("optimizer", "momentun")}
    assert errors[("loss",)].startswith("unknown loss 'cross_entropi'; installed: cross_entropy, mse")
    assert "installed: glorot_normal, glorot_uniform, he_normal" in errors[("init",)]


def test_unknown_or_missing_optimizer_kind():
    assert _errors(optimizer={"kind": "sdg", "lr": 0.1}) == {
        ("optimizer", "kind"): "unknown optimizer 'sdg'; installed: adagrad, adam, adamw, nadam, rmsprop, sgd (did you mean 'sgd'?)"}
    assert _errors(optimizer={"lr": 0.1}) == {("optimizer", "kind"): "missing; installed: adagrad, adam, adamw, nadam, rmsprop, sgd"}
    assert ("optimizer",) in _errors(optimizer="sgd")


# --- learning ----------------------------------------------------------------------------------

def test_learns_a_separable_problem():
    spec = MLPTrain(hidden=[16], epochs=15, batch_size=16, optimizer={"kind": "sgd", "lr": 0.1}, seed=0)
    model, history = train(spec, blobs(600))
    assert history[-1].val_accuracy >= 0.95 and history[-1].train_accuracy >= 0.95
    assert history[-1].train_loss < history[0].train_loss / 2


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_other_activations_and_losses_learn_too(activation, loss):
    spec = MLPTrain(hidden=[16], activation=activation, loss=loss, init="glorot_uniform",
                    epochs=20, batch_size=8, optimizer={"kind": "sgd", "lr": 0.2}, seed=0)
    _, history = train(spec, blobs(300))
    assert history[-1].val_accuracy >= 0.9


def test_same_seed_gives_bit_identical_weights_and_other_seeds_differ():
    data = blobs()
    first, history = train(MLPTrain(**SMALL, seed=5), data)
    again, _ = train(MLPTrain(**SMALL, seed=5), data)
    other, _ = train(MLPTrain(**SMALL, seed=6), data)
    assert np.array_equal(first.params, again.params)
    assert not np.array_equal(first.params, other.params)
    from_context, _ = train(MLPTrain(**SMALL), data, seed=5)  # seed None -> context.seed
    assert np.array_equal(first.params, from_context.params)


def test_batches_cover_every_row_including_the_last_partial_one():
    """1 epoch, no shuffle, 10 rows in batches of 4: the trainer must equal the textbook loop
    over rows 0-3, 4-7 and 8-9, bit for bit."""
    data = blobs(13)  # 10 train rows
    spec = MLPTrain(hidden=[5], epochs=1, batch_size=4, shuffle=False, dtype="float64",
                    optimizer={"kind": "sgd", "lr": 0.3}, seed=2)
    progress = Recorder()
    model, _ = train(spec, data, progress=progress)
    assert progress.events[0] == ("begin", "epoch 1/1", 3)
    assert [e[0] for e in progress.events].count("advance") == 3

    x, y = data.split("train").x, data.split("train").y
    by_hand = MLP([4, 5, 3], "relu", "cross_entropy", "float64", init="he_normal",
                  rng=np.random.default_rng(2))
    for rows in (slice(0, 4), slice(4, 8), slice(8, 10)):
        output = by_hand.forward(x[rows])
        by_hand.backward(by_hand.loss_fn.gradient(output, y[rows]))
        by_hand.params -= 0.3 * by_hand.grads
    assert np.array_equal(model.params, by_hand.params)


def test_one_hot_targets_train_like_labels():
    data = blobs()
    one_hot = data.with_splits({name: Split(s.x, np.eye(3, dtype=np.float32)[s.y])
                                for name, s in data.splits.items()})
    a, _ = train(MLPTrain(**SMALL), data)
    b, _ = train(MLPTrain(**SMALL), one_hot)
    assert np.array_equal(a.params, b.params)


def test_divergence_is_a_run_error():
    spec = MLPTrain(hidden=[8], loss="mse", epochs=5, optimizer={"kind": "sgd", "lr": 1e6})
    with np.errstate(all="ignore"), pytest.raises(RunError, match="diverged"):
        train(spec, blobs())


# --- what comes out ----------------------------------------------------------------------------

class Recorder(ListProgress):
    """Keeps every progress event."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple] = []

    def begin(self, description: str, total: int) -> None:
        self.events.append(("begin", description, total))

    def advance(self, steps: int = 1, **fields) -> None:
        self.events.append(("advance", steps, fields))

    def end(self) -> None:
        self.events.append(("end",))


def test_history_and_progress(tmp_path):
    progress = Recorder()
    model, history = train(MLPTrain(**SMALL), blobs(100), progress=progress)  # 80 rows: 5 batches
    assert len(history) == 3
    assert [e[0] for e in progress.events] == (["begin"] + ["advance"] * 5 + ["end"]) * 3
    assert progress.events[0] == ("begin", "epoch 1/3", 5)
    assert set(progress.events[1][2]) == {"loss", "samples"}
    assert sum(e[2]["samples"] for e in progress.events[1:6]) == 80  # every row once per epoch
    assert len(progress.lines) == 3 and progress.lines[2].startswith("epoch 3/3  train loss ")
    assert "val loss" in progress.lines[0]

    assert history.save(tmp_path) == ["history.json"]
    saved = json.loads((tmp_path / "history.json").read_text())
    assert [row["epoch"] for row in saved] == [1, 2, 3]
    assert set(saved[0]) == {"epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
                             "lr", "lr_end", "seconds", "layers"}
    assert saved[0]["lr"] == saved[0]["lr_end"] == 0.1 and saved[0]["seconds"] > 0
    assert all(0 <= row["train_accuracy"] <= 1 and 0 <= row["val_accuracy"] <= 1 for row in saved)

    without_validation = Dataset({"train": blobs(100).split("train")})
    _, history = train(MLPTrain(**SMALL), without_validation)
    assert history[0].val_loss is None and history[0].val_accuracy is None


def test_train_figures_come_from_the_batch_outputs():
    """With lr tiny the model barely moves, so the epoch's train loss ~ the loss of the start."""
    data = blobs()
    spec = MLPTrain(hidden=[8], epochs=1, optimizer={"kind": "sgd", "lr": 1e-9}, seed=0)
    model, history = train(spec, data)
    train_split = data.split("train")
    assert history[0].train_loss == pytest.approx(model.loss(train_split.x, train_split.y), rel=1e-4)
    assert history[0].train_accuracy == pytest.approx(
        np.mean(model.predict(train_split.x) == train_split.y), abs=1e-9)


# --- the seed notebook's settings on MNIST -----------------------------------------------------

MNIST = Path(plugins.__file__).parent / "data" / "mnist-10k"


@pytest.fixture(scope="module")
def mnist() -> Dataset:
    """The 10k MNIST subset as the notebook prepared it: x / 255, the last 10% of the 8000
    training digits for validation, and the 2000 test digits."""
    if not (MNIST / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"no MNIST subset at {MNIST}")
    from plugins.idx import read_idx

    def split(prefix: str) -> Split:
        images = read_idx(MNIST / f"{prefix}-images-idx3-ubyte.gz")  # (n, 28, 28) uint8
        x = images.reshape(len(images), -1).astype(np.float32) / 255  # (n, 784)
        return Split(x, read_idx(MNIST / f"{prefix}-labels-idx1-ubyte.gz").astype(np.int64))

    train, test = split("train"), split("t10k")
    cut = len(train) * 9 // 10
    return Dataset({"train": Split(train.x[:cut], train.y[:cut]),
                    "validation": Split(train.x[cut:], train.y[cut:]), "test": test})


@pytest.mark.parametrize("init, low, high", [("uniform", 0.0, 0.3), ("he_normal", 0.9, 1.01)])
def test_notebook_settings_on_mnist(mnist, init, low, high):
    """784-64-32-10, relu, cross-entropy, SGD lr 0.01, batch 2, 2 epochs (about 1.5 s each):
    the notebook's tiny uniform weights leave the network at chance; he_normal learns."""
    spec = MLPTrain(hidden=[64, 32], activation="relu", loss="cross_entropy", init=init,
                    optimizer={"kind": "sgd", "lr": 0.01}, batch_size=2, epochs=2, seed=0)
    model, _ = train(spec, mnist)
    test = mnist.split("test")
    accuracy = float(np.mean(model.predict(test.x) == test.y))
    assert low <= accuracy < high, f"{init}: test accuracy {accuracy:.4f}"


# --- schedules -----------------------------------------------------------------------------------

@pytest.mark.parametrize("schedule, expected", [
    ({"kind": "constant"}, [0.1, 0.1, 0.1, 0.1]),
    ({"kind": "step", "step_size": 2, "gamma": 0.5}, [0.1, 0.1, 0.05, 0.05]),
    ({"kind": "exponential", "gamma": 0.5}, [0.1, 0.05, 0.025, 0.0125]),
    # 0.1 * (1 + cos(pi * e / 4)) / 2 for e = 0..3: 0.1, 0.0854, 0.05, 0.0146
    ({"kind": "cosine"}, [0.1, 0.05 * (1 + 0.5 ** 0.5), 0.05, 0.05 * (1 - 0.5 ** 0.5)]),
    ({"kind": "cosine", "warmup_epochs": 1}, [0.05, 0.1, 0.075, 0.025]),
])
def test_schedules_set_and_record_each_epochs_lr(schedule, expected):
    spec = MLPTrain(**{**SMALL, "epochs": 4, "schedule": schedule})
    _, history = train(spec, blobs())
    np.testing.assert_allclose([e.lr for e in history], expected, rtol=1e-12)


def test_plateau_reduces_after_patience_epochs():
    from plugins.mlp.schedules import Plateau

    class E:  # an epoch record with only the losses
        def __init__(self, val_loss):
            self.val_loss, self.train_loss = val_loss, None

    plateau = Plateau(factor=0.5, patience=1)
    losses_ = [1.0, 0.9, 0.95, 0.95, 0.8, 0.85, 0.85]  # no gain in epochs 3-4 and 6-7
    lrs = [plateau.lr(e + 1, 1.0, 8, [E(v) for v in losses_[:e]]) for e in range(8)]
    assert lrs == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]


def test_unknown_schedule_lists_the_installed_ones():
    errors = _errors(schedule={"kind": "cosin"})
    assert errors == {("schedule", "kind"): "unknown schedule 'cosin'; installed: constant, cosine, "
                                            "exponential, one_cycle, plateau, step (did you mean "
                                            "'cosine'?)"}
    assert ("schedule", "gamma") in _errors(schedule={"kind": "step", "gamma": 2})


# --- regularisation --------------------------------------------------------------------------------

def test_dropout_and_label_smoothing_still_learn_and_stay_reproducible():
    spec = MLPTrain(**{**SMALL, "hidden": [32], "epochs": 8, "dropout": 0.3, "label_smoothing": 0.1})
    a, history = train(spec, blobs())
    b, _ = train(spec, blobs())
    assert np.array_equal(a.params, b.params)
    assert history[-1].val_accuracy > 0.9
    plain, _ = train(MLPTrain(**{**SMALL, "hidden": [32], "epochs": 8}), blobs())
    assert not np.array_equal(a.params, plain.params)


# --- early stopping --------------------------------------------------------------------------------

def test_early_stopping_restores_the_best_epochs_weights():
    """A learning rate large enough to make val_loss wander: training stops ``patience`` epochs
    after the best one, and the returned weights are that epoch's (checked against a run cut to
    exactly that many epochs, which must be bit-identical)."""
    fields = {**SMALL, "hidden": [16], "epochs": 40, "optimizer": {"kind": "sgd", "lr": 0.8}}
    data = blobs(60, seed=4)
    model, history = train(MLPTrain(**fields, early_stopping={"patience": 2}), data)
    losses_ = [e.val_loss for e in history]
    best = int(np.argmin(losses_)) + 1
    assert len(history) == best + 3 < 40  # stopped: patience 2 exceeded after the best epoch
    reference, _ = train(MLPTrain(**{**fields, "epochs": best}), data)
    assert np.array_equal(model.params, reference.params)


def test_early_stopping_on_accuracy_with_min_delta_and_without_restoring():
    fields = {**SMALL, "hidden": [16], "epochs": 30}
    model, history = train(MLPTrain(**fields, early_stopping={
        "monitor": "val_accuracy", "patience": 0, "min_delta": 0.5, "restore_best": False}), blobs())
    assert len(history) == 2  # nothing beats the first epoch by 0.5
    last, _ = train(MLPTrain(**{**fields, "epochs": 2}), blobs())
    assert np.array_equal(model.params, last.params)


def test_early_stopping_needs_a_validation_split():
    data = Dataset({"train": blobs().split("train")})
    with pytest.raises(DataError, match="no validation split"):
        train(MLPTrain(**SMALL, early_stopping={}), data)


# --- numerical safety ------------------------------------------------------------------------------

def test_a_nan_loss_names_epoch_and_step_and_suggests_a_smaller_lr():
    spec = MLPTrain(hidden=[8], loss="mse", epochs=5, batch_size=16,
                    optimizer={"kind": "sgd", "lr": 1e6})
    with np.errstate(all="ignore"), pytest.raises(RunError) as raised:
        train(spec, blobs())
    message = str(raised.value)
    assert "epoch 1, step" in message and "smaller learning rate" in message


def test_nan_inputs_are_caught_at_the_first_step():
    data = blobs()
    x = data.split("train").x.copy()
    x[5, 0] = np.nan
    bad = Dataset({"train": Split(x, data.split("train").y)})
    with pytest.raises(RunError, match="epoch 1, step 1 of"):
        train(MLPTrain(**{**SMALL, "batch_size": 1000}), bad)


# --- checkpoints -----------------------------------------------------------------------------------

@pytest.mark.parametrize("extra", [
    {},
    {"dropout": 0.2, "early_stopping": {"patience": 50},
     "schedule": {"kind": "plateau", "patience": 0}, "optimizer": {"kind": "adam", "lr": 0.01}},
    {"optimizer": {"kind": "nadam", "lr": 0.01, "weight_decay": 0.01},
     "schedule": {"kind": "one_cycle", "max_lr": 0.05}, "class_weight": "balanced",
     "label_smoothing": 0.1, "l1": 1e-4, "decay_biases": False},
    {"optimizer": {"kind": "rmsprop", "lr": 0.01, "momentum": 0.5, "centered": True},
     "schedule": {"kind": "cosine", "warmup_steps": 7}, "class_weight": [1.0, 2.0, 0.5]},
    {"optimizer": {"kind": "adagrad", "lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.001},
     "decay_biases": False, "l1": 1e-3},
], ids=["sgd", "adam-dropout-plateau-early", "nadam-one_cycle-weights-l1",
        "rmsprop-cosine_warmup_steps", "adagrad-decay"])
def test_interrupted_run_resumes_bit_identical(tmp_path, extra):
    spec = MLPTrain(**{**SMALL, "hidden": [16], "epochs": 5, **extra})
    whole, whole_history = train(spec, blobs())
    context = StageContext(seed=0, progress=StopAfter(2), checkpoint_dir=tmp_path / "ckpt")
    with pytest.raises(KeyboardInterrupt):
        spec.run({"data": blobs()}, context)
    assert (tmp_path / "ckpt" / "checkpoint.npz").is_file()
    with np.load(tmp_path / "ckpt" / "checkpoint.npz", allow_pickle=False) as npz:
        assert json.loads(str(npz["meta"]))["epoch"] == 2
    progress = ListProgress()
    out = spec.run({"data": blobs()}, StageContext(seed=0, progress=progress,
                                                   checkpoint_dir=tmp_path / "ckpt"))
    assert any("resuming from the checkpoint of epoch 2" in line for line in progress.lines)
    assert np.array_equal(out["model"].params, whole.params)
    assert [e.val_loss for e in out["history"]] == [e.val_loss for e in whole_history]
    assert [e.lr_end for e in out["history"]] == [e.lr_end for e in whole_history]
    assert not (tmp_path / "ckpt" / "checkpoint.npz").exists()  # removed once complete


def test_a_checkpoint_of_another_configuration_is_ignored(tmp_path):
    context = StageContext(seed=0, progress=StopAfter(1), checkpoint_dir=tmp_path)
    with pytest.raises(KeyboardInterrupt):
        MLPTrain(**{**SMALL, "hidden": [16]}).run({"data": blobs()}, context)
    spec = MLPTrain(**{**SMALL, "hidden": [12]})
    model, _ = train(spec, blobs())
    out = spec.run({"data": blobs()}, StageContext(seed=0, checkpoint_dir=tmp_path))
    assert np.array_equal(out["model"].params, model.params)


# --- the layer stack -------------------------------------------------------------------------------

BN_STACK = [{"kind": "dense", "units": 16}, {"kind": "batch_norm"}, "relu",
            {"kind": "dropout", "p": 0.2}, {"kind": "dense", "units": 8}, {"kind": "layer_norm"},
            "tanh"]
STACK_SMALL = {k: v for k, v in SMALL.items() if k != "hidden"}


def test_the_short_form_means_the_stack_it_implies():
    short = MLPTrain(**{**SMALL, "hidden": [8, 6], "activation": "tanh", "dropout": 0.2})
    stack = MLPTrain(**STACK_SMALL, layers=[{"kind": "dense", "units": 8}, "tanh",
                                            {"kind": "dropout", "p": 0.2},
                                            {"kind": "dense", "units": 6}, "tanh",
                                            {"kind": "dropout", "p": 0.2}])
    a, history_a = train(short, blobs())
    b, history_b = train(stack, blobs())
    assert np.array_equal(a.params, b.params)
    assert [e.val_loss for e in history_a] == [e.val_loss for e in history_b]


def test_both_forms_of_the_stack_are_refused():
    with pytest.raises(ValidationError, match="give either layers or dropout, hidden"):
        MLPTrain(layers=["relu"], hidden=[3], dropout=0.1)
    spec = MLPTrain(layers=BN_STACK)  # a dump holds one form only, and validates again
    dumped = spec.model_dump(mode="json")
    assert "hidden" not in dumped and "layers" not in MLPTrain().model_dump(mode="json")
    assert MLPTrain.model_validate(dumped) == spec


def test_bad_layer_entries_are_reported_at_their_paths():
    with pytest.raises(ValidationError) as raised:
        MLPTrain(layers=[{"kind": "dense"}, "rleu", {"kind": "batch_norm", "momentum": 2},
                         {"kind": "dense", "units": 3, "initializer": "he_nromal"}])
    where = {".".join(map(str, e["loc"])): e["msg"] for e in raised.value.errors()}
    assert set(where) == {"layers.0.units", "layers.1", "layers.2.momentum", "layers.3.initializer"}
    assert "did you mean 'relu'" in where["layers.1"]
    assert "did you mean 'he_normal'" in where["layers.3.initializer"]


def test_a_batch_norm_stack_learns_and_validates_in_evaluation_mode():
    data = blobs()
    model, history = train(MLPTrain(**{**STACK_SMALL, "epochs": 8}, layers=BN_STACK), data)
    assert history[-1].val_accuracy > 0.9
    validation = data.split("validation")
    # the recorded validation loss is the evaluation-mode loss: running statistics, no dropout
    assert history[-1].val_loss == pytest.approx(model.loss(validation.x, validation.y), rel=1e-6)
    assert not np.all(model.layer_state[1]["running_var"] == 1)


def test_a_batch_of_one_row_is_refused_with_batch_norm():
    data = blobs(n=85)  # 68 training rows in batches of 67: a last batch of 1
    with pytest.raises(DataError, match="batch_norm needs at least 2 rows per training batch.*"
                                        "last batch of 1; change batch_size"):
        train(MLPTrain(**{**STACK_SMALL, "batch_size": 67}, layers=BN_STACK), data)


def test_early_stopping_restores_the_best_epochs_running_statistics():
    spec = MLPTrain(**{**STACK_SMALL, "epochs": 30, "optimizer": {"kind": "sgd", "lr": 0.5}},
                    layers=BN_STACK, early_stopping={"patience": 1})
    model, history = train(spec, blobs())
    best = int(np.argmin([e.val_loss for e in history])) + 1
    assert best < len(history)
    at_best, _ = train(spec.model_copy(update={"epochs": best, "early_stopping": None}), blobs())
    assert np.array_equal(model.params, at_best.params)
    assert np.array_equal(model.stats, at_best.stats)


def test_interrupted_batch_norm_run_resumes_bit_identical(tmp_path):
    spec = MLPTrain(**{**STACK_SMALL, "epochs": 4, "optimizer": {"kind": "adam", "lr": 0.01}},
                    layers=BN_STACK)
    whole, whole_history = train(spec, blobs())
    with pytest.raises(KeyboardInterrupt):
        spec.run({"data": blobs()}, StageContext(seed=0, progress=StopAfter(2),
                                                 checkpoint_dir=tmp_path))
    out = spec.run({"data": blobs()}, StageContext(seed=0, checkpoint_dir=tmp_path))
    assert np.array_equal(out["model"].params, whole.params)
    assert np.array_equal(out["model"].stats, whole.stats)
    assert [e.layers for e in out["history"]] == [e.layers for e in whole_history]


# --- per-layer diagnostics -------------------------------------------------------------------------

def test_diagnostics_of_one_full_batch_sgd_step_by_hand():
    """One epoch of one batch: the gradient norm is that step's, the update ratio is
    lr |g| / |w| (plain SGD), the dead fraction is that of the final weights on validation."""
    data = blobs(n=100)
    train_split, validation = data.split("train"), data.split("validation")
    spec = MLPTrain(hidden=[12], epochs=1, batch_size=80, shuffle=False,
                    optimizer={"kind": "sgd", "lr": 0.5}, dtype="float64")
    model, history = train(spec, data)
    by_hand = MLP([4, 12, 3], "relu", "cross_entropy", "float64", init="he_normal",
                  rng=np.random.default_rng(0))
    before = by_hand.params.copy()
    by_hand.backward(by_hand.loss_fn.gradient(by_hand.forward(train_split.x), train_split.y))
    entries = {e["layer"]: e for e in history[0].layers}
    assert sorted(entries) == [0, 1, 2]  # dense, relu, dense (output)
    for i, part in by_hand.param_slices():
        g, w = by_hand.grads[part], before[part]
        assert entries[i]["grad_norm"] == pytest.approx(np.linalg.norm(g), rel=1e-9)
        assert entries[i]["update_ratio"] == pytest.approx(0.5 * np.linalg.norm(g) / np.linalg.norm(w),
                                                           rel=1e-9)
        assert entries[i]["weight_norm"] == pytest.approx(np.linalg.norm(model.params[part]), rel=1e-12)
    z = validation.x @ model.W[0] + model.b[0]  # (n_val, 12) the relu's input
    assert entries[1]["dead"] == pytest.approx(np.mean(np.all(z <= 0, axis=0)))
    assert entries[1]["kind"] == "relu" and "grad_norm" not in entries[1]


def test_saturated_units_of_tanh_and_diagnostics_off():
    data = blobs()
    model, history = train(MLPTrain(**{**SMALL, "activation": "tanh"}), data)
    z = data.split("validation").x @ model.W[0] + model.b[0]
    saturated = np.all(1 - np.tanh(z) ** 2 < 0.01, axis=0)
    assert history[-1].layers[1] == {"layer": 1, "kind": "tanh", "saturated": float(np.mean(saturated))}
    _, quiet = train(MLPTrain(**SMALL, diagnostics=False), data)
    assert all(e.layers is None for e in quiet)
