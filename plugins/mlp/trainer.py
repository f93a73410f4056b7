"""The ``mlp_train`` stage: mini-batch training of an ``MLP`` on the ``train`` split.

    resume from the stage's checkpoint, if one matches this spec
    for each epoch:
        rates = the schedule's rate for each step of the epoch (one rate for a per-epoch one)
        the epoch's rows: the train split, plus fresh distorted copies with ``augment: fresh``
        shuffle the training rows with the stage's seeded generator
        for each batch of ``batch_size`` rows (the last one may be smaller):
            output = model.forward(x_batch, rng)            (b, k) training mode
            value, gradient = the loss and dL/doutput (b, k) (one softmax for cross-entropy;
                              class-weighted with ``class_weight``)
            a non-finite loss stops the run (RunError naming epoch and step)
            model.backward(gradient)                        fills model.grads (P,)
            l1 > 0: model.grads += l1 * sign(W) on the dense weights
            optimizer.step(model.params, model.grads, ...)  updates model.params (P,) in place
                              (decaying the weights only with ``decay_biases: false``)
            (diagnostics: gradient norms per layer; update ratios on sampled steps)
        train loss / accuracy come from the batch outputs (no second pass over the train split);
        val loss / accuracy from one batched pass over the ``validation`` split, if there is one
        (evaluation mode: running statistics, no dropout; dead/saturated units per activation).
        early stopping watches val_loss or val_accuracy and keeps the best weights
        checkpoint: weights, running statistics, optimiser state, generator state, epoch, history
    restore the best weights (early stopping), delete the checkpoint

Everything is cast to the model's dtype once, before the first epoch, and the batch buffers are
allocated once. The same spec and seed give bit-identical weights, with or without an
interruption and resume in between. Label smoothing, class weights and the L1 penalty change
the training objective only: the validation loss is the plain loss against the true labels, and
the reported train loss leaves out the L1 term.
"""

from __future__ import annotations

import json
import math
import time
import zipfile
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping

import numpy as np
from pydantic import (BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, SerializeAsAny,
                      ValidationError, ValidationInfo, WithJsonSchema, field_validator,
                      model_serializer, model_validator)
from pydantic_core import PydanticCustomError

from pipeline.artifacts import Dataset
from pipeline.errors import DataError, PluginError, RunError
from pipeline.files import write_json, write_npz
from pipeline.registry import default_registry, unknown_name_message
from pipeline.resources import require_memory
from pipeline.spec import Seed, StageContext, StageSpec
from plugins.augment import TrainingArrays
from plugins.mlp import activations, init as initializers, layers as layer_plugins, losses, optim, \
    regularize, schedules
from plugins.mlp.diagnostics import LayerDiagnostics, NoDiagnostics
from plugins.mlp.layers import Layer
from plugins.mlp.losses import as_one_hot, smooth_labels
from plugins.mlp.model import MLP
from plugins.mlp.optim import SGD, Optimizer
from plugins.mlp.schedules import Constant, Schedule


@dataclass
class Epoch:
    """What one epoch of training measured."""

    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    lr: float  # the epoch's first step's learning rate
    seconds: float
    lr_end: float | None = None  # its last step's (differs from lr for a per-step schedule)
    layers: list[dict[str, Any]] | None = None  # per-layer diagnostics (plugins/mlp/diagnostics.py)


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


