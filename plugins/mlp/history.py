"""``mlp_train``'s record of a run: one ``Epoch`` per epoch, saved as ``history.json``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipeline.files import write_json


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
