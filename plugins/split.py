"""The ``split`` stage: carve a validation split out of the train split, at random.

With ``stratify`` each class gives the same fraction of its samples (to within one sample), so a
small validation split still has every class in proportion. With ``shuffle: false`` the last
samples in file order are taken instead, as the seed notebook did.
"""

from __future__ import annotations

from typing import Any, Literal, Mapping

import numpy as np
from pydantic import Field, model_validator

from pipeline.artifacts import Dataset, Split
from pipeline.errors import DataError
from pipeline.spec import Seed, StageContext, StageSpec


def class_indices(y: np.ndarray) -> np.ndarray:
    """Class index per sample from labels (n,) or one-hot / score rows (n, k)."""
    if y.ndim == 1:
        return y
    if y.ndim == 2:
        return y.argmax(axis=1)  # (n, k) -> (n,)
    raise DataError(f"cannot stratify on targets of shape {y.shape}: expected (n,) or (n, k)")


def validation_mask(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """A boolean mask (n,) choosing ``round(n * fraction)`` samples, proportionally per label.

    Each label value gets ``floor(count * fraction)`` places, and the places left over go to the
    labels with the largest remainders, so the total is exact. Within a label the chosen samples
    are random. Pass one label for all samples to draw without stratification.
    """
    n = labels.shape[0]
    _, group = np.unique(labels, return_inverse=True)  # (n,) group index per sample
    group = group.reshape(-1)
    counts = np.bincount(group)  # (g,) samples per group
    quota = counts * fraction  # (g,) ideal validation size per group
    take = np.floor(quota).astype(np.int64)  # (g,)
    left = max(int(round(n * fraction)) - int(take.sum()), 0)  # 0 <= left <= g
    take[np.argsort(-(quota - take), kind="stable")[:left]] += 1  # largest remainders first

    # Sort samples by (group, random key): the first take[g] of each group are validation.
    order = np.lexsort((rng.random(n), group))  # (n,) sample indices
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))  # (g,) first position of each group
    rank = np.arange(n) - starts[group[order]]  # (n,) rank of order[i] within its group
    mask = np.zeros(n, dtype=bool)
    mask[order] = rank < take[group[order]]
    return mask


class SplitStage(StageSpec):
    """Move a random ``validation_fraction`` of the ``source`` split into a new ``target`` split."""

    kind: Literal["split"] = "split"
    validation_fraction: float = Field(
        default=0.1, gt=0, lt=1, description="Share of the source split to move."
    )
    stratify: bool = Field(default=False, description="Keep each class's share the same in both parts.")
    shuffle: bool = Field(default=True, description="Draw at random; false takes the last samples "
                                                    "in file order (the seed notebook's way).")
    seed: Seed | None = Field(default=None, description="Seed of the draw; by default the pipeline's seed.")
    source: str = Field(default="train", description="The split to carve from.")
    target: str = Field(default="validation", description="The name of the new split.")

    inputs = ("data",)
    outputs = ("data",)

    @model_validator(mode="after")
    def _distinct(self) -> "SplitStage":
        if self.source == self.target:
            raise ValueError(f"source and target are both {self.source!r}; they must differ")
        if self.stratify and not self.shuffle:
            raise ValueError("stratify needs shuffle: true (taking the last samples in file order "
                             "cannot keep class shares)")
        return self

    def run(self, inputs: Mapping[str, Any], context: StageContext) -> dict[str, Any]:
        """Return the dataset with ``source`` reduced and ``target`` added right after it."""
        data: Dataset = inputs["data"]
        whole = data.split(self.source)
        if self.target in data.splits:
            raise DataError(f"split: dataset {data.name} already has a split {self.target!r}; "
                            "choose another 'target' or drop this stage")
        n = len(whole)
        n_val = int(round(n * self.validation_fraction))
        if n_val == 0 or n_val == n:
            empty = self.target if n_val == 0 else self.source
            raise DataError(f"split: validation_fraction {self.validation_fraction} of the {n} samples "
                            f"of {self.source!r} leaves {empty!r} empty")

        if self.shuffle:
            rng = np.random.default_rng(self.seed if self.seed is not None else context.seed)
            labels = class_indices(whole.y) if self.stratify else np.zeros(n, dtype=np.int64)
            is_val = validation_mask(labels, self.validation_fraction, rng)  # (n,) bool
        else:
            is_val = np.arange(n) >= n - n_val  # (n,) the last n_val samples in file order

        splits: dict[str, Split] = {}
        for name, part in data.splits.items():
            if name == self.source:
                splits[name] = Split(x=whole.x[~is_val], y=whole.y[~is_val])  # original order kept
                splits[self.target] = Split(x=whole.x[is_val], y=whole.y[is_val])
            else:
                splits[name] = part
        return {"data": data.with_splits(splits)}
