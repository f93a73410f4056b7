"""The distortion maths (plugins.augment.distort) against independent oracles: hand-made images,
numpy's own rot90 and fliplr, bilinear interpolation being exact on linear images, and the
closed-form statistics of Gaussian-smoothed white noise."""

from __future__ import annotations

import math

import numpy as np
import pytest

from plugins.augment.distort import Distortion, elastic_fields


def images(n=12, h=9, w=9, dtype=np.uint8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, h, w)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_alpha_zero_without_rotation_or_scaling_is_the_identity(dtype):
    x = images(dtype=dtype)
    for sigma in (0.5, 4.0):
        out = Distortion(max_shift=0, elastic=(0.0, sigma)).apply(x, np.random.default_rng(1))
        assert out.dtype == x.dtype
        np.testing.assert_array_equal(out, x)
    # a rotation of at most 0 degrees and a scaling in [1, 1] too
    out = Distortion(rotate=0.0, scale=(1.0, 1.0), elastic=(0.0, 2.0)).apply(
        x, np.random.default_rng(2))
    np.testing.assert_array_equal(out, x)


@pytest.mark.parametrize("elastic", [None, (0.0, 1.0)], ids=["gather", "resampling"])
def test_flips_are_mirror_images_and_about_half_of_them(elastic):
    x = images(n=400)
    out = Distortion(flip=True, elastic=elastic).apply(x, np.random.default_rng(3))
    same = np.all(out == x, axis=(1, 2))  # (n,)
    mirrored = np.all(out == x[:, :, ::-1], axis=(1, 2))
    assert np.all(same | mirrored)
    assert 150 < mirrored.sum() < 250  # p = 1/2: within 5 standard deviations of 200


def test_shifted_mirror_images_are_the_same_through_the_gather_and_the_resampling():
    x = images(n=60)
    gather = Distortion(max_shift=2, flip=True).apply(x, np.random.default_rng(12))
    resampled = Distortion(max_shift=2, flip=True, elastic=(0.0, 1.0)).apply(
        x, np.random.default_rng(12))
    np.testing.assert_array_equal(gather, resampled)
    by_hand = np.fliplr(np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]]))  # mirrored, no shift
    from plugins.augment.distort import shift_images

    one = np.arange(1, 10).reshape(1, 3, 3)
    np.testing.assert_array_equal(shift_images(one, np.array([0]), np.array([0]),
                                               np.array([True]))[0], by_hand)
    # mirrored, then moved right by one: column 2 (now first) ends at column 1
    np.testing.assert_array_equal(shift_images(one, np.array([0]), np.array([1]),
                                               np.array([True]))[0],
                                  [[0, 3, 2], [0, 6, 5], [0, 9, 8]])


def test_whole_pixel_shifts_through_the_resampling_match_the_gather():
    """The resampling path (forced by an elastic field of strength 0) must move images by whole
    pixels exactly as the padded gather does."""
    x = images(n=30)
    gather = Distortion(max_shift=2).apply(x, np.random.default_rng(4))
    resampled = Distortion(max_shift=2, elastic=(0.0, 1.0)).apply(x, np.random.default_rng(4))
    np.testing.assert_array_equal(resampled, gather)  # the same (dy, dx) are drawn first
    assert not np.array_equal(gather, x)


def test_a_quarter_turn_is_numpys_rot90():
    x = images(n=5, h=7, w=7, dtype=np.float64)
    d = Distortion(rotate=90.0)
    n = len(x)
    theta = np.full(n, math.pi / 2)
    zeros = np.zeros(n, dtype=np.int64)
    out = d._resample(x, np.random.default_rng(0), zeros, zeros, theta, np.ones(n),
                      np.zeros(n, dtype=bool))
    turned = [np.rot90(x, k, axes=(1, 2)) for k in (1, -1)]
    assert any(np.allclose(out, t, atol=1e-4) for t in turned)
    assert not np.allclose(out, x, atol=1)


