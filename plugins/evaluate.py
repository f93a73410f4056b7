"""The ``evaluate`` stage: score a trained model on one split and keep the figures as ``metrics.json``.

Precision, recall and F1 are computed per class from the confusion matrix (rows: true class,
columns: predicted class). Where one is undefined (a class never predicted, or absent) it is 0,
without a warning or a NaN. Macro averages are taken over the classes that occur in the split or
in the predictions, as scikit-learn does by default.
"""

from __future__ import annotations

import dataclasses

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping

import numpy as np
from pydantic import Field

from pipeline.artifacts import Dataset
from pipeline.errors import DataError
from pipeline.files import write_json
from pipeline.spec import StageContext, StageSpec

METRICS_NAME = "metrics.json"


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, classes: int) -> np.ndarray:
    """Counts (classes, classes) int64: entry [t, p] is how many samples of class t were predicted p."""
    flat = y_true.astype(np.int64) * classes + y_pred  # (n,) cell index per sample
    return np.bincount(flat, minlength=classes * classes).reshape(classes, classes)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den elementwise as float64, 0 where den is 0 (no warning)."""
    out = np.zeros(num.shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def per_class_scores(confusion: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 (float64) and support (int64) per class, each (k,), from a confusion matrix."""
    true_pos = np.diag(confusion)  # (k,)
    support = confusion.sum(axis=1)  # (k,) samples of each true class
    predicted = confusion.sum(axis=0)  # (k,) samples predicted as each class
    precision = _ratio(true_pos, predicted)
    recall = _ratio(true_pos, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support, "predicted": predicted}


def _finite_or_none(value: float) -> float | None:
    """A float for JSON: NaN and infinities (invalid JSON) become null."""
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True, eq=False)
class Metrics:
    """A model's scores on one split.

    Attributes:
        split: the split evaluated.
        accuracy: share of samples whose most probable class is the true one.
        loss: the model's mean loss on the split.
        confusion: (k, k) int64 counts, rows true class, columns predicted class.
        class_names: a name per class index, or None.
        sample_shape: the shape of one input sample as the dataset stores it (for example
            (28, 28)), or None; recorded so that an export can declare the model's input shape.
    """

    split: str
    accuracy: float
    loss: float
    confusion: np.ndarray
    class_names: tuple[str, ...] | None = None
    sample_shape: tuple[int, ...] | None = None

    @property
    def scores(self) -> dict[str, np.ndarray]:
        """Per-class precision, recall, f1, support and predicted counts, each (k,)."""
        return per_class_scores(self.confusion)

    def macro(self) -> dict[str, float]:
        """Macro precision, recall and F1 over the classes present in the split or predictions,
        and F1 weighted by support."""
        s = self.scores
        present = (s["support"] > 0) | (s["predicted"] > 0)  # (k,) bool
        total = int(s["support"].sum())
        return {
            "macro_precision": float(s["precision"][present].mean()) if present.any() else 0.0,
            "macro_recall": float(s["recall"][present].mean()) if present.any() else 0.0,
            "macro_f1": float(s["f1"][present].mean()) if present.any() else 0.0,
            "weighted_f1": float((s["f1"] * s["support"]).sum() / total) if total else 0.0,
        }

    def name_of(self, index: int) -> str:
        """The class's name, or its index as text when the dataset has no name for it."""
        if self.class_names is not None and index < len(self.class_names):
            return self.class_names[index]
        return str(index)

    def to_dict(self) -> dict[str, Any]:
        """Everything as JSON-ready values (the content of ``metrics.json``)."""
        s = self.scores
        per_class = [
            {"class": k, "name": self.name_of(k), "precision": float(s["precision"][k]),
             "recall": float(s["recall"][k]), "f1": float(s["f1"][k]), "support": int(s["support"][k])}
            for k in range(self.confusion.shape[0])  # one entry per class, not per sample
        ]
        return {
            "split": self.split,
            "n": int(self.confusion.sum()),
            "accuracy": float(self.accuracy),
            "loss": _finite_or_none(self.loss),
            **self.macro(),
            "per_class": per_class,
            "confusion_matrix": self.confusion.tolist(),
            "class_names": list(self.class_names) if self.class_names is not None else None,
            "sample_shape": list(self.sample_shape) if self.sample_shape is not None else None,
        }

    def save(self, directory: Path) -> list[str]:
        """Write ``metrics.json`` into ``directory``; return its name."""
        write_json(Path(directory) / METRICS_NAME, self.to_dict())
        return [METRICS_NAME]

    def summary(self) -> str:
        """One line, e.g. ``test: accuracy 0.9712, loss 0.0931, macro F1 0.9705 (2000 samples)``."""
        return (f"{self.split}: accuracy {self.accuracy:.4f}, loss {self.loss:.4f}, "
                f"macro F1 {self.macro()['macro_f1']:.4f} ({int(self.confusion.sum())} samples)")


