"""The named values that flow between stages.

Stages pass a mapping ``name -> value``. Two shapes of value are common enough to define here:
``Dataset`` (arrays by split) and ``Saveable`` (anything that leaves a file in the run directory,
such as a trained model or metrics). The framework knows nothing about what the arrays mean.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Split:
    """One split of a dataset.

    Attributes:
        x: features, shape (n, ...) (images, or flat vectors once a stage flattens them).
        y: targets, shape (n,) integer class labels or (n, k) one-hot / regression targets.
    """

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return int(self.x.shape[0])


@dataclass(frozen=True)
class Dataset:
    """Arrays by split name ("train", "validation", "test"), plus what describes them.

    Attributes:
        splits: split name -> Split.
        class_names: a label per class index, when the dataset has names (a registered dataset usually does).
        sample_shape: the shape of one sample as stored (for example (28, 28)), used for plots.
        name: where the data came from (a registered dataset name or a file), for messages.
        extra: anything else a reader knows; ``extra["files"][split]["labels"|"images"]`` is the
            file a split came from (see ``origin``).
    """

    splits: Mapping[str, Split]
    class_names: tuple[str, ...] | None = None
    sample_shape: tuple[int, ...] | None = None
    name: str = ""
    extra: Mapping[str, object] = field(default_factory=dict)

    def split(self, name: str) -> Split:
        """The split called ``name``, or a clear error listing the splits there are."""
        if name not in self.splits:
            from pipeline.errors import UserError

            raise UserError(
                f"dataset {self.name or ''} has no split {name!r}; it has: {', '.join(self.splits)}"
            )
        return self.splits[name]

    def origin(self, split: str, what: str = "labels") -> str:
        """Where ``split``'s ``what`` ("images" or "labels") came from, for error messages: the
        file a reader recorded in ``extra["files"]``, else the dataset's name."""
        files = self.extra.get("files", {})
        return str(files.get(split, {}).get(what) or f"dataset {self.name}")

    def with_splits(self, splits: Mapping[str, Split]) -> "Dataset":
        """A copy of this dataset with other splits and the same description."""
        return dataclasses.replace(self, splits=dict(splits))


@runtime_checkable
class Saveable(Protocol):
    """An artifact that leaves files in the run directory (a model, metrics, a history)."""

    def save(self, directory: Path) -> list[str]:
        """Write this artifact's files into ``directory``; return the file names written."""
