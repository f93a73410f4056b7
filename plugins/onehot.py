"""The ``one_hot`` stage: class indices (n,) become one-hot rows (n, classes) of float32."""

from __future__ import annotations

from typing import Any, Literal, Mapping

import numpy as np
from pydantic import Field

from pipeline.artifacts import Dataset, Split
from pipeline.errors import DataError
from pipeline.resources import require_memory
from pipeline.spec import StageContext, StageSpec


def one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    """Labels (n,) in [0, classes) -> float32 one-hot rows (n, classes)."""
    out = np.zeros((labels.shape[0], classes), dtype=np.float32)  # (n, k)
    out[np.arange(labels.shape[0]), labels] = 1.0
    return out


class OneHot(StageSpec):
    """Encode the integer labels of every split as one-hot rows."""

    kind: Literal["one_hot"] = "one_hot"
    uses_seed = False  # deterministic: the pipeline seed is not part of its key
    classes: int | None = Field(
        default=None, ge=1, description="Number of classes; by default the largest label + 1 over all splits."
    )

    inputs = ("data",)
    outputs = ("data",)

    def run(self, inputs: Mapping[str, Any], context: StageContext) -> dict[str, Any]:
        """Check every split's labels, then encode them."""
        data: Dataset = inputs["data"]
        for name, s in data.splits.items():
            if s.y.ndim != 1:
                raise DataError(f"one_hot: split {name!r} has targets of shape {s.y.shape}; expected "
                                "1-D class indices (already one-hot?)")
            if s.y.dtype.kind not in "iu":
                raise DataError(f"one_hot: split {name!r} has labels of dtype {s.y.dtype}; expected integers")
        classes = self.classes
        if classes is None:
            classes = 1 + max((int(s.y.max()) for s in data.splits.values() if len(s)), default=0)
        for name, s in data.splits.items():
            bad = (s.y < 0) | (s.y >= classes)  # (n,) bool
            if bad.any():
                raise DataError(f"{data.origin(name)}: one_hot: split {name!r} has label "
                                f"{int(s.y[bad][0])} out of range "
                                f"0..{classes - 1} ({int(bad.sum())} such labels; classes: {classes})")
        rows = sum(len(s) for s in data.splits.values())
        require_memory(rows * classes * 4, f"one_hot: {rows} labels as {classes} float32 classes",
                       "give the real number of classes")
        splits = {name: Split(x=s.x, y=one_hot(s.y, classes)) for name, s in data.splits.items()}
        return {"data": data.with_splits(splits)}
