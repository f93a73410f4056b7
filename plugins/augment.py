"""The ``augment`` stage: enlarge the train split with randomly shifted copies of its images.

Each copy moves every image by its own (dy, dx), drawn uniformly from [-max_shift, max_shift]
(zero padding where the image moves away from an edge). The shifts are seeded and the whole copy
is one gather over the padded images, no loop over samples:

    padded (n, h + 2s, w + 2s);  rows (n, h) = s + dy + arange(h);  cols (n, w) = s + dx + arange(w)
    shifted (n, h, w) = padded[arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]

Put it after ``split`` (only the train split grows; validation and test stay untouched) and before
``normalize``. Samples must be images (n, h, w), or flat square images (n, h * h) as the IDX reader
gives MNIST; the originals are kept first.
"""

from __future__ import annotations

import math
from typing import Any, Literal, Mapping

import numpy as np
from pydantic import Field

from pipeline.artifacts import Dataset, Split
from pipeline.errors import DataError
from pipeline.spec import StageContext, StageSpec


def shift_images(images: np.ndarray, dy: np.ndarray, dx: np.ndarray) -> np.ndarray:
    """Images (n, h, w) each moved down by dy[i] and right by dx[i] pixels, zero-filled."""
    n, h, w = images.shape
    s = int(max(np.abs(dy).max(initial=0), np.abs(dx).max(initial=0)))
    padded = np.pad(images, ((0, 0), (s, s), (s, s)))  # (n, h + 2s, w + 2s)
    rows = s - dy[:, None] + np.arange(h)  # (n, h): source row of each output row
    cols = s - dx[:, None] + np.arange(w)  # (n, w)
    return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]  # (n, h, w)


class Augment(StageSpec):
    """Add ``copies`` randomly shifted copies of every training image (seeded)."""

    kind: Literal["augment"] = "augment"
    max_shift: int = Field(default=1, ge=1, le=4, description="Largest shift in pixels, each axis.")
    copies: int = Field(default=1, ge=1, le=10, description="Shifted copies added per image.")
    split: str = Field(default="train", description="The split to enlarge.")

    inputs = ("data",)
    outputs = ("data",)

    def run(self, inputs: Mapping[str, Any], context: StageContext) -> dict[str, Any]:
        data: Dataset = inputs["data"]
        part = data.split(self.split)
        images = part.x
        if images.ndim == 2 and math.isqrt(images.shape[1]) ** 2 == images.shape[1]:
            side = math.isqrt(images.shape[1])  # flat square images, e.g. 784 = 28 x 28
            images = images.reshape(-1, side, side)  # (n, side, side)
        if images.ndim != 3:
            raise DataError(f"augment: split {self.split!r} holds samples of shape {part.x.shape[1:]};"
                            f" expected images (h, w) or flat square images")
        rng = np.random.default_rng([context.seed, 0xA6])  # its own stream, from the run's seed
        n = len(part)
        xs, ys = [part.x], [part.y]
        for _ in range(self.copies):
            dy, dx = rng.integers(-self.max_shift, self.max_shift + 1, size=(2, n))  # (n,) each
            xs.append(shift_images(images, dy, dx).reshape(part.x.shape))  # (n, *sample shape)
            ys.append(part.y)
        splits = dict(data.splits)
        splits[self.split] = Split(np.concatenate(xs), np.concatenate(ys))  # ((copies + 1) n, ...)
        return {"data": data.with_splits(splits)}
