"""The augment stage: shifts against hand-made images, seeding, and what it leaves alone."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.artifacts import Dataset, Split
from pipeline.errors import DataError
from pipeline.spec import StageContext
from plugins.augment import Augment, shift_images


def test_shift_images_by_hand():
    image = np.arange(1, 10).reshape(1, 3, 3)  # [[1 2 3] [4 5 6] [7 8 9]]
    down_right = shift_images(image, np.array([1]), np.array([1]))
    np.testing.assert_array_equal(down_right[0], [[0, 0, 0], [0, 1, 2], [0, 4, 5]])
    up_left = shift_images(image, np.array([-1]), np.array([-2]))
    np.testing.assert_array_equal(up_left[0], [[6, 0, 0], [9, 0, 0], [0, 0, 0]])
    both = shift_images(np.concatenate([image, image]), np.array([0, 1]), np.array([0, 0]))
    np.testing.assert_array_equal(both[0], image[0])  # each image its own shift
    np.testing.assert_array_equal(both[1], [[0, 0, 0], [1, 2, 3], [4, 5, 6]])


def data(n=50):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(n, 6, 6), dtype=np.uint8)
    y = rng.integers(0, 3, size=n)
    return Dataset({"train": Split(x, y), "validation": Split(x[:5], y[:5])})


def test_augment_adds_shifted_copies_of_train_only():
    d = data()
    out = Augment(copies=2, max_shift=2).run({"data": d}, StageContext(seed=1))["data"]
    train = out.split("train")
    assert train.x.shape == (150, 6, 6) and train.x.dtype == np.uint8
    np.testing.assert_array_equal(train.x[:50], d.split("train").x)
    np.testing.assert_array_equal(train.y, np.tile(d.split("train").y, 3))
    assert out.split("validation") is d.split("validation")
    # every copy is some shift within 2 pixels of its original
    for i in (0, 17, 49):
        candidates = [shift_images(d.split("train").x[i:i + 1], np.array([a]), np.array([b]))[0]
                      for a in range(-2, 3) for b in range(-2, 3)]
        assert any(np.array_equal(train.x[50 + i], c) for c in candidates)
    again = Augment(copies=2, max_shift=2).run({"data": d}, StageContext(seed=1))["data"]
    np.testing.assert_array_equal(again.split("train").x, train.x)
    other = Augment(copies=2, max_shift=2).run({"data": d}, StageContext(seed=2))["data"]
    assert not np.array_equal(other.split("train").x, train.x)


def test_flat_square_images_are_shifted_as_images():
    d = data()
    flat = Dataset({"train": Split(d.split("train").x.reshape(50, 36), d.split("train").y)})
    square = Augment().run({"data": d}, StageContext(seed=3))["data"].split("train").x
    out = Augment().run({"data": flat}, StageContext(seed=3))["data"].split("train").x
    assert out.shape == (100, 36)
    np.testing.assert_array_equal(out.reshape(100, 6, 6), square)


def test_augment_needs_images():
    flat = Dataset({"train": Split(np.zeros((4, 35)), np.zeros(4, dtype=int))})
    with pytest.raises(DataError, match="expected images"):
        Augment().run({"data": flat}, StageContext(seed=0))