class EarlyStopping(BaseModel):
    """Stop when ``monitor`` has not improved by at least ``min_delta`` for ``patience`` epochs;
    the best epoch's weights are restored at the end (``restore_best``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    monitor: Literal["val_loss", "val_accuracy"] = "val_loss"
    patience: int = Field(default=3, ge=0, description="Epochs without improvement tolerated.")
    min_delta: float = Field(default=0.0, ge=0, description="Smallest change that counts.")
    restore_best: bool = True

    def improved(self, value: float, best: float | None) -> bool:
        if best is None:
            return True
        if self.monitor == "val_loss":
            return value < best - self.min_delta
        return value > best + self.min_delta


def _from_registry(group: str, what: str, base: type, check, value: Any, example: str) -> Any:
    """``{kind: name, ...}`` -> the registered class for ``kind`` in ``group``, validated; its own
    field errors come out under ``<field>.<its field>``; a bad kind under ``<field>.kind``."""
    if isinstance(value, base):
        return value
    if not isinstance(value, Mapping):
        raise _plugin_error(f"expected a mapping such as {example}")
    registry = default_registry()
    kind = value.get("kind")
    if kind not in registry.names(group):
        message = (unknown_name_message(what, str(kind), registry.names(group))
                   if "kind" in value else f"missing; installed: {', '.join(registry.names(group))}")
        raise ValidationError.from_exception_data(what, [  # reported at <field>.kind
            {"type": _plugin_error(message), "loc": ("kind",), "input": kind}])
    try:
        cls = registry.load(group, kind, check=check)
    except PluginError as exc:
        raise _plugin_error(str(exc)) from None
    return cls.model_validate(value)  # its errors keep their paths: optimizer.lr


def _layers(entries: list[Any]) -> list[Layer]:
    """Each entry as a ``Layer``; every problem of every entry reported at once, at
    ``<index>[.<field>]`` (pydantic prefixes ``layers``)."""
    resolved, problems = [], []
    for index, entry in enumerate(entries):
        try:
            resolved.append(layer_plugins.resolve(entry))
        except ValidationError as exc:  # the layer's own fields
            problems += [{"type": _plugin_error(e["msg"]), "loc": (index, *e["loc"]),
                          "input": e["input"]} for e in exc.errors()]
        except (ValueError, PluginError) as exc:  # an unknown kind, fields on an activation
            at = (index, "kind") if isinstance(entry, Mapping) and "kind" in entry else (index,)
            problems.append({"type": _plugin_error(str(exc)), "loc": at, "input": entry})
    if problems:
        raise ValidationError.from_exception_data("layers", problems)
    return resolved


#: What an editor may check of a ``layers:`` list (each kind's own fields are checked on load).
_LAYERS_SCHEMA = {"anyOf": [{"type": "null"}, {"type": "array", "items": {"anyOf": [
    {"type": "string", "description": "an activation's name, e.g. relu"},
    {"type": "object", "required": ["kind"], "properties": {"kind": {"type": "string"}},
     "description": "a registered layer, e.g. {kind: dense, units: 256}"}]}}]}


class MLPTrain(StageSpec):
    """Train a multilayer perceptron on the ``train`` split (mini-batch, seeded, reproducible)."""

    kind: Literal["mlp_train"] = "mlp_train"
    #: What a search ranks by (``history.json``, the last epoch): validation accuracy first.
    metric_directions = {"val_accuracy": "max", "val_loss": "min", "train_accuracy": "max",
                         "train_loss": "min"}
    hidden: list[PositiveInt] = [256, 128]
    activation: str = "relu"
    loss: str = "cross_entropy"
    init: str = "he_normal"
    optimizer: SerializeAsAny[Optimizer] = SGD(lr=0.01)
    schedule: SerializeAsAny[Schedule] = Constant()
    batch_size: PositiveInt = 128
    epochs: PositiveInt = 10
    dropout: float = Field(default=0.0, ge=0, lt=1,
                           description="Probability of dropping each hidden unit while training.")
    layers: Annotated[SerializeAsAny[list[Layer]] | None, WithJsonSchema(_LAYERS_SCHEMA)] = Field(
        default=None, description="The stack before the output layer, e.g. [{kind: dense, units: "
                                  "256}, {kind: batch_norm}, relu]; instead of hidden, activation "
                                  "and dropout (their short form).")
    diagnostics: bool = Field(default=True, description="Record per-layer gradient and weight "
                                                        "norms, update ratios and dead units.")
    label_smoothing: float = Field(default=0.0, ge=0, lt=1,
                                   description="Mix this much of the uniform distribution into "
                                               "the one-hot training targets.")
    l1: float = Field(default=0.0, ge=0,
                      description="L1 penalty: adds l1 * sum(|W|) over the dense layers' weights "
                                  "(not biases) to each batch's mean loss, so l1 * sign(W) to "
                                  "their gradient. Reported losses are the data loss, without it.")
    decay_biases: bool = Field(default=True,
                               description="Let the optimizer's weight_decay act on the biases "
                                           "too (PyTorch's default); false decays the dense "
                                           "layers' weights only.")
    class_weight: Literal["balanced"] | list[PositiveFloat] | None = Field(
        default=None,
        description="Weight each sample's loss by its class's weight, as PyTorch's "
                    "cross_entropy(weight=...): 'balanced' (n / (k * count) on the train split, "
                    "scikit-learn's formula) or one weight per class. The loss must support it.")
    early_stopping: EarlyStopping | None = None
    dtype: Literal["float32", "float64"] = "float32"
    seed: Seed | None = None
    shuffle: bool = True

    inputs = ("data",)
    optional_inputs = ("augmentation", "normalizer")  # fresh distortions, drawn in pixel space
    outputs = ("model", "history")

    @field_validator("activation")
    @classmethod
    def _activation_is_registered(cls, name: str) -> str:
        return _check_name("activations", "activation", name, activations.check)

    @field_validator("layers", mode="before")
    @classmethod
    def _layers_from_registry(cls, value: Any) -> Any:
        """Each entry -> a ``Layer``; a problem is reported at ``layers.<i>[.<field>]``."""
        if value is None:
            return None
        if not isinstance(value, (list, tuple)):
            raise _plugin_error("expected a list such as [{kind: dense, units: 256}, relu]")
        return _layers(list(value))

    @model_validator(mode="after")
    def _one_form_of_the_stack(self) -> "MLPTrain":
        short = sorted({"hidden", "activation", "dropout"} & self.model_fields_set)
        if self.layers is not None and short:
            raise ValueError(f"give either layers or {', '.join(short)} (the short form of the "
                             f"same stack), not both")
        return self

    @model_serializer(mode="wrap")
    def _dump_one_form(self, handler: Any) -> dict[str, Any]:
        """Only the form the stack was given in (so a dump validates again)."""
        data = handler(self)
        for name in ("hidden", "activation", "dropout") if self.layers is not None else ("layers",):
            data.pop(name, None)
        return data

    @field_validator("loss")
    @classmethod
    def _loss_is_registered(cls, name: str) -> str:
        return _check_name("losses", "loss", name, losses.check)

    @field_validator("class_weight")
    @classmethod
    def _loss_supports_weights(cls, value: Any, info: ValidationInfo) -> Any:
        name = info.data.get("loss")  # absent when the loss itself did not validate
        if value is not None and name is not None:
            loss = default_registry().load("losses", name, check=losses.check)
            if not callable(getattr(loss, "weighted", None)):
                raise _plugin_error(f"loss {name!r} does not support class weights (it has no "
                                    f"weighted(output, target, weight, smoothing)); use "
                                    f"cross_entropy or drop class_weight")
        return value

    @field_validator("init")
    @classmethod
    def _init_is_registered(cls, name: str) -> str:
        return _check_name("initializers", "initializer", name, initializers.check)

    @field_validator("optimizer", mode="before")
    @classmethod
    def _optimizer_from_registry(cls, value: Any) -> Any:
        """``{kind: sgd, lr: 0.01}`` -> the registered optimiser class for ``kind``, validated."""
        return _from_registry("optimizers", "optimizer", Optimizer, optim.check, value,
                              "{kind: sgd, lr: 0.01}")

    @field_validator("schedule", mode="before")
    @classmethod
    def _schedule_from_registry(cls, value: Any) -> Any:
        """``{kind: cosine}`` -> the registered schedule class for ``kind``, validated."""
        return _from_registry("schedules", "schedule", Schedule, schedules.check, value,
                              "{kind: cosine}")

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
        """pydantic's schema with the installed activations, losses, initializers (enums),
        optimizers and schedules (one variant per kind): see ``plugins.mlp.schema``."""
        from plugins.mlp.schema import fill_in_installed

        json_schema = handler(core_schema)
        fill_in_installed(handler.resolve_ref_schema(json_schema)["properties"],
                          default_registry(),
                          {"activations": activations.check, "losses": losses.check,
                           "initializers": initializers.check, "optimizers": optim.check,
                           "schedules": schedules.check})
        return json_schema

    def code_modules(self) -> list[str]:
        """The modules of the activation, loss, initializer, optimizer and schedule it uses by
        name: a third party's activation is part of what this stage computes."""
        registry = default_registry()
        chosen = [("losses", self.loss), ("initializers", self.init),
                  ("optimizers", self.optimizer.kind), ("schedules", self.schedule.kind)]
        for layer in self.layers if self.layers is not None else [self.activation]:
            kind = getattr(layer, "kind", layer)
            chosen.append(("layers" if kind in registry.names("layers") else "activations", kind))
        return sorted({registry.entry(group, name).target.partition(":")[0]
                       for group, name in chosen})

    def _check_memory(self, d: int, k: int, n: int, dtype: np.dtype, context: StageContext) -> None:
        """Refuse, naming ``hidden`` (or ``layers``) and ``batch_size``, a network and batch that
        do not fit in the memory available, before any of it is allocated."""
        field = "hidden" if self.layers is None else "layers"
        units = list(self.hidden) if self.layers is None else [
            int(getattr(entry, "units")) for entry in self.layers
            if getattr(entry, "kind", entry) == "dense" and hasattr(entry, "units")]
        sizes = [d, *units, k]
        params = sum(i * o + o for i, o in zip(sizes[:-1], sizes[1:]))
        batch = min(self.batch_size, n)
        # Weights, gradients, up to two optimiser slots (Adam) and the best weights kept for
        # early stopping; per batch row: its inputs and targets, z and a per layer, and deltas.
        per_row = d + k + 2 * sum(sizes[1:]) + sum(units)
        needed = (5 * params + batch * per_row) * dtype.itemsize
        require_memory(needed, f"stages[{context.stage_index}] ({self.kind}): {field} "
                       f"{units} with batch_size {self.batch_size} ({params} parameters)",
                       "use fewer or smaller hidden layers, or a smaller batch_size")

    def _model(self, d: int, k: int, rng: np.random.Generator) -> MLP:
        """The network for ``d`` input features and ``k`` classes, its weights drawn from ``rng``."""
        if self.layers is not None:
            return MLP([d, k], loss=self.loss, dtype=self.dtype, init=self.init, rng=rng,
                       layers=self.layers)
        return MLP([d, *self.hidden, k], self.activation, self.loss, self.dtype, init=self.init,
                   rng=rng, dropout=self.dropout)

    def run(self, inputs: Mapping[str, Any], context: StageContext) -> dict[str, Any]:
        data: Dataset = inputs["data"]
        dtype = np.dtype(self.dtype)
        k = _n_classes(data)
        x, y, labels, val = self._arrays(data, k, dtype)  # val: (x, y, labels) or None
        # each epoch's rows: these, or the originals and fresh distorted copies (augment)
        epoch_rows = TrainingArrays(inputs.get("augmentation"), inputs.get("normalizer"),
                                    x, y, labels)
        n, d = epoch_rows.rows, x.shape[1]

        # --- model, optimiser and the state a checkpoint carries -----------------------------
        self._check_memory(d, k, n, dtype, context)
        seed = self.seed if self.seed is not None else context.seed
        rng = np.random.default_rng(seed)  # draws the initial weights, then orders and masks
        model = self._model(d, k, rng)
        decay_mask, penalty = self._regularizers(model)
        state = self.optimizer.start(model.params, decay_mask)
        run = _RunState()
        checkpoint = Checkpoint(context.checkpoint_dir) if context.checkpoint_dir else None
        if checkpoint is not None and checkpoint.load(model, state, rng, run, self, seed):
            context.progress.log(f"resuming from the checkpoint of epoch {run.epoch}")
        B = min(self.batch_size, n)
        _check_batch_rows(model, n, B)
        loop = _Loop(model, self.optimizer, state, self._objective(model.loss_fn, labels, k),
                     penalty, rng, B, math.ceil(n / B), context.progress,
                     np.empty((B, d), dtype=dtype), np.empty((B, k), dtype=dtype))
        diagnostics = loop.diagnostics = \
            LayerDiagnostics(model, loop.n_batches) if self.diagnostics else NoDiagnostics()

        while run.epoch < self.epochs and not run.stopped:
            epoch = run.epoch + 1
            started = time.perf_counter()
            rates = schedules.epoch_rates(self.schedule, epoch, self.optimizer.lr, self.epochs,
                                          loop.n_batches, run.history.epochs)  # Python floats
            loss_sum, correct = self._train_epoch(loop, epoch, *epoch_rows.epoch(epoch), rates)
            record = Epoch(epoch, loss_sum / n, correct / n, None, None, rates[0], 0.0, rates[-1])
            if val is not None:
                output = model.output(val[0], watch=diagnostics.watch)  # (n_val, k)
                record.val_loss = model.loss_fn.value(output, val[1])
                record.val_accuracy = float(np.mean(output.argmax(axis=1) == val[2]))
            record.layers = diagnostics.record()
            record.seconds = time.perf_counter() - started
            run.history.epochs.append(record)
            run.epoch = epoch
            loop.progress.log(_epoch_line(record, self.epochs))
            if epoch < self.epochs and context.report(epoch, asdict(record)):
                break  # a tuner pruned this run (the last epoch is the result, not reported)
            self._watch(run, record, model, loop.progress)
            if checkpoint is not None:
                checkpoint.save(model, state, rng, run, self, seed)

        if self.early_stopping is not None and self.early_stopping.restore_best \
                and run.best_params is not None:
            model.params[...] = run.best_params  # the best epoch's weights and statistics
            model.stats[...] = run.best_stats
        if checkpoint is not None:
            checkpoint.remove()  # the stage's result is complete; the stage cache keeps it
        return {"model": model, "history": run.history}

    def _arrays(self, data: Dataset, k: int, dtype: np.dtype):
        """The train split as (x (n, d), targets (n, k), labels (n,)), cast and laid out once,
        and the validation split's (x, one-hot, labels), or None when there is none."""
        train = data.split("train")
        validation = data.splits.get("validation")
        if validation is not None and len(validation) == 0:
            validation = None
        if len(train) == 0:
            raise DataError(f"dataset {data.name}: the train split is empty")
        if self.early_stopping is not None and validation is None:
            raise DataError(f"early_stopping monitors {self.early_stopping.monitor}, but dataset "
                            f"{data.name} has no validation split (add a split stage)")
        try:
            x = np.ascontiguousarray(train.x.reshape(len(train), -1), dtype=dtype)  # (n, d)
            y = np.ascontiguousarray(as_one_hot(train.y, k, dtype))  # (n, k)
            labels = y.argmax(axis=1)  # (n,)
            val = None
            if validation is not None:
                x_val = np.ascontiguousarray(validation.x.reshape(len(validation), -1), dtype=dtype)
                y_val = as_one_hot(validation.y, k, dtype)  # (n_val, k)
                val = (x_val, y_val, y_val.argmax(axis=1))  # labels (n_val,)
        except ValueError as exc:
            raise DataError(f"dataset {data.name}: {exc}") from exc
        if self.label_smoothing and self.class_weight is None:  # weighted: the loss smooths
            y = smooth_labels(y, self.label_smoothing)  # (n, k) training targets only
        return x, y, labels, val

    def _train_epoch(self, loop: "_Loop", epoch: int, x: np.ndarray, y: np.ndarray,
                     labels: np.ndarray, rates: list[float]) -> tuple[float, int]:
        """One pass over the shuffled rows x (n, d), y (n, k): (sum of batch losses times their
        rows, correctly classified rows). Updates ``loop.model.params`` in place."""
        model, diagnostics, progress, B = loop.model, loop.diagnostics, loop.progress, loop.B
        n = x.shape[0]
        order = loop.rng.permutation(n) if self.shuffle else np.arange(n)  # (n,)
        loss_sum, correct, lr = 0.0, 0, rates[0]
        diagnostics.begin_epoch()
        progress.begin(f"epoch {epoch}/{self.epochs}", total=loop.n_batches)
        try:  # overflow ends as a non-finite loss, reported with epoch and step: no warnings
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                for step, start in enumerate(range(0, n, B), start=1):
                    rows = order[start:start + B]  # (b,) the last batch may be smaller
                    b = rows.shape[0]
                    # rows are a permutation of range(n): "clip" never clips, and unlike the
                    # default "raise" it gathers straight into the buffer
                    xb = np.take(x, rows, axis=0, out=loop.xb[:b], mode="clip")  # (b, d)
                    yb = np.take(y, rows, axis=0, out=loop.yb[:b], mode="clip")  # (b, k)
                    lr = rates[step - 1]
                    output = model.forward(xb, loop.rng)  # (b, k)
                    batch_loss, output_grad = loop.objective(output, yb)
                    if not math.isfinite(batch_loss):
                        raise RunError(
                            f"training diverged: the loss is {batch_loss} in epoch {epoch}, "
                            f"step {step} of {loop.n_batches} (learning rate {lr:g}); try a "
                            f"smaller learning rate, gradient clipping (optimizer.clip_norm) or "
                            f"standardized inputs")
                    model.backward(output_grad)  # (b, k) in; fills model.grads (P,)
                    if loop.penalty is not None:
                        loop.penalty.add_gradient(model.params, model.grads)  # + l1 sign(W)
                    diagnostics.after_backward(step)
                    loop.optimizer.step(model.params, model.grads, loop.state, lr)  # (P,)
                    diagnostics.after_update()
                    loss_sum += batch_loss * b
                    correct += int(np.count_nonzero(output.argmax(axis=1) == labels[rows]))
                    progress.advance(1, loss=batch_loss, samples=b)
        finally:
            progress.end()  # on Ctrl-C too: the last complete epoch's checkpoint stays
        if not np.all(np.isfinite(model.params)):
            raise RunError(f"training diverged: non-finite weights after epoch {epoch} "
                           f"(learning rate {lr:g}); try a smaller learning rate")
        return loss_sum, correct

    def _watch(self, run: "_RunState", record: Epoch, model: MLP, progress: Any) -> None:
        """Early stopping's look at the epoch just finished (nothing without early_stopping)."""
        if self.early_stopping is None:
            return
        run.watch(self.early_stopping, record, model)
        if run.stopped:
            progress.log(f"early stopping after epoch {record.epoch}: "
                         f"{self.early_stopping.monitor} best in epoch {run.best_epoch}")

    def _objective(self, loss_fn: Any, labels: np.ndarray, k: int):
        """``(output (b, k), targets (b, k)) -> (batch loss, dL/doutput (b, k))``: the loss's own,
        or with ``class_weight`` its ``weighted`` form, which applies label smoothing itself
        (PyTorch's order: the targets stay one-hot)."""
        if self.class_weight is None:
            return partial(losses.value_and_gradient, loss_fn)
        weight = regularize.class_weights(self.class_weight, labels, k)  # (k,) float64
        return partial(loss_fn.weighted, weight=weight, smoothing=self.label_smoothing)

    def _regularizers(self, model: MLP) -> tuple[np.ndarray | None, "regularize.L1Penalty | None"]:
        """The weight-decay mask (None: everything decays) and the L1 penalty (None without l1),
        both from the model's parameter groups."""
        groups, size = model.parameter_groups(), model.params.size
        weights = regularize.kind_mask(groups, size, ["weight"])  # (P,) the dense weights
        decay_mask = None if self.decay_biases else weights
        penalty = regularize.L1Penalty(self.l1, weights, model.dtype) if self.l1 else None
        return decay_mask, penalty


