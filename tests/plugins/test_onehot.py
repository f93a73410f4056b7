"""The one_hot stage."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from pipeline.artifacts import Dataset, Split
from pipeline.errors import DataError
from pipeline.spec import StageContext
from plugins.onehot import OneHot


def dataset(train, test) -> Dataset:
    train, test = np.asarray(train), np.asarray(test)
    return Dataset(splits={"train": Split(np.zeros((len(train), 2)), train),
                           "test": Split(np.zeros((len(test), 2)), test)}, name="toy")


def run(stage: OneHot, data: Dataset) -> Dataset:
    return stage.run({"data": data}, StageContext(seed=0))["data"]


def test_encodes_by_hand_example():
    out = run(OneHot(classes=4), dataset([2, 0, 3], [1]))
    assert out.split("train").y.dtype == np.float32
    assert out.split("train").y.tolist() == [[0, 0, 1, 0], [1, 0, 0, 0], [0, 0, 0, 1]]
    assert out.split("test").y.tolist() == [[0, 1, 0, 0]]
    assert out.split("train").x is not None and out.name == "toy"


def test_classes_default_to_largest_label_over_all_splits():
    out = run(OneHot(), dataset([0, 1, 1], [4]))
    assert out.split("train").y.shape == (3, 5) and out.split("test").y.shape == (1, 5)


@pytest.mark.parametrize("train, test, message", [
    ([0, 1], [10], "split 'test' has label 10 out of range 0..9"),
    ([0, -1, -3], [1], "split 'train' has label -1 out of range 0..9 (2 such labels"),
])
def test_label_out_of_range(train, test, message):
    with pytest.raises(DataError) as caught:
        run(OneHot(classes=10), dataset(train, test))
    assert message in str(caught.value)


def test_negative_label_without_classes():
    with pytest.raises(DataError, match="label -2 out of range"):
        run(OneHot(), dataset([0, -2], [1]))


def test_labels_already_two_dimensional():
    with pytest.raises(DataError, match=r"split 'train' has targets of shape \(2, 2\).*already one-hot"):
        run(OneHot(), dataset(np.eye(2), [1]))


def test_float_labels_are_refused():
    with pytest.raises(DataError, match="dtype float64"):
        run(OneHot(), dataset(np.array([0.0, 1.0]), [1]))


@pytest.mark.parametrize("fields", [{"classes": 0}, {"classes": "ten"}, {"clases": 3}])
def test_spec_validation(fields):
    with pytest.raises(ValidationError):
        OneHot(**fields)
