"""The split stage: sizes, disjointness, reproducibility and stratification."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from pipeline.artifacts import Dataset, Split
from pipeline.errors import DataError, UserError
from pipeline.spec import StageContext
from plugins.split import SplitStage, validation_mask


def dataset(labels, test_size=3) -> Dataset:
    """x holds each sample's own index, so a sample can be traced through the split."""
    labels = np.asarray(labels, dtype=np.int64)
    n = labels.shape[0]
    return Dataset(splits={"train": Split(x=np.arange(n).reshape(n, 1), y=labels),
                           "test": Split(x=np.full((test_size, 1), -1), y=np.zeros(test_size, np.int64))},
                   class_names=("a", "b", "c"), sample_shape=(1,), name="toy")


def run(stage: SplitStage, data: Dataset, seed: int = 0) -> Dataset:
    return stage.run({"data": data}, StageContext(seed=seed))["data"]


def ids(split: Split) -> np.ndarray:
    return split.x[:, 0]


def test_sizes_partition_and_order():
    data = dataset(np.arange(100) % 3)
    out = run(SplitStage(validation_fraction=0.25), data)
    assert list(out.splits) == ["train", "validation", "test"]
    train, val = ids(out.split("train")), ids(out.split("validation"))
    assert (len(train), len(val)) == (75, 25)
    assert sorted(np.concatenate([train, val])) == list(range(100))  # disjoint and complete
    assert (np.diff(train) > 0).all()  # original order kept
    # x and y stay paired
    np.testing.assert_array_equal(out.split("validation").y, data.split("train").y[val])
    assert out.split("test") is data.split("test")
    assert out.class_names == ("a", "b", "c") and out.sample_shape == (1,) and out.name == "toy"


def test_same_seed_same_split_other_seed_other_split():
    data = dataset(np.arange(200) % 4)
    first = ids(run(SplitStage(seed=7), data).split("validation"))
    again = ids(run(SplitStage(seed=7), data, seed=99).split("validation"))  # explicit seed wins
    other = ids(run(SplitStage(seed=8), data).split("validation"))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_pipeline_seed_is_used_when_none_is_given():
    data = dataset(np.arange(200) % 4)
    a = ids(run(SplitStage(), data, seed=3).split("validation"))
    b = ids(run(SplitStage(seed=3), data, seed=0).split("validation"))
    c = ids(run(SplitStage(), data, seed=4).split("validation"))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_stratified_split_keeps_class_proportions():
    # Classes of 500, 300, 150 and 50 samples, shuffled.
    labels = np.random.default_rng(1).permutation(np.repeat([0, 1, 2, 3], [500, 300, 150, 50]))
    out = run(SplitStage(validation_fraction=0.2, stratify=True), dataset(labels))
    assert np.bincount(out.split("validation").y).tolist() == [100, 60, 30, 10]
    assert np.bincount(out.split("train").y).tolist() == [400, 240, 120, 40]


def test_stratified_split_on_one_hot_targets():
    labels = np.repeat([0, 1], [30, 10])
    data = dataset(labels)
    data = data.with_splits({"train": Split(x=data.split("train").x, y=np.eye(2)[labels])})
    out = run(SplitStage(validation_fraction=0.5, stratify=True), data)
    assert out.split("validation").y.sum(axis=0).tolist() == [15, 5]


def test_stratified_total_is_exact_when_quotas_are_fractional():
    labels = np.repeat([0, 1, 2], [7, 7, 7])  # 21 * 0.3 = 6.3 -> 6, each class quota 2.1
    mask = validation_mask(labels, 0.3, np.random.default_rng(0))
    assert mask.sum() == 6
    assert np.all(np.abs(np.bincount(labels[mask], minlength=3) - 2.1) < 1)


def test_unstratified_split_draws_uniformly():
    # Over many seeds each sample is chosen about fraction of the time (no position bias).
    labels = np.zeros(50, dtype=np.int64)
    chosen = sum(validation_mask(labels, 0.2, np.random.default_rng(seed)).astype(int) for seed in range(400))
    assert chosen.sum() == 400 * 10
    assert np.all(np.abs(chosen / 400 - 0.2) < 0.1)


@pytest.mark.parametrize("fraction, empty", [(0.05, "'validation'"), (0.95, "'train'")])
def test_an_empty_part_is_an_error(fraction, empty):
    with pytest.raises(DataError, match=f"of the 5 samples of 'train' leaves {empty} empty"):
        run(SplitStage(validation_fraction=fraction), dataset([0, 1, 2, 0, 1]))


@pytest.mark.parametrize("fields", [{"validation_fraction": 0}, {"validation_fraction": 1},
                                    {"validation_fraction": -0.1}, {"source": "x", "target": "x"},
                                    {"stratfy": True}])
def test_spec_validation(fields):
    with pytest.raises(ValidationError):
        SplitStage(**fields)


def test_existing_target_or_missing_source_is_an_error():
    data = dataset([0, 1, 2, 0])
    with pytest.raises(DataError, match="already has a split 'test'"):
        run(SplitStage(target="test"), data)
    with pytest.raises(UserError, match="no split 'dev'"):
        run(SplitStage(source="dev"), data)


def test_stage_declares_its_wiring():
    assert SplitStage.inputs == ("data",) and SplitStage.outputs == ("data",)
    assert SplitStage().kind == "split"


def test_without_shuffle_the_last_samples_are_taken(context):
    x = np.arange(20, dtype=np.uint8).reshape(10, 2)  # (10, 2): row i holds 2i, 2i+1
    y = np.arange(10)
    data = Dataset({"train": Split(x, y)})
    out = SplitStage(validation_fraction=0.3, shuffle=False).run({"data": data}, context)["data"]
    np.testing.assert_array_equal(out.splits["validation"].y, [7, 8, 9])
    np.testing.assert_array_equal(out.splits["train"].y, np.arange(7))


def test_stratify_without_shuffle_is_refused():
    with pytest.raises(ValidationError, match="stratify needs shuffle"):
        SplitStage(stratify=True, shuffle=False)