def test_rotation_scaling_and_shift_on_a_linear_image_follow_the_closed_form():
    """Bilinear interpolation is exact on a linear image f(r, c) = a r + b c + k, so inside the
    frame each output pixel must be f at the source point of the documented map."""
    h = w = 15
    a, b, k = 3.0, -2.0, 100.0
    r, c = np.mgrid[0:h, 0:w].astype(np.float64)
    x = np.broadcast_to(a * r + b * c + k, (4, h, w)).astype(np.float32)
    theta = np.deg2rad(np.array([0.0, 10.0, -7.0, 25.0]))
    s = np.array([1.0, 1.2, 0.9, 1.05])
    dy, dx = np.array([0, 1, -2, 0]), np.array([0, -1, 0, 2])
    out = Distortion(rotate=30.0)._resample(x, np.random.default_rng(0), dy, dx, theta, s,
                                              np.zeros(4, dtype=bool))
    cy, cx = (h - 1) / 2, (w - 1) / 2
    for i in range(4):  # the oracle, written out per image
        py, px = r - cy - dy[i], c - cx - dx[i]
        sy = cy + (math.cos(theta[i]) * py + math.sin(theta[i]) * px) / s[i]
        sx = cx + (math.cos(theta[i]) * px - math.sin(theta[i]) * py) / s[i]
        inside = (sy >= 0) & (sy <= h - 1) & (sx >= 0) & (sx <= w - 1)
        assert inside.sum() > 100
        np.testing.assert_allclose(out[i][inside], (a * sy + b * sx + k)[inside], atol=2e-3)


def _kernel(sigma: float) -> np.ndarray:
    """scipy's sampled Gaussian, written out: exp(-k^2 / 2 sigma^2) for |k| <= int(4 sigma +
    0.5), normalised to sum 1 (the documented truncate=4.0)."""
    radius = int(4.0 * sigma + 0.5)
    k = np.arange(-radius, radius + 1)
    g = np.exp(-k ** 2 / (2 * sigma ** 2))
    return g / g.sum()


@pytest.mark.parametrize("sigma", [1.0, 2.0, 3.0])
def test_the_field_is_smoothed_white_noise_of_width_sigma(sigma):
    """For uniform [-1, 1] noise (variance 1/3) smoothed by a separable kernel g, the field has
    standard deviation alpha sqrt(1/3) sum(g^2) and neighbour correlation
    sum(g_k g_k+1) / sum(g_k^2) (about exp(-1 / (4 sigma^2)), a Gaussian twice as wide in
    variance), away from the border."""
    alpha, n, side = 5.0, 40, 64
    field = elastic_fields(np.random.default_rng(5), n, (side, side), alpha, sigma)
    assert field.shape == (2, n, side, side) and field.dtype == np.float32
    g = _kernel(sigma)
    edge = len(g) // 2
    inner = field[:, :, edge:side - edge, edge:side - edge].astype(np.float64)
    expected_std = alpha * math.sqrt(1 / 3) * np.sum(g ** 2)
    assert inner.std() == pytest.approx(expected_std, rel=0.05)
    rho = np.sum(g[:-1] * g[1:]) / np.sum(g ** 2)
    for axis in (2, 3):  # rows and columns
        a = np.moveaxis(inner, axis, -1)
        measured = np.mean(a[..., :-1] * a[..., 1:]) / np.mean(a * a)
        assert measured == pytest.approx(rho, abs=0.02)
    assert rho == pytest.approx(math.exp(-1 / (4 * sigma ** 2)), abs=0.02)


def test_neighbouring_displacements_differ_less_as_sigma_grows():
    """A smoother field (larger sigma) at equal overall size moves neighbouring pixels alike."""
    roughness = []
    for sigma in (0.5, 1.0, 2.0, 4.0):
        field = elastic_fields(np.random.default_rng(6), 30, (48, 48), 1.0, sigma)[:, :, 8:-8, 8:-8]
        step = np.abs(np.diff(field, axis=3)).mean()
        roughness.append(step / field.std())  # relative to the field's own size
    assert all(a > b for a, b in zip(roughness, roughness[1:])), roughness


def test_the_field_scales_with_alpha_and_is_reproducible():
    one = elastic_fields(np.random.default_rng(7), 3, (10, 10), 1.0, 2.0)
    np.testing.assert_allclose(elastic_fields(np.random.default_rng(7), 3, (10, 10), 34.0, 2.0),
                               34 * one, rtol=1e-5)
    np.testing.assert_array_equal(elastic_fields(np.random.default_rng(7), 3, (10, 10), 1.0, 2.0),
                                  one)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_distorted_images_stay_in_their_value_range(dtype):
    x = images(n=200, h=28, w=28, dtype=dtype)
    if dtype == np.float32:
        x /= 255  # [0, 1]
    strong = Distortion(max_shift=3, rotate=30, scale=(0.7, 1.3), elastic=(60.0, 3.0), flip=True)
    out = strong.apply(x, np.random.default_rng(8))
    assert out.dtype == x.dtype and out.shape == x.shape
    assert out.min() >= 0 and out.max() <= x.max()
    assert not np.array_equal(out, x)


