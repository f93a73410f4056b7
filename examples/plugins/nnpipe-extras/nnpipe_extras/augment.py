"""The ``shift_augment`` stage: append randomly shifted copies of a split (the train split by
default) to it, so the network sees each digit a pixel or two off centre.

Each copy moves every image by its own (dy, dx), both drawn from -max_shift..max_shift and never
both 0; pixels shifted in from outside are 0 (the background). The whole batch moves at once with
one fancy-indexing gather on a zero-padded copy: no Python loop over samples.
"""

from __future__ import annotations

from typing import Any, Literal, Mapping

import numpy as np
from pydantic import Field

from pipeline.artifacts import Dataset, Split
from pipeline.errors import UserError
from pipeline.spec import Seed, StageContext, StageSpec


def shift_images(images: np.ndarray, dy: np.ndarray, dx: np.ndarray) -> np.ndarray:
    """``out[i, r, c] = images[i, r - dy[i], c - dx[i]]`` (0 outside): images (n, h, w) moved
    down by dy (n,) and right by dx (n,) pixels, |dy|, |dx| <= their max. Same dtype."""
    n, h, w = images.shape
    m = int(max(np.abs(dy).max(initial=0), np.abs(dx).max(initial=0)))
    padded = np.pad(images, ((0, 0), (m, m), (m, m)))  # (n, h + 2m, w + 2m), zeros around
    rows = m + np.arange(h)[None, :, None] - dy[:, None, None]  # (n, h, 1)
    cols = m + np.arange(w)[None, None, :] - dx[:, None, None]  # (n, 1, w)
    return padded[np.arange(n)[:, None, None], rows, cols]  # (n, h, w)


def random_shifts(rng: np.random.Generator, n: int, max_shift: int) -> tuple[np.ndarray, np.ndarray]:
    """(dy, dx), each (n,) in -max_shift..max_shift, never both 0."""
    dy = rng.integers(-max_shift, max_shift + 1, size=n)  # (n,)
    dx = rng.integers(-max_shift, max_shift + 1, size=n)  # (n,)
    still = (dy == 0) & (dx == 0)  # (n,) the draws that would not move
    dx[still] = rng.choice([-1, 1], size=still.sum()) * rng.integers(1, max_shift + 1, size=still.sum())
    return dy, dx


class ShiftAugment(StageSpec):
    """Append ``copies`` randomly shifted copies of a split's images to it (seeded)."""

    kind: Literal["shift_augment"] = "shift_augment"
    max_shift: int = Field(default=2, ge=1, le=4, description="Largest shift in pixels, each axis.")
    copies: int = Field(default=1, ge=1, le=10, description="Shifted copies appended per image.")
    split: str = Field(default="train", description="The split to augment (only train, usually).")
    seed: Seed | None = Field(default=None, description="Seed of the shifts; by default the pipeline's.")

    inputs = ("data",)
    outputs = ("data",)

    def run(self, inputs: Mapping[str, Any], context: StageContext) -> dict[str, Any]:
        """Return ``data`` with the split grown to (1 + copies) times its size."""
        data: Dataset = inputs["data"]
        part = data.split(self.split)
        shape = data.sample_shape or part.x.shape[1:]
        if len(shape) != 2 or int(np.prod(shape)) != int(np.prod(part.x.shape[1:])):
            raise UserError(f"shift_augment: needs 2-d images (sample_shape (h, w)); dataset "
                            f"{data.name or ''} has samples of shape {tuple(shape)}")
        rng = np.random.default_rng(self.seed if self.seed is not None else context.seed)
        n = len(part)
        images = np.tile(part.x.reshape(n, *shape), (self.copies, 1, 1))  # (copies * n, h, w)
        dy, dx = random_shifts(rng, images.shape[0], self.max_shift)  # (copies * n,) each
        moved = shift_images(images, dy, dx).reshape(-1, *part.x.shape[1:])  # as the split's x
        x = np.concatenate([part.x, moved])  # ((1 + copies) * n, ...)
        y = np.concatenate([part.y] * (1 + self.copies))  # ((1 + copies) * n, ...)
        return {"data": data.with_splits({**data.splits, self.split: Split(x=x, y=y)})}