@dataclass
class _Loop:
    """What the batch loop of one run works with, built once before the first epoch."""

    model: MLP
    optimizer: Optimizer
    state: dict  # the optimiser's, carried by checkpoints
    objective: Any  # (output (b, k), targets (b, k)) -> (batch loss, dL/doutput (b, k))
    penalty: Any  # L1Penalty, or None without l1
    rng: np.random.Generator  # orders the rows, draws dropout masks
    B: int  # batch size
    n_batches: int
    progress: Any
    xb: np.ndarray  # (B, d) batch rows gathered here
    yb: np.ndarray  # (B, k)
    diagnostics: Any = None  # LayerDiagnostics or NoDiagnostics


@dataclass
class _RunState:
    """What a training run carries from epoch to epoch besides weights and optimiser state."""

    epoch: int = 0  # epochs completed
    history: History = field(default_factory=History)
    best: float | None = None  # early stopping: best monitored value, its epoch, its weights
    best_epoch: int = 0
    bad_epochs: int = 0
    stopped: bool = False
    best_params: np.ndarray | None = None
    best_stats: np.ndarray | None = None

    def watch(self, rule: EarlyStopping, record: Epoch, model: MLP) -> None:
        value = getattr(record, rule.monitor)
        if rule.improved(value, self.best):
            self.best, self.best_epoch, self.bad_epochs = value, record.epoch, 0
            self.best_params = model.params.copy()  # (P,)
            self.best_stats = model.stats.copy()  # (S,)
        else:
            self.bad_epochs += 1
            self.stopped = self.bad_epochs > rule.patience


