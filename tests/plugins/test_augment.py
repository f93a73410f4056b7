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


# --- the new distortions, fixed and fresh -------------------------------------------------------

from pydantic import ValidationError  # noqa: E402

from plugins.augment import Augmentation, Distortion, TrainingArrays  # noqa: E402
from plugins.normalize import fit_normalizer  # noqa: E402

ELASTIC = dict(max_shift=2, rotate=10, scale=0.1, elastic={"alpha": 34, "sigma": 4})


def digits(n=40, side=12, seed=0):
    rng = np.random.default_rng(seed)
    x = np.zeros((n, side, side), dtype=np.uint8)
    x[:, 3:9, 4:8] = rng.integers(50, 256, size=(n, 6, 4))  # ink in the middle, zero around
    return Dataset({"train": Split(x.reshape(n, -1), rng.integers(0, 10, size=n)),
                    "validation": Split(x[:4].reshape(4, -1), np.zeros(4, dtype=int))})


def test_without_the_new_fields_the_copies_are_todays_shifts():
    """No rotation, scaling, flip or elastic field: the copies are the padded-gather shifts of the
    seeded draws, as before these fields existed (the default pipeline's numbers stay put)."""
    d = data()
    out = Augment(copies=2, max_shift=2).run({"data": d}, StageContext(seed=1))
    rng = np.random.default_rng([1, 0xA6])
    x = d.split("train").x
    expected = [x]
    for _ in range(2):
        dy, dx = rng.integers(-2, 3, size=(2, 50))
        expected.append(shift_images(x, dy, dx))
    np.testing.assert_array_equal(out["data"].split("train").x, np.concatenate(expected))
    assert out["augmentation"].distortion.shifts_only and not out["augmentation"].fresh


def test_fixed_elastic_copies_keep_labels_in_order_and_are_reproducible():
    d = digits()
    spec = Augment(copies=3, **ELASTIC)
    out = spec.run({"data": d}, StageContext(seed=4))["data"]
    train = out.split("train")
    n = len(d.split("train"))
    assert train.x.shape == (4 * n, 144) and train.x.dtype == np.uint8
    np.testing.assert_array_equal(train.x[:n], d.split("train").x)  # originals first
    np.testing.assert_array_equal(train.y, np.tile(d.split("train").y, 4))  # label order kept
    for copy in range(1, 4):
        assert np.mean(train.x[copy * n:(copy + 1) * n] != train.x[:n]) > 0.1
    again = spec.run({"data": d}, StageContext(seed=4))["data"].split("train").x
    np.testing.assert_array_equal(again, train.x)
    other = spec.run({"data": d}, StageContext(seed=5))["data"].split("train").x
    assert not np.array_equal(other, train.x)


def test_fresh_leaves_the_data_alone_and_returns_the_recipe():
    d = digits()
    out = Augment(copies=2, fresh=True, **ELASTIC).run({"data": d}, StageContext(seed=6))
    assert out["data"] is d  # the cache stores the undistorted images only
    recipe = out["augmentation"]
    assert recipe.fresh and recipe.copies == 2 and recipe.seed == 6
    assert recipe.image_shape == (12, 12) and recipe.raw
    assert recipe.distortion == Distortion(2, 10.0, (0.9, 1.1), (34.0, 4.0), False)
    import pickle

    assert pickle.loads(pickle.dumps(recipe)) == recipe  # it goes into the stage cache


def fresh_arrays(seed=6, copies=2, normalizer=None, x=None, originals=True):
    d = digits()
    recipe = Augment(copies=copies, fresh=True, originals=originals, **ELASTIC).run(
        {"data": d}, StageContext(seed=seed))["augmentation"]
    x = d.split("train").x.astype(np.float32) / 255 if x is None else x  # (n, 144)
    y = np.eye(10, dtype=np.float32)[d.split("train").y]  # (n, 10)
    return TrainingArrays(recipe, normalizer, x, y, y.argmax(axis=1)), x, y


