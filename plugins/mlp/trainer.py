"""The ``mlp_train`` stage: mini-batch training of an ``MLP`` on the ``train`` split.

    for each epoch:
        shuffle the training rows with the stage's seeded generator
        for each batch of ``batch_size`` rows (the last one may be smaller):
            output = model.forward(x_batch)                 (b, k)
            model.backward(loss.gradient(output, y_batch))  fills model.grads (P,)
            optimizer.step(model.params, model.grads, ...)  updates model.params (P,) in place
        train loss / accuracy come from the batch outputs (no second pass over the train split);
        val loss / accuracy from one batched pass over the ``validation`` split, if there is one.

Everything is cast to the model's dtype once, before the first epoch, and the batch buffers are
allocated once. The same spec and seed give bit-identical weights.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

import numpy as np
from pydantic import PositiveInt, SerializeAsAny, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from pipeline.artifacts import Dataset
from pipeline.errors import DataError, PluginError, RunError
from pipeline.files import write_json
from pipeline.registry import default_registry, unknown_name_message
from pipeline.spec import StageContext, StageSpec
from plugins.mlp import activations, init as initializers, losses, optim
from plugins.mlp.losses import as_one_hot
from plugins.mlp.model import MLP
from plugins.mlp.optim import SGD, Optimizer


@dataclass
class Epoch:
    """What one epoch of training measured."""

    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    lr: float
    seconds: float


@dataclass
class History:
    """The per-epoch record of a training run; saved as ``history.json`` (a list of objects)."""

    epochs: list[Epoch] = field(default_factory=list)

    def to_json(self) -> list[dict[str, Any]]:
        return [asdict(e) for e in self.epochs]

    def save(self, directory: Path | str) -> list[str]:
        write_json(Path(directory) / "history.json", self.to_json())
        return ["history.json"]

    def __len__(self) -> int:
        return len(self.epochs)

    def __getitem__(self, index: int) -> Epoch:
        return self.epochs[index]


def _plugin_error(message: str) -> PydanticCustomError:
    """A validation error pydantic reports with the field's path, beside every other problem."""
    return PydanticCustomError("plugin", "{message}", {"message": message})


def _check_name(group: str, what: str, name: str, check) -> str:
    """``name`` if it is registered in ``group`` and loads, else a validation error listing the
    installed names and the closest one."""
    registry = default_registry()
    if name not in registry.names(group):
        raise _plugin_error(unknown_name_message(what, name, registry.names(group)))
    try:
        registry.load(group, name, check=check)
    except PluginError as exc:
        raise _plugin_error(str(exc)) from None
    return name


