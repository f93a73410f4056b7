"""The augmentation a pipeline asked for, as an artifact, and the training arrays of each epoch.

The ``augment`` stage returns an ``Augmentation``: a small, picklable recipe (what to draw, how
many copies, the seed), never image data. With ``fresh`` distortions the stage leaves the data
as it is (the stage cache holds only undistorted images) and ``mlp_train`` asks
``TrainingArrays.epoch(e)`` for each epoch's rows: the originals, then ``copies`` distorted copies
drawn from a generator seeded by (run seed, epoch) alone. So epoch e sees the same distortions
whether the run went straight through or resumed from a checkpoint after epoch e - 1.

Distortions are drawn in pixel space: when a ``normalize`` stage ran after ``augment``, its
normaliser is undone before distorting and applied again after (zero is the background, in raw
pixels; per-pixel standardised values could not be interpolated across pixels).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.errors import DataError
from plugins.augment.distort import Distortion, as_dtype

#: The augment stage's own random stream: default_rng([seed, STREAM, ...]).
STREAM = 0xA6


@dataclass(frozen=True)
class Augmentation:
    """A seeded recipe for distorted copies of the train images.

    Attributes:
        distortion: what each copy draws.
        copies: distorted copies per original.
        fresh: True: new copies every epoch (applied by ``TrainingArrays``); False: the augment
            stage added them to the data once.
        seed: the run's seed.
        image_shape: (h, w) of one training image.
        raw: whether the augment stage saw raw pixels (no normaliser had run yet).
        originals: whether the undistorted images come first (False: the copies alone).
    """

    distortion: Distortion
    copies: int
    fresh: bool
    seed: int
    image_shape: tuple[int, int]
    raw: bool = True
    originals: bool = True

    def rng(self, *draw: int) -> np.random.Generator:
        """The generator of draw ``draw``: () the fixed copies, (epoch,) an epoch's fresh ones."""
        return np.random.default_rng([self.seed, STREAM, *draw])

    def distorted(self, x: np.ndarray, rng: np.random.Generator, normalizer=None) -> np.ndarray:
        """One distorted copy of samples ``x`` (n, h * w) or (n, h, w), same shape and dtype.
        ``normalizer`` (a fitted transform with ``apply`` and ``invert``) is undone first and
        applied again after, when the augment stage saw raw pixels."""
        out = np.empty(x.shape, dtype=np.result_type(x.dtype, np.float32))  # float (n, ...)
        self.distort_into(self.pixels(x, normalizer), rng, out, normalizer)
        return as_dtype(out, x.dtype)  # integer pixels rounded and clipped, as apply does

    def distort_into(self, images: np.ndarray, rng: np.random.Generator, out: np.ndarray,
                     normalizer=None) -> None:
        """Write one distorted copy of ``images`` (n, h, w), as ``pixels`` gives them, into
        ``out`` (n, h * w) or (n, h, w), a float array, normalised again as ``distorted``
        does. Nothing of the batch's size is allocated: fresh copies reuse ``out`` every epoch."""
        if not out.flags.c_contiguous:  # a reshape would copy, and the copy would be lost
            raise ValueError("distort_into needs a C-contiguous out")
        self.distortion.apply(images, rng, out=out.reshape(images.shape))  # (n, h, w)
        if self.raw and normalizer is not None:
            rows = out.reshape(_fitted_shape(out, normalizer))  # a view: out is contiguous
            normalizer.apply(rows, out=rows)

    def pixels(self, x: np.ndarray, normalizer=None) -> np.ndarray:
        """Samples ``x`` (n, h * w) or (n, h, w) as the images (n, h, w) the augment stage saw:
        the normaliser undone when it ran after the augment stage."""
        h, w = self.image_shape
        if x[0].size != h * w:
            raise DataError(f"augment: the training samples have {x[0].size} features but the "
                            f"augment stage saw {h} x {w} images; put no stage that changes "
                            f"the features between augment and mlp_train")
        if self.raw and normalizer is not None:
            x = normalizer.invert(x.reshape(_fitted_shape(x, normalizer)))
        return x.reshape(-1, h, w)


def _fitted_shape(x: np.ndarray, normalizer) -> tuple[int, ...]:
    """``x``'s shape as the normaliser takes it: (n, *features it was fitted on), or as it is
    for a scalar transform."""
    fitted = np.shape(normalizer.offset)
    return (len(x), *fitted) if fitted else x.shape


class TrainingArrays:
    """The rows ``mlp_train`` trains on in each epoch: the given arrays when there is no fresh
    augmentation, else the originals (unless ``originals`` is off) followed by ``copies`` fresh
    distorted copies (labels repeated in the same order).

    The epoch's buffer and the originals as pixels (the normaliser undone) are made once: an
    epoch distorts straight into the buffer and allocates nothing of the data's size (fresh
    arrays each epoch, page-faulted in anew, made long runs slower epoch after epoch)."""

    def __init__(self, augmentation: Augmentation | None, normalizer, x: np.ndarray,
                 y: np.ndarray, labels: np.ndarray):
        self.augmentation = augmentation if augmentation is not None and augmentation.fresh \
            else None
        self.normalizer = normalizer
        self.x = x  # (n, d) originals
        if self.augmentation is None:
            self.y, self.labels, self.buffer = y, labels, x
            return
        self.images = self.augmentation.pixels(x, normalizer)  # (n, h, w), the same each epoch
        self.first = 1 if self.augmentation.originals else 0  # blocks of n rows before the copies
        repeats = self.first + self.augmentation.copies
        self.y = np.tile(y, (repeats, 1))  # (repeats n, k)
        self.labels = np.tile(labels, repeats)  # (repeats n,)
        self.buffer = np.empty((repeats * len(x), *x.shape[1:]), dtype=x.dtype)
        if self.first:
            self.buffer[:len(x)] = x  # the originals come first, every epoch

    @property
    def rows(self) -> int:
        """Rows per epoch."""
        return len(self.buffer)

    def epoch(self, epoch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(x, y, labels) of epoch ``epoch`` (1-based): (rows, d), (rows, k), (rows,)."""
        if self.augmentation is not None:
            rng = self.augmentation.rng(epoch)  # (seed, epoch) alone: resume-safe
            n = len(self.x)
            for copy in range(self.first, self.first + self.augmentation.copies):
                self.augmentation.distort_into(self.images, rng,
                                               self.buffer[copy * n:(copy + 1) * n],
                                               self.normalizer)  # (n, d)
        return self.buffer, self.y, self.labels