def test_fresh_epochs_differ_and_each_epoch_is_reproducible():
    arrays, x, y = fresh_arrays()
    n = len(x)
    assert arrays.rows == 3 * n
    first = [a.copy() for a in arrays.epoch(1)]
    second = [a.copy() for a in arrays.epoch(2)]
    for xe, ye, labels in (first, second):
        np.testing.assert_array_equal(xe[:n], x)  # the originals first, every epoch
        np.testing.assert_array_equal(ye, np.tile(y, (3, 1)))  # labels in the same order
        np.testing.assert_array_equal(labels, np.tile(y.argmax(axis=1), 3))
        assert 0 <= xe.min() and xe.max() <= 1  # still in the range of the inputs
    assert np.mean(first[0][n:] != second[0][n:]) > 0.1  # fresh: new draws each epoch
    # epoch 2 from a new object (a resumed run) is epoch 2 of the first: (seed, epoch) alone
    resumed, _, _ = fresh_arrays()
    np.testing.assert_array_equal(resumed.epoch(2)[0], second[0])
    other_seed, _, _ = fresh_arrays(seed=7)
    assert not np.array_equal(other_seed.epoch(2)[0], second[0])


def test_without_originals_each_epoch_is_the_fresh_copies_alone():
    """originals: false: an epoch's rows are exactly the copies the same recipe with the
    originals would train on (same draws, same order), and no undistorted block."""
    with_originals, x, y = fresh_arrays(copies=2)
    alone, _, _ = fresh_arrays(copies=2, originals=False)
    n = len(x)
    assert alone.rows == 2 * n
    for epoch in (1, 2):
        xe, ye, labels = alone.epoch(epoch)
        np.testing.assert_array_equal(xe, with_originals.epoch(epoch)[0][n:])
        np.testing.assert_array_equal(ye, np.tile(y, (2, 1)))  # labels in the same order
        np.testing.assert_array_equal(labels, np.tile(y.argmax(axis=1), 2))
        assert np.mean(xe[:n] != x) > 0.1  # the first block is distorted, not the originals
    first = alone.epoch(1)[0].copy()  # the buffer is reused by the next epoch
    assert np.mean(first != alone.epoch(2)[0]) > 0.1  # fresh: new draws each epoch


def test_without_fresh_augmentation_the_arrays_are_passed_through():
    d = digits()
    x = d.split("train").x.astype(np.float32)
    y = np.eye(10, dtype=np.float32)[d.split("train").y]
    fixed = Augment(**ELASTIC).run({"data": d}, StageContext(seed=1))["augmentation"]
    for recipe in (None, fixed):
        arrays = TrainingArrays(recipe, None, x, y, y.argmax(axis=1))
        got = arrays.epoch(3)
        assert got[0] is x and got[1] is y and arrays.rows == len(x)


def test_fresh_distortions_are_drawn_in_pixel_space_under_a_standardizer():
    """Undo the per-pixel standardizer, distort the pixels, standardize again: with alpha 0 and
    no shift that is the identity (up to rounding), and otherwise exactly the standardized
    distortion of the raw pixels."""
    d = digits()
    raw = d.split("train").x  # (n, 144) uint8
    normalizer = fit_normalizer(raw, "standardize", "float32")
    x = normalizer.apply(raw)  # (n, 144) float32
    still = Augmentation(Distortion(elastic=(0.0, 3.0)), 1, True, 0, (12, 12))
    np.testing.assert_allclose(still.distorted(x, still.rng(1), normalizer), x, atol=1e-4)
    recipe = Augmentation(Distortion(max_shift=1, elastic=(20.0, 3.0)), 1, True, 0, (12, 12))
    got = recipe.distorted(x, recipe.rng(1), normalizer)
    expected = normalizer.apply(recipe.distortion.apply(
        raw.reshape(-1, 12, 12).astype(np.float32), recipe.rng(1)).reshape(-1, 144))
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_fresh_refuses_features_that_are_no_longer_the_images():
    """Refused when the arrays are made, before the first epoch trains."""
    recipe = Augmentation(Distortion(max_shift=1), 1, True, 0, (12, 12))
    with pytest.raises(DataError, match="20 features but the augment stage saw 12 x 12"):
        TrainingArrays(recipe, None, np.zeros((5, 20), np.float32),
                       np.zeros((5, 2), np.float32), np.zeros(5, dtype=int))


