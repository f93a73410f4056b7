"""The normalize stage and its saved Normalizer."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pydantic import ValidationError

from pipeline.artifacts import Dataset, Saveable, Split
from pipeline.errors import DataError, UserError
from pipeline.spec import StageContext
from plugins.normalize import Normalize, Normalizer


def dataset() -> Dataset:
    """Train and test drawn from different distributions, so leaked test statistics would show."""
    rng = np.random.default_rng(0)
    train = rng.integers(0, 100, (50, 3)).astype(np.uint8)
    train[:, 2] = 7  # a feature constant on train
    test = rng.integers(150, 256, (20, 3)).astype(np.uint8)
    return Dataset(splits={"train": Split(train, np.zeros(50, np.int64)),
                           "test": Split(test, np.ones(20, np.int64))}, name="toy")


def run(stage: Normalize, data: Dataset):
    out = stage.run({"data": data}, StageContext(seed=0))
    assert set(out) == set(Normalize.outputs) == {"data", "normalizer"}
    return out["data"], out["normalizer"]


def test_scale_divides_by_255():
    data = dataset()
    out, normalizer = run(Normalize(), data)
    for name in ("train", "test"):
        x = out.split(name).x
        assert x.dtype == np.float32
        np.testing.assert_allclose(x, data.split(name).x / 255.0, rtol=1e-6)
        assert out.split(name).y is data.split(name).y
    assert normalizer.method == "scale"


def test_standardize_uses_train_statistics_only():
    data = dataset()
    out, _ = run(Normalize(method="standardize", dtype="float64"), data)
    train, test = data.split("train").x.astype(np.float64), data.split("test").x.astype(np.float64)
    mean = train.sum(axis=0) / len(train)  # hand-computed oracle
    std = np.sqrt(((train - mean) ** 2).sum(axis=0) / len(train))
    std[2] = 1.0  # the constant feature is divided by 1
    np.testing.assert_allclose(out.split("train").x[:, :2].mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(out.split("train").x[:, :2].std(axis=0), 1, atol=1e-12)
    np.testing.assert_allclose(out.split("test").x, (test - mean) / std, rtol=1e-12)
    # Statistics of all the data together would give other numbers for the test split.
    both = np.concatenate([train, test])
    assert not np.allclose(out.split("test").x[:, 0], (test[:, 0] - both[:, 0].mean()) / both[:, 0].std())
    np.testing.assert_array_equal(out.split("test").x[:, 2], test[:, 2] - 7)
    assert np.isfinite(out.split("test").x).all()


def test_standardize_float32_output_keeps_unflattened_shape():
    images = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    data = Dataset(splits={"train": Split(images, np.zeros(2, np.int64))})
    out, normalizer = run(Normalize(method="standardize"), data)
    assert out.split("train").x.dtype == np.float32 and out.split("train").x.shape == (2, 3, 4)
    assert normalizer.offset.shape == (3, 4)


def test_epsilon_sets_what_counts_as_constant():
    x = np.array([[0.0, 0.0], [1e-3, 2.0]])
    data = Dataset(splits={"train": Split(x, np.zeros(2, np.int64))})
    _, normalizer = run(Normalize(method="standardize", dtype="float64", epsilon=0.01), data)
    np.testing.assert_allclose(normalizer.scale, [1.0, 1.0])
    _, normalizer = run(Normalize(method="standardize", dtype="float64"), data)
    np.testing.assert_allclose(normalizer.scale, [5e-4, 1.0])


@pytest.mark.parametrize("method", ["scale", "standardize"])
def test_normalizer_saves_and_loads_without_pickle(tmp_path, method):
    data = dataset()
    out, normalizer = run(Normalize(method=method), data)
    assert isinstance(normalizer, Saveable)
    assert normalizer.save(tmp_path) == ["normalizer.json", "normalizer.npz"]
    meta = json.loads((tmp_path / "normalizer.json").read_text())
    assert meta["method"] == method and meta["dtype"] == "float32"
    with np.load(tmp_path / "normalizer.npz", allow_pickle=False) as arrays:
        assert set(arrays.files) == {"offset", "scale"}
    loaded = Normalizer.load(tmp_path)
    np.testing.assert_array_equal(loaded.apply(data.split("test").x), out.split("test").x)


def test_load_errors(tmp_path):
    with pytest.raises(DataError, match="normalizer.json: no such file"):
        Normalizer.load(tmp_path)
    (tmp_path / "normalizer.json").write_text("{not json")
    with pytest.raises(DataError, match="not a saved normalizer"):
        Normalizer.load(tmp_path)


def test_apply_refuses_other_feature_shapes():
    _, normalizer = run(Normalize(method="standardize"), dataset())
    with pytest.raises(DataError, match=r"shape \(3,\).*\(4,\)"):
        normalizer.apply(np.zeros((2, 4)))


def test_needs_a_train_split():
    data = Dataset(splits={"test": Split(np.zeros((2, 2)), np.zeros(2, np.int64))}, name="toy")
    with pytest.raises(UserError, match="no split 'train'"):
        run(Normalize(), data)


@pytest.mark.parametrize("fields", [{"method": "minmax"}, {"dtype": "float16"}, {"epsilon": -1}])
def test_spec_validation(fields):
    with pytest.raises(ValidationError):
        Normalize(**fields)


@pytest.mark.parametrize("method", ["scale", "standardize"])
def test_invert_gives_back_the_raw_inputs(method):
    data = dataset()
    out, normalizer = run(Normalize(method=method), data)
    for name in ("train", "test"):
        back = normalizer.invert(out.split(name).x)
        assert back.dtype == np.float32 and back is not out.split(name).x
        np.testing.assert_allclose(back, data.split(name).x, atol=1e-3)  # x * scale + offset


@pytest.mark.parametrize("method", ["scale", "standardize"])
def test_apply_and_invert_into_out_give_the_same_bits_and_refuse_a_wrong_out(method):
    """``out=`` (another array, or the input itself) gives exactly the new array's values;
    an out of another shape or an integer type is refused."""
    from plugins.normalize import fit_normalizer

    raw = np.random.default_rng(2).integers(0, 256, size=(30, 16)).astype(np.float32)
    normalizer = fit_normalizer(raw, method, "float32")
    expected = normalizer.apply(raw)
    out = np.full_like(raw, 9.0)
    assert normalizer.apply(raw, out=out) is out
    np.testing.assert_array_equal(out, expected)
    inplace = raw.copy()
    np.testing.assert_array_equal(normalizer.apply(inplace, out=inplace), expected)
    np.testing.assert_array_equal(normalizer.invert(expected, out=out), normalizer.invert(expected))
    for wrong in (np.empty((30, 15), np.float32), np.empty((30, 16), np.int32)):
        with pytest.raises(ValueError, match="out must be a float array of shape"):
            normalizer.apply(raw, out=wrong)
