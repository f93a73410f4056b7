"""``mlp_train``'s training loop: mini-batch training of an ``MLP`` on the ``train`` split.

The stage's spec (its fields and their validation) is ``plugins.mlp.trainer.MLPTrain``, whose
``run`` calls ``train`` here; the checkpoint a run resumes from is ``plugins.mlp.checkpoint``.

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
            every 64 steps and at the epoch's end: optimizer.flush_tiny(state) zeroes the
                              decaying moments' entries about to turn subnormal
            ema: average <- ema * average + (1 - ema) * params   (plugins.mlp.averaging)
            (diagnostics: gradient norms per layer; update ratios on sampled steps)
        train loss / accuracy come from the batch outputs (no second pass over the train split);
        val loss / accuracy from one batched pass over the ``validation`` split, if there is one
        (evaluation mode: running statistics, no dropout; dead/saturated units per activation).
        (with ema, validation and early stopping use the averaged weights)
        early stopping watches val_loss or val_accuracy and keeps the best weights
        checkpoint: weights, running statistics, optimiser state, generator state, epoch, history
                    (and ema's average)
    the averaged weights become the model's (ema); restore the best weights (early stopping);
    delete the checkpoint

Everything is cast to the model's dtype once, before the first epoch, and the batch buffers are
allocated once. The same spec and seed give bit-identical weights, with or without an
interruption and resume in between. Label smoothing, class weights and the L1 penalty change
the training objective only: the validation loss is the plain loss against the true labels, and
the reported train loss leaves out the L1 term.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, ContextManager, Mapping

import numpy as np

from pipeline.artifacts import Dataset
from pipeline.errors import DataError, RunError
from pipeline.resources import require_memory
from pipeline.spec import StageContext
from plugins.augment import TrainingArrays
from plugins.mlp import losses, regularize, schedules
from plugins.mlp.averaging import WeightAverage
from plugins.mlp.checkpoint import Checkpoint, RunState
from plugins.mlp.diagnostics import LayerDiagnostics, NoDiagnostics
from plugins.mlp.history import Epoch
from plugins.mlp.losses import as_one_hot, smooth_labels
from plugins.mlp.model import MLP
from plugins.mlp.optim import FLUSH_EVERY, Optimizer

if TYPE_CHECKING:  # the spec imports this module
    from plugins.mlp.trainer import MLPTrain


def train(spec: "MLPTrain", inputs: Mapping[str, Any], context: StageContext) -> dict[str, Any]:
    """Train ``spec``'s network on ``inputs["data"]`` (see the module's docstring): resume
    from a matching checkpoint, run the epochs, return ``{"model": MLP, "history": History}``."""
    data: Dataset = inputs["data"]
    dtype = np.dtype(spec.dtype)
    k = _n_classes(data)
    x, y, labels, val = _arrays(spec, data, k, dtype)  # val: (x, y, labels) or None
    # each epoch's rows: these, or the originals and fresh distorted copies (augment)
    epoch_rows = TrainingArrays(inputs.get("augmentation"), inputs.get("normalizer"),
                                x, y, labels)
    n, d = epoch_rows.rows, x.shape[1]

    # --- model, optimiser and the state a checkpoint carries -----------------------------
    _check_memory(spec, d, k, n, dtype, context)
    seed = spec.seed if spec.seed is not None else context.seed
    rng = np.random.default_rng(seed)  # draws the initial weights, then orders and masks
    model = _model(spec, d, k, rng)
    decay_mask, penalty = regularizers(spec, model)
    state = spec.optimizer.start(model.params, decay_mask)
    run = RunState(average=WeightAverage(spec.ema, model) if spec.ema else None)
    checkpoint = Checkpoint(context.checkpoint_dir) if context.checkpoint_dir else None
    if checkpoint is not None and checkpoint.load(model, state, rng, run, spec, seed):
        context.progress.log(f"resuming from the checkpoint of epoch {run.epoch}")
    B = min(spec.batch_size, n)
    _check_batch_rows(model, n, B)
    loop = _Loop(model, spec.optimizer, state, _objective(spec, model.loss_fn, labels, k),
                 penalty, rng, B, math.ceil(n / B), context.progress,
                 np.empty((B, d), dtype=dtype), np.empty((B, k), dtype=dtype),
                 average=run.average)
    diagnostics = loop.diagnostics = \
        LayerDiagnostics(model, loop.n_batches) if spec.diagnostics else NoDiagnostics()

    while run.epoch < spec.epochs and not run.stopped:
        epoch = run.epoch + 1
        started = time.perf_counter()
        rates = schedules.epoch_rates(spec.schedule, epoch, spec.optimizer.lr, spec.epochs,
                                      loop.n_batches, run.history.epochs)  # Python floats
        loss_sum, correct = _train_epoch(spec, loop, epoch, *epoch_rows.epoch(epoch), rates)
        record = Epoch(epoch, loss_sum / n, correct / n, None, None, rates[0], 0.0, rates[-1])
        with _evaluated(run.average, model):  # validation and early stopping see the average
            _validate(record, model, val, diagnostics)
            record.seconds = time.perf_counter() - started
            run.history.epochs.append(record)
            run.epoch = epoch
            loop.progress.log(_epoch_line(record, spec.epochs))
            if epoch < spec.epochs and context.report(epoch, asdict(record)):
                break  # a tuner pruned this run (the last epoch is the result, not reported)
            _watch(spec, run, record, model, loop.progress)
        if checkpoint is not None:
            checkpoint.save(model, state, rng, run, spec, seed)

    if run.average is not None:
        run.average.install(model)  # the averaged weights are the result
    if spec.early_stopping is not None and spec.early_stopping.restore_best \
            and run.best_params is not None:
        model.params[...] = run.best_params  # the best epoch's weights and statistics
        model.stats[...] = run.best_stats
    if checkpoint is not None:
        checkpoint.remove()  # the stage's result is complete; the stage cache keeps it
    return {"model": model, "history": run.history}

def _check_memory(spec: "MLPTrain", d: int, k: int, n: int, dtype: np.dtype,
                  context: StageContext) -> None:
    """Refuse, naming ``hidden`` (or ``layers``) and ``batch_size``, a network and batch that
    do not fit in the memory available, before any of it is allocated."""
    field = "hidden" if spec.layers is None else "layers"
    units = list(spec.hidden) if spec.layers is None else [
        int(getattr(entry, "units")) for entry in spec.layers
        if getattr(entry, "kind", entry) == "dense" and hasattr(entry, "units")]
    sizes = [d, *units, k]
    params = sum(i * o + o for i, o in zip(sizes[:-1], sizes[1:]))
    batch = min(spec.batch_size, n)
    # Weights, gradients, up to two optimiser slots (Adam) and the best weights kept for
    # early stopping; per batch row: its inputs and targets, z and a per layer, and deltas.
    per_row = d + k + 2 * sum(sizes[1:]) + sum(units)
    # ema: the average, its work buffer and the live weights kept while it is swapped in
    copies = 5 + (3 if spec.ema else 0)
    needed = (copies * params + batch * per_row) * dtype.itemsize
    require_memory(needed, f"stages[{context.stage_index}] ({spec.kind}): {field} "
                   f"{units} with batch_size {spec.batch_size} ({params} parameters)",
                   "use fewer or smaller hidden layers, or a smaller batch_size")

def _model(spec: "MLPTrain", d: int, k: int, rng: np.random.Generator) -> MLP:
    """The network for ``d`` input features and ``k`` classes, its weights drawn from ``rng``."""
    if spec.layers is not None:
        return MLP([d, k], loss=spec.loss, dtype=spec.dtype, init=spec.init, rng=rng,
                   layers=spec.layers)
    return MLP([d, *spec.hidden, k], spec.activation, spec.loss, spec.dtype, init=spec.init,
               rng=rng, dropout=spec.dropout)

def _arrays(spec: "MLPTrain", data: Dataset, k: int, dtype: np.dtype):
    """The train split as (x (n, d), targets (n, k), labels (n,)), cast and laid out once,
    and the validation split's (x, one-hot, labels), or None when there is none."""
    train = data.split("train")
    validation = data.splits.get("validation")
    if validation is not None and len(validation) == 0:
        validation = None
    if len(train) == 0:
        raise DataError(f"dataset {data.name}: the train split is empty")
    if spec.early_stopping is not None and validation is None:
        raise DataError(f"early_stopping monitors {spec.early_stopping.monitor}, but dataset "
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
    if spec.label_smoothing and spec.class_weight is None:  # weighted: the loss smooths
        y = smooth_labels(y, spec.label_smoothing)  # (n, k) training targets only
    return x, y, labels, val

def _train_epoch(spec: "MLPTrain", loop: _Loop, epoch: int, x: np.ndarray, y: np.ndarray,
                 labels: np.ndarray, rates: list[float]) -> tuple[float, int]:
    """One pass over the shuffled rows x (n, d), y (n, k): (sum of batch losses times their
    rows, correctly classified rows). Updates ``loop.model.params`` in place."""
    model, diagnostics, progress, B = loop.model, loop.diagnostics, loop.progress, loop.B
    n = x.shape[0]
    order = loop.rng.permutation(n) if spec.shuffle else np.arange(n)  # (n,)
    loss_sum, correct, lr = 0.0, 0, rates[0]
    diagnostics.begin_epoch()
    progress.begin(f"epoch {epoch}/{spec.epochs}", total=loop.n_batches)
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
                if step % FLUSH_EVERY == 0 or start + B >= n:  # no subnormal moments
                    loop.optimizer.flush_tiny(loop.state)
                if loop.average is not None:
                    loop.average.update(model)  # ema: fold this step's weights in
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

def _evaluated(average: WeightAverage | None, model: MLP) -> ContextManager[None]:
    """The averaged weights swapped into ``model`` for the block (``ema``); else no change."""
    return average.swapped_in(model) if average is not None else nullcontext()

def _validate(record: Epoch, model: MLP, val: tuple | None, diagnostics: Any) -> None:
    """The validation split's loss and accuracy, and the layers' diagnostics, into ``record``
    (no validation figures without a validation split)."""
    if val is not None:
        output = model.output(val[0], watch=diagnostics.watch)  # (n_val, k)
        record.val_loss = model.loss_fn.value(output, val[1])
        record.val_accuracy = float(np.mean(output.argmax(axis=1) == val[2]))
    record.layers = diagnostics.record()

def _watch(spec: "MLPTrain", run: RunState, record: Epoch, model: MLP, progress: Any) -> None:
    """Early stopping's look at the epoch just finished (nothing without early_stopping)."""
    if spec.early_stopping is None:
        return
    run.watch(spec.early_stopping, record, model)
    if run.stopped:
        progress.log(f"early stopping after epoch {record.epoch}: "
                     f"{spec.early_stopping.monitor} best in epoch {run.best_epoch}")

def _objective(spec: "MLPTrain", loss_fn: Any, labels: np.ndarray, k: int):
    """``(output (b, k), targets (b, k)) -> (batch loss, dL/doutput (b, k))``: the loss's own,
    or with ``class_weight`` its ``weighted`` form, which applies label smoothing itself
    (PyTorch's order: the targets stay one-hot)."""
    if spec.class_weight is None:
        return partial(losses.value_and_gradient, loss_fn)
    weight = regularize.class_weights(spec.class_weight, labels, k)  # (k,) float64
    return partial(loss_fn.weighted, weight=weight, smoothing=spec.label_smoothing)

def regularizers(spec: "MLPTrain",
                 model: MLP) -> tuple[np.ndarray | None, "regularize.L1Penalty | None"]:
    """The weight-decay mask (None: everything decays) and the L1 penalty (None without l1),
    both from the model's parameter groups."""
    groups, size = model.parameter_groups(), model.params.size
    weights = regularize.kind_mask(groups, size, ["weight"])  # (P,) the dense weights
    decay_mask = None if spec.decay_biases else weights
    penalty = regularize.L1Penalty(spec.l1, weights, model.dtype) if spec.l1 else None
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
    average: WeightAverage | None = None  # ema's running average, or None

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