@pytest.mark.parametrize("fields, message", [
    ({"scale": 1.5}, "largest change f must be in \\[0, 1\\)"),
    ({"scale": [1.2, 0.8]}, "0 < lo <= hi <= 4"),
    ({"elastic": {"alpha": 34}}, "sigma"),
    ({"elastic": {"alpha": 34, "sigma": 4, "beta": 1}}, "beta"),
    ({"rotate": -5}, "rotate"),
    ({"fresh": True, "split": "validation"}, "cannot be fresh"),
    ({"originals": False}, "originals: false .* needs fresh: true"),
])
def test_bad_fields_are_refused_with_their_name(fields, message):
    with pytest.raises(ValidationError, match=message):
        Augment(**fields)


def test_scale_as_a_fraction_or_a_range():
    assert Augment(scale=0.25).distortion().scale == (0.75, 1.25)
    assert Augment(scale=[0.8, 1.1]).distortion().scale == (0.8, 1.1)
    assert Augment().distortion().shifts_only
    spec = Augment(scale=[0.8, 1.1], elastic={"alpha": 8, "sigma": 3}, fresh=True)
    assert Augment.model_validate(spec.model_dump(mode="json")) == spec  # round-trips


def _traced(call):
    """(bytes still held after ``call()``, peak bytes during it), by tracemalloc (numpy reports
    its array data to it)."""
    import tracemalloc

    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        call()
        now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return now - before, peak - before


@pytest.mark.parametrize("fields", [dict(max_shift=1, flip=True), dict(max_shift=0, flip=True),
                                    ELASTIC])
@pytest.mark.parametrize("standardized", [False, True])
def test_fresh_epochs_allocate_nothing_of_the_datas_size(fields, standardized, monkeypatch):
    """After the first epoch, an epoch distorts into the buffer it already has: its peak of new
    memory stays under a quarter of one copy's rows, and nothing is left behind, epoch after
    epoch (new arrays of the data's size every epoch, page-faulted in anew, made Fashion-MNIST's
    fresh epochs grow from 5 s to 19 s). Images are resampled in chunks of 8 here, so the
    chunks' coordinates are small next to the 600 images."""
    import plugins.augment.distort as distort

    monkeypatch.setattr(distort, "CHUNK", 8)
    rng = np.random.default_rng(3)
    raw = rng.integers(0, 256, size=(600, 144)).astype(np.float32)
    normalizer = fit_normalizer(raw, "standardize", "float32") if standardized else None
    x = normalizer.apply(raw) if standardized else raw / 255
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 600)]
    recipe = Augmentation(Augment(copies=2, fresh=True, **fields).distortion(), 2, True, 0,
                          (12, 12))
    arrays = TrainingArrays(recipe, normalizer, x, y, y.argmax(axis=1))
    first = arrays.epoch(1)[0].copy()
    one_copy = x.nbytes  # 600 x 144 float32
    for epoch in (2, 3, 4):
        held, peak = _traced(lambda: arrays.epoch(epoch))
        assert peak < one_copy / 4 and held < one_copy / 100, (epoch, peak, held)
    assert np.mean(arrays.epoch(5)[0][600:] != first[600:]) > 0.1  # still fresh draws


def test_training_on_fresh_copies_holds_the_same_memory_every_epoch():
    """mlp_train over fresh copies (read by tracemalloc whenever an epoch reports): from the
    second epoch on, what the run holds stays put, and an epoch's peak of new memory is small
    next to the epoch's rows (it trained on a buffer it made once)."""
    import tracemalloc

    from plugins.mlp.trainer import MLPTrain

    d = digits(n=600)
    recipe = Augment(copies=1, fresh=True, max_shift=1, flip=True).run(
        {"data": d}, StageContext(seed=0))["augmentation"]
    readings = []  # (bytes held, peak since the last reading) at the end of each epoch

    def monitor(step, values):
        readings.append(tracemalloc.get_traced_memory())
        tracemalloc.reset_peak()
        return False

    tracemalloc.start()
    try:
        MLPTrain(hidden=[16], epochs=6, batch_size=64, seed=0).run(
            {"data": d, "augmentation": recipe}, StageContext(seed=0, monitor=monitor))
    finally:
        tracemalloc.stop()
    rows = 2 * 600 * 144 * 4  # the epoch's float32 rows: originals and one copy
    assert len(readings) == 5
    for (held, peak), (before, _) in zip(readings[2:], readings[1:]):
        assert abs(held - before) < rows / 100 and peak - before < rows / 4, readings