class Checkpoint:
    """``checkpoint.npz`` in the stage's checkpoint folder, rewritten atomically after every
    epoch: the weights, the optimiser's state arrays, the best weights so far, and one JSON string
    with the epoch, history, early-stopping state and the random generator's state. Plain arrays,
    read with ``allow_pickle=False``. Resuming from it continues the exact random stream, so the
    result is bit-identical to an uninterrupted run."""

    def __init__(self, directory: Path):
        self.path = Path(directory) / "checkpoint.npz"

    def save(self, model: MLP, state: dict, rng: np.random.Generator, run: _RunState,
             spec: "MLPTrain", seed: int) -> None:
        meta = {"format": "nnpipe-mlp-checkpoint/1", "spec": spec.model_dump(mode="json"),
                "seed": seed,
                "epoch": run.epoch, "history": run.history.to_json(),
                "best": run.best, "best_epoch": run.best_epoch, "bad_epochs": run.bad_epochs,
                "stopped": run.stopped, "rng": rng.bit_generator.state}
        arrays = {"params": model.params, "stats": model.stats, "meta": np.array(json.dumps(meta))}
        arrays.update({f"state.{name}": np.asarray(value) for name, value in state.items()
                       if not name.startswith("_")})  # "_name": a work buffer
        if run.best_params is not None:
            arrays["best_params"], arrays["best_stats"] = run.best_params, run.best_stats
        write_npz(self.path, arrays)

    def load(self, model: MLP, state: dict, rng: np.random.Generator, run: _RunState,
             spec: "MLPTrain", seed: int) -> bool:
        """Fill everything from the checkpoint if there is a matching one; False if none."""
        if not self.path.is_file():
            return False
        try:
            with np.load(self.path, allow_pickle=False) as npz:
                meta = json.loads(str(npz["meta"]))
                if meta.get("spec") != spec.model_dump(mode="json") or meta.get("seed") != seed \
                        or npz["params"].shape != model.params.shape:
                    return False  # another configuration's: start afresh (it is overwritten)
                model.params[...] = npz["params"]
                model.stats[...] = npz["stats"]
                for name, value in state.items():
                    if not name.startswith("_"):
                        value[...] = npz[f"state.{name}"]
                if "best_params" in npz.files:
                    run.best_params = npz["best_params"].copy()
                    run.best_stats = npz["best_stats"].copy()
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise DataError(f"{self.path}: unreadable checkpoint ({exc}); delete it to start "
                            f"afresh") from exc
        rng.bit_generator.state = meta["rng"]
        run.epoch, run.best, run.best_epoch = meta["epoch"], meta["best"], meta["best_epoch"]
        run.bad_epochs, run.stopped = meta["bad_epochs"], meta["stopped"]
        run.history = History([Epoch(**e) for e in meta["history"]])
        return True

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def _check_batch_rows(model: MLP, n: int, batch: int) -> None:
    """A ``DataError`` when a layer needs more rows per training batch than a batch (the last,
    partial one included) has: batch norm's unbiased variance needs 2."""
    need = max(getattr(layer, "min_rows", 1) for layer in model.layers)
    smallest = n % batch or batch
    if smallest < need:
        kinds = sorted({l.kind for l in model.layers if getattr(l, "min_rows", 1) == need})
        raise DataError(f"{', '.join(kinds)} needs at least {need} rows per training batch, but "
                        f"{n} training rows in batches of {batch} leave a last batch of "
                        f"{smallest}; change batch_size")


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
