"""Fixtures for the framework tests: a registry built from real EntryPoint objects."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline.registry import Registry, set_default_registry
from support import entry_points

TOY_STAGES = {
    "produce": "toy_stages:Produce",
    "double": "toy_stages:Double",
    "total": "toy_stages:Total",
    "reads_file": "toy_stages:ReadsFile",
    "liar": "toy_stages:Liar",
    "affine": "toy_stages:Affine",
}


@pytest.fixture
def toy_registry():
    """A registry holding only the toy stages, installed as the default for the test."""
    registry = Registry(entry_points("nnpipe.stages", TOY_STAGES))
    set_default_registry(registry)
    yield registry
    set_default_registry(None)


GOOD = Path(__file__).parent.parent / "data" / "good"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A six-stage pipeline over the 4x4 fixtures, with a validation split."""
    tmp_path = tmp_path_factory.mktemp("tiny")  # shared by sweep and tune tests
    document = {
        "name": "tiny",
        "stages": [
            {"kind": "idx_reader",
             "train": {"images": str(GOOD / "train-images.idx"),
                       "labels": str(GOOD / "train-labels.idx")},
             "test": {"images": str(GOOD / "test-images.idx"),
                      "labels": str(GOOD / "test-labels.idx")}},
            {"kind": "split", "validation_fraction": 0.25},
            {"kind": "normalize"},
            {"kind": "one_hot", "classes": 10},
            {"kind": "mlp_train", "hidden": [8], "epochs": 2, "batch_size": 16,
             "optimizer": {"kind": "sgd", "lr": 0.1}},
            {"kind": "evaluate"},
        ],
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path