def test_same_generator_state_same_distortions_other_seed_other_ones():
    x = images(n=50, h=28, w=28)
    d = Distortion(max_shift=2, rotate=10, scale=(0.9, 1.1), elastic=(34.0, 4.0))
    first = d.apply(x, np.random.default_rng(9))
    np.testing.assert_array_equal(d.apply(x, np.random.default_rng(9)), first)
    other = d.apply(x, np.random.default_rng(10))
    assert np.mean(other != first) > 0.1


def test_chunks_give_what_one_batch_gives(monkeypatch):
    """Cutting the batch into chunks (for memory) changes nothing but the order of the draws of
    the elastic fields; with no elastic field the result must be exactly the same."""
    import plugins.augment.distort as distort

    x = images(n=50, h=10, w=10, dtype=np.float32)
    d = Distortion(max_shift=1, rotate=15, scale=(0.8, 1.2), flip=True)
    whole = d.apply(x, np.random.default_rng(11))
    monkeypatch.setattr(distort, "CHUNK", 7)
    np.testing.assert_array_equal(d.apply(x, np.random.default_rng(11)), whole)


def _shift_one_by_one(images, dy, dx, mirror):
    """The oracle: each image on its own, by the definition (mirror first, then output pixel
    (r, j) reads source (r - dy, j - dx), zero outside)."""
    n, h, w = images.shape
    out = np.zeros_like(images)
    for i in range(n):  # a loop over samples is fine in an oracle
        source = images[i][:, ::-1] if mirror[i] else images[i]
        for r in range(h):
            for j in range(w):
                if 0 <= r - dy[i] < h and 0 <= j - dx[i] < w:
                    out[i, r, j] = source[r - dy[i], j - dx[i]]
    return out


@pytest.mark.parametrize("seed", range(40))
def test_shift_images_equals_moving_each_image_by_hand(seed):
    """Random batches (sizes down to 1 x 1 pixel, shifts up to 3, some past the frame, mirrored
    or not, float32 and uint8): the grouped slice copies equal the image-by-image definition."""
    from plugins.augment.distort import shift_images

    rng = np.random.default_rng(seed)
    n, h, w = (int(v) for v in rng.integers(1, 9, 3))
    limit = int(rng.integers(0, 4))
    dy, dx = rng.integers(-limit, limit + 1, n), rng.integers(-limit, limit + 1, n)
    mirror = rng.random(n) < 0.5
    x = rng.random((n, h, w), dtype=np.float32) if seed % 2 else \
        rng.integers(0, 256, (n, h, w), dtype=np.uint8)
    got = shift_images(x, dy, dx, mirror)
    assert got.dtype == x.dtype
    np.testing.assert_array_equal(got, _shift_one_by_one(x, dy, dx, mirror))
    np.testing.assert_array_equal(shift_images(x, dy, dx), _shift_one_by_one(x, dy, dx, [False] * n))


@pytest.mark.parametrize("fields", [dict(max_shift=2), dict(max_shift=1, flip=True),
                                    dict(flip=True, rotate=10, elastic=(20.0, 3.0))])
def test_out_gets_the_same_copy_and_the_shift_chunks_change_nothing(fields, monkeypatch):
    """``apply(..., out=)`` writes what ``apply`` returns (whatever ``out`` held before), for
    the gather and the resampling path, also when the gather works in chunks of images."""
    import plugins.augment.distort as distort

    x = images(n=60, h=10, w=10, dtype=np.float32)
    expected = Distortion(**fields).apply(x, np.random.default_rng(13))
    monkeypatch.setattr(distort, "CHUNK", 4)
    out = np.full(x.shape, 7.0, dtype=np.float32)
    got = Distortion(**fields).apply(x, np.random.default_rng(13), out=out)
    assert got is out
    if "elastic" in fields:  # chunks reorder the field draws: compare with CHUNK 4 throughout
        expected = Distortion(**fields).apply(x, np.random.default_rng(13))
    np.testing.assert_array_equal(out, expected)
