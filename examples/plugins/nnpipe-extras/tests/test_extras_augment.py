"""The shift_augment stage: the stage contract, the shifts themselves, seeding."""

from __future__ import annotations

import numpy as np
import pytest

from nnpipe_extras.augment import ShiftAugment, random_shifts, shift_images
from pipeline.artifacts import Dataset, Split
from pipeline.errors import UserError
from pipeline.spec import StageContext
from pipeline.testing import check_stage, tiny_dataset


def test_the_stage_passes_the_stage_check():
    out = check_stage(ShiftAugment(copies=2, max_shift=1))
    data = out["data"]
    assert len(data.split("train")) == 3 * 24
    assert len(data.split("test")) == 8  # only the train split grows


def test_shift_moves_each_image_by_its_own_offset():
    images = np.arange(2 * 4 * 5, dtype=np.uint8).reshape(2, 4, 5) + 1  # (2, 4, 5), no zeros
    moved = shift_images(images, dy=np.array([1, -2]), dx=np.array([-1, 2]))
    assert moved.dtype == np.uint8 and moved.shape == images.shape
    np.testing.assert_array_equal(moved[0, 1:, :-1], images[0, :-1, 1:])  # down 1, left 1
    assert (moved[0, 0, :] == 0).all() and (moved[0, :, -1] == 0).all()
    np.testing.assert_array_equal(moved[1, :-2, 2:], images[1, 2:, :-2])  # up 2, right 2
    assert (moved[1, -2:, :] == 0).all() and (moved[1, :, :2] == 0).all()


def test_shifts_are_within_bounds_and_never_zero():
    dy, dx = random_shifts(np.random.default_rng(0), 10_000, 2)
    assert np.abs(dy).max() == 2 and np.abs(dx).max() == 2
    assert not ((dy == 0) & (dx == 0)).any()


def test_flat_samples_use_the_datasets_sample_shape_and_the_seed():
    data = tiny_dataset()
    flat = data.with_splits({k: Split(s.x.reshape(len(s), -1), s.y) for k, s in data.splits.items()})
    run = lambda seed: ShiftAugment().run({"data": flat}, StageContext(seed=seed))["data"]
    first, again, other = run(0), run(0), run(1)
    x = first.split("train").x
    assert x.shape == (48, 36) and x.dtype == np.uint8
    np.testing.assert_array_equal(x[:24], flat.split("train").x)  # the originals come first
    np.testing.assert_array_equal(first.split("train").y[24:], flat.split("train").y)
    np.testing.assert_array_equal(x, again.split("train").x)
    assert not np.array_equal(x, other.split("train").x)


def test_samples_that_are_not_images_are_a_user_error():
    data = Dataset(splits={"train": Split(np.zeros((4, 5)), np.zeros(4))}, sample_shape=(5,))
    with pytest.raises(UserError, match="needs 2-d images"):
        ShiftAugment().run({"data": data}, StageContext(seed=0))