def evaluate(model: Any, x: np.ndarray, y: np.ndarray, split: str = "test",
             class_names: tuple[str, ...] | None = None) -> Metrics:
    """Score ``model`` (with ``predict_proba`` and ``loss``) on inputs x (n, d), targets y (n,) or (n, k)."""
    n = x.shape[0]
    proba = np.asarray(model.predict_proba(x))  # (n, k)
    if proba.ndim != 2 or proba.shape[0] != n:
        raise DataError(f"evaluate: the model returned probabilities of shape {proba.shape} "
                        f"for {n} samples of split {split!r}; expected ({n}, classes)")
    classes = proba.shape[1]
    if y.ndim == 2:
        y_true = y.argmax(axis=1)  # one-hot (n, k) -> (n,)
    elif y.ndim == 1:
        y_true = y.astype(np.int64)  # (n,)
    else:
        raise DataError(f"evaluate: split {split!r} has targets of shape {y.shape}; expected (n,) or (n, k)")
    if y_true.shape[0] != n:
        raise DataError(f"evaluate: split {split!r} has {n} inputs but {y_true.shape[0]} targets")
    bad = (y_true < 0) | (y_true >= classes)  # (n,) bool
    if bad.any():
        raise DataError(f"evaluate: split {split!r} has label {int(y_true[bad][0])} but the model "
                        f"predicts {classes} classes (0..{classes - 1})")

    y_pred = proba.argmax(axis=1)  # (n,)
    confusion = confusion_matrix(y_true, y_pred, classes)  # (k, k)
    accuracy = float(np.trace(confusion)) / n if n else 0.0
    loss = float(model.loss(x, y))
    return Metrics(split=split, accuracy=accuracy, loss=loss, confusion=confusion, class_names=class_names)


class Evaluate(StageSpec):
    """Score the trained model on one split: accuracy, loss, per-class scores, confusion matrix."""

    kind: Literal["evaluate"] = "evaluate"
    uses_seed = False  # deterministic: the pipeline seed is not part of its key
    #: What a search may rank by (``metrics.json``).
    metric_directions = {"accuracy": "max", "loss": "min", "macro_f1": "max",
                         "macro_precision": "max", "macro_recall": "max", "weighted_f1": "max"}
    split: str = Field(default="test", description="The split to score the model on.")

    inputs = ("data", "model")
    outputs = ("metrics",)

    def run(self, inputs: Mapping[str, Any], context: StageContext) -> dict[str, Any]:
        """Return ``{"metrics": Metrics}`` for the chosen split."""
        data: Dataset = inputs["data"]
        part = data.split(self.split)
        metrics = evaluate(inputs["model"], part.x, part.y, self.split, data.class_names)
        shape = tuple(int(d) for d in data.sample_shape) if data.sample_shape else None
        return {"metrics": dataclasses.replace(metrics, sample_shape=shape)}
