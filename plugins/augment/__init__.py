"""The ``augment`` stage: distorted copies of the train images, made once or fresh every epoch.

Each copy moves every image by its own whole-pixel (dy, dx) in [-max_shift, max_shift] and, when
asked, rotates it (``rotate``: up to so many degrees), scales it (``scale``), mirrors it
(``flip``) and bends it with Simard et al.'s elastic fields (``elastic: {alpha, sigma}``). All of
it is seeded and done for the whole batch at once (see ``plugins.augment.distort``).

* ``fresh: false`` (the default): the copies are made here, once, and appended to the split
  (originals first); this is what the stage cache stores.
* ``originals: false`` (with ``fresh``): each epoch trains on the fresh copies alone, not on the
  originals and the copies, so it costs what an unaugmented epoch does.
* ``fresh: true``: the data goes on unchanged (the cache holds only the undistorted images) and
  ``mlp_train`` draws new copies at the start of every epoch from (run seed, epoch), see
  ``plugins.augment.epochs``.

Either way the stage also returns the recipe as the ``augmentation`` artifact, which the
``plots`` stage draws (``plots/augmentations.png``). Put it after ``split`` (only the train split
grows; validation and test stay untouched) and before ``normalize``. Samples must be images
(n, h, w), or flat square images (n, h * h) as the IDX reader gives MNIST.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal, Mapping

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipeline.artifacts import Dataset, Split
from pipeline.errors import DataError
from pipeline.lazy import lazy_attributes
from pipeline.spec import StageContext, StageSpec

if TYPE_CHECKING:
    from plugins.augment.distort import Distortion

__all__ = ["Augment", "Augmentation", "Distortion", "Elastic", "TrainingArrays", "shift_images"]

#: The distortions and the per-epoch copies are imported when the stage runs (or mlp_train draws
#: fresh copies): validating a pipeline file needs only the spec.
__getattr__ = lazy_attributes(__name__, {"Distortion": "plugins.augment.distort",
                                         "shift_images": "plugins.augment.distort",
                                         "Augmentation": "plugins.augment.epochs",
                                         "TrainingArrays": "plugins.augment.epochs"})


class Elastic(BaseModel):
    """Simard et al.'s elastic distortion: uniform [-1, 1] displacement fields smoothed by a
    Gaussian of standard deviation ``sigma`` pixels, times ``alpha`` (they used 34 and 4)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    alpha: float = Field(ge=0, le=100, description="Strength (pixels before smoothing).")
    sigma: float = Field(gt=0, le=10, description="Smoothness: the Gaussian's width in pixels.")


class Augment(StageSpec):
    """Add ``copies`` randomly distorted copies of every training image (seeded)."""

    kind: Literal["augment"] = "augment"
    max_shift: int = Field(default=1, ge=0, le=4, description="Largest shift in pixels, each axis.")
    copies: int = Field(default=1, ge=1, le=10, description="Distorted copies added per image.")
    split: str = Field(default="train", description="The split to enlarge.")
    rotate: float = Field(default=0.0, ge=0, le=180,
                          description="Largest rotation in degrees, either way.")
    scale: float | tuple[float, float] | None = Field(
        default=None, description="Scaling factor range [lo, hi], or a largest change f: "
                                  "[1 - f, 1 + f].")
    elastic: Elastic | None = Field(default=None, description="Elastic distortion {alpha, sigma}.")
    flip: bool = Field(default=False, description="Mirror half the copies left-right (clothing, "
                                                  "not digits).")
    fresh: bool = Field(default=False, description="Draw new copies every epoch in mlp_train "
                                                   "instead of once here.")
    originals: bool = Field(default=True, description="Train on the undistorted images beside "
                                                      "the copies; false (with fresh): each "
                                                      "epoch on the fresh copies alone.")

    inputs = ("data",)
    optional_inputs = ("normalizer",)  # one already fitted: the images are not raw pixels
    outputs = ("data", "augmentation")

    @field_validator("scale")
    @classmethod
    def _scale_range(cls, value):
        if isinstance(value, (int, float)) and not 0 <= value < 1:
            raise ValueError(f"a largest change f must be in [0, 1), got {value}")
        if isinstance(value, tuple) and not 0 < value[0] <= value[1] <= 4:
            raise ValueError(f"a range [lo, hi] needs 0 < lo <= hi <= 4, got {list(value)}")
        return value

    @model_validator(mode="after")
    def _fresh_trains(self):
        if self.fresh and self.split != "train":
            raise ValueError(f"fresh distortions are drawn by mlp_train for the split it trains "
                             f"on, 'train'; split {self.split!r} cannot be fresh")
        if not self.originals and not self.fresh:
            raise ValueError("originals: false drops the undistorted images from each epoch's "
                             "fresh copies; it needs fresh: true")
        return self

    def distortion(self) -> Distortion:
        """The per-copy draws this spec asks for."""
        from plugins.augment.distort import Distortion

        scale = self.scale if self.scale is not None else 0.0
        low, high = (1 - scale, 1 + scale) if isinstance(scale, (int, float)) else scale
        elastic = (self.elastic.alpha, self.elastic.sigma) if self.elastic else None
        return Distortion(self.max_shift, self.rotate, (float(low), float(high)), elastic,
                          self.flip)

    def run(self, inputs: Mapping[str, Any], context: StageContext) -> dict[str, Any]:
        from plugins.augment.epochs import Augmentation

        data: Dataset = inputs["data"]
        part = data.split(self.split)
        images = _as_images(part.x, self.split)  # (n, h, w)
        recipe = Augmentation(self.distortion(), self.copies, self.fresh, context.seed,
                              images.shape[1:], raw="normalizer" not in inputs,
                              originals=self.originals)
        if self.fresh:  # mlp_train draws them, epoch by epoch
            return {"data": data, "augmentation": recipe}
        rng = recipe.rng()  # its own stream, from the run's seed
        xs, ys = [part.x], [part.y]
        for _ in range(self.copies):
            xs.append(recipe.distortion.apply(images, rng).reshape(part.x.shape))  # (n, ...)
            ys.append(part.y)
        splits = dict(data.splits)
        splits[self.split] = Split(np.concatenate(xs), np.concatenate(ys))  # ((copies + 1) n, ...)
        return {"data": data.with_splits(splits), "augmentation": recipe}


def _as_images(x: np.ndarray, split: str) -> np.ndarray:
    """Samples (n, h, w), or flat square ones (n, h * h), as images (n, h, w)."""
    if x.ndim == 2 and math.isqrt(x.shape[1]) ** 2 == x.shape[1]:
        side = math.isqrt(x.shape[1])  # flat square images, e.g. 784 = 28 x 28
        return x.reshape(-1, side, side)  # (n, side, side)
    if x.ndim != 3:
        raise DataError(f"augment: split {split!r} holds samples of shape {x.shape[1:]};"
                        f" expected images (h, w) or flat square images")
    return x
