"""Fixtures for the framework tests: a registry built from real EntryPoint objects."""

from __future__ import annotations

import pytest

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