class MLPTrain(StageSpec):
    """Train a multilayer perceptron on the ``train`` split (mini-batch, seeded, reproducible)."""

    kind: Literal["mlp_train"] = "mlp_train"
    hidden: list[PositiveInt] = [256, 128]
    activation: str = "relu"
    loss: str = "cross_entropy"
    init: str = "he_normal"
    optimizer: SerializeAsAny[Optimizer] = SGD(lr=0.01)
    batch_size: PositiveInt = 128
    epochs: PositiveInt = 10
    dtype: Literal["float32", "float64"] = "float32"
    seed: int | None = None
    shuffle: bool = True

    inputs = ("data",)
    outputs = ("model", "history")

    @field_validator("activation")
    @classmethod
    def _activation_is_registered(cls, name: str) -> str:
        return _check_name("activations", "activation", name, activations.check)

    @field_validator("loss")
    @classmethod
    def _loss_is_registered(cls, name: str) -> str:
        return _check_name("losses", "loss", name, losses.check)

    @field_validator("init")
    @classmethod
    def _init_is_registered(cls, name: str) -> str:
        return _check_name("initializers", "initializer", name, initializers.check)

    @field_validator("optimizer", mode="before")
    @classmethod
    def _optimizer_from_registry(cls, value: Any) -> Any:
        """``{kind: sgd, lr: 0.01}`` -> the registered optimiser class for ``kind``, validated;
        its own field errors come out under ``optimizer.<field>``."""
        if isinstance(value, Optimizer):
            return value
        if not isinstance(value, Mapping):
            raise _plugin_error("expected a mapping such as {kind: sgd, lr: 0.01}")
        registry = default_registry()
        kind = value.get("kind")
        if kind not in registry.names("optimizers"):
            message = (unknown_name_message("optimizer", str(kind), registry.names("optimizers"))
                       if "kind" in value else
                       f"missing; installed: {', '.join(registry.names('optimizers'))}")
            raise ValidationError.from_exception_data("optimizer", [  # reported at optimizer.kind
                {"type": _plugin_error(message), "loc": ("kind",), "input": kind}])
        try:
            optimizer_class = registry.load("optimizers", kind, check=optim.check)
        except PluginError as exc:
            raise _plugin_error(str(exc)) from None
        return optimizer_class.model_validate(value)  # its errors keep their paths: optimizer.lr

    def code_modules(self) -> list[str]:
        """The modules of the activation, loss, initializer and optimizer it uses by name: a
        third party's activation is part of what this stage computes."""
        registry = default_registry()
        chosen = [("activations", self.activation), ("losses", self.loss),
                  ("initializers", self.init), ("optimizers", self.optimizer.kind)]
        return sorted({registry.entry(group, name).target.partition(":")[0]
                       for group, name in chosen})

    def run(self, inputs: Mapping[str, Any], context: StageContext) -> dict[str, Any]:
        data: Dataset = inputs["data"]
        dtype = np.dtype(self.dtype)
        train = data.split("train")
        validation = data.splits.get("validation")
        if validation is not None and len(validation) == 0:
            validation = None
        if len(train) == 0:
            raise DataError(f"dataset {data.name}: the train split is empty")
        k = _n_classes(data)

        # --- data, cast and laid out once ---------------------------------------------------
        try:
            x = np.ascontiguousarray(train.x.reshape(len(train), -1), dtype=dtype)  # (n, d)
            y = np.ascontiguousarray(as_one_hot(train.y, k, dtype))  # (n, k)
            labels = y.argmax(axis=1)  # (n,)
            if validation is not None:
                x_val = np.ascontiguousarray(validation.x.reshape(len(validation), -1), dtype=dtype)
                y_val = as_one_hot(validation.y, k, dtype)  # (n_val, k)
                labels_val = y_val.argmax(axis=1)  # (n_val,)
        except ValueError as exc:
            raise DataError(f"dataset {data.name}: {exc}") from exc
        n, d = x.shape

        # --- model and optimiser ------------------------------------------------------------
        seed = self.seed if self.seed is not None else context.seed
        rng = np.random.default_rng(seed)  # draws the initial weights, then each epoch's order
        model = MLP([d, *self.hidden, k], self.activation, self.loss, self.dtype,
                    init=self.init, rng=rng)
        loss_fn, optimizer = model.loss_fn, self.optimizer
        state = optimizer.init_state(model.params)
        lr = optimizer.lr

        B = min(self.batch_size, n)
        n_batches = math.ceil(n / B)
        xb_buffer = np.empty((B, d), dtype=dtype)  # (B, d) batch rows gathered here
        yb_buffer = np.empty((B, k), dtype=dtype)  # (B, k)
        history = History()
        progress = context.progress

        for epoch in range(1, self.epochs + 1):
            started = time.perf_counter()
            order = rng.permutation(n) if self.shuffle else np.arange(n)  # (n,)
            loss_sum, correct = 0.0, 0
            progress.begin(f"epoch {epoch}/{self.epochs}", total=n_batches)
            for start in range(0, n, B):
                rows = order[start:start + B]  # (b,) the last batch may be smaller
                b = rows.shape[0]
                # rows are a permutation of range(n): "clip" never clips, and unlike the default
                # "raise" it gathers straight into the buffer
                xb = np.take(x, rows, axis=0, out=xb_buffer[:b], mode="clip")  # (b, d)
                yb = np.take(y, rows, axis=0, out=yb_buffer[:b], mode="clip")  # (b, k)
                output = model.forward(xb)  # (b, k)
                batch_loss = loss_fn.value(output, yb)
                if not math.isfinite(batch_loss):
                    progress.end()
                    raise RunError(f"training diverged in epoch {epoch} (batch loss {batch_loss}); "
                                   f"try a smaller learning rate than {lr}")
                model.backward(loss_fn.gradient(output, yb))  # fills model.grads (P,)
                optimizer.step(model.params, model.grads, state, lr)  # model.params (P,)
                loss_sum += batch_loss * b
                correct += int(np.count_nonzero(output.argmax(axis=1) == labels[rows]))
                progress.advance(1, loss=batch_loss, samples=b)
            progress.end()

            record = Epoch(epoch, loss_sum / n, correct / n, None, None, lr, 0.0)
            if validation is not None:
                output = model.output(x_val)  # (n_val, k)
                record.val_loss = loss_fn.value(output, y_val)
                record.val_accuracy = float(np.mean(output.argmax(axis=1) == labels_val))
            record.seconds = time.perf_counter() - started
            history.epochs.append(record)
            progress.log(_epoch_line(record, self.epochs))

        return {"model": model, "history": history}


def _n_classes(data: Dataset) -> int:
    """k: the width of one-hot targets, else the number of class names, else max label + 1."""
    train_y = data.split("train").y
    if train_y.ndim == 2:
        return int(train_y.shape[1])
    if data.class_names:
        return len(data.class_names)
    return int(max(int(np.max(s.y)) for s in data.splits.values() if len(s)) + 1)


def _epoch_line(e: Epoch, epochs: int) -> str:
    line = f"epoch {e.epoch}/{epochs}  train loss {e.train_loss:.4f} acc {e.train_accuracy:.4f}"
    if e.val_loss is not None:
        line += f"  val loss {e.val_loss:.4f} acc {e.val_accuracy:.4f}"
    return line + f"  ({e.seconds:.1f} s)"
