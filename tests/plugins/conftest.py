"""Fixtures shared by the plugin tests."""

from __future__ import annotations

from importlib import metadata

import pytest

from pipeline.registry import Registry, plugin_entry_points, set_default_registry
from pipeline.spec import StageContext

#: The dataset registrations as nnpipe's pyproject.toml declares them, as real EntryPoint objects.
DATASET_ENTRY_POINTS = [
    metadata.EntryPoint(name="mnist-10k", value="plugins.datasets:MNIST_10K", group="nnpipe.datasets"),
    metadata.EntryPoint(name="fashion-mnist", value="plugins.datasets:FASHION_MNIST",
                        group="nnpipe.datasets"),
]


@pytest.fixture(autouse=True)
def builtin_registry():
    """Make the default registry hold only nnpipe's own plugins, so that the built-ins' tests (and
    the lists of installed names their messages show) do not depend on which third-party plugin
    distributions, such as examples/plugins/nnpipe-extras, are installed beside them."""
    registry = Registry([ep for ep in plugin_entry_points()
                         if ep.dist is not None and ep.dist.metadata["Name"] == "nnpipe"])
    set_default_registry(registry)
    yield registry
    set_default_registry(None)


@pytest.fixture
def dataset_registry():
    """Make the default registry hold exactly the built-in datasets, for the test's duration."""
    registry = Registry(DATASET_ENTRY_POINTS)
    set_default_registry(registry)
    yield registry
    set_default_registry(None)


@pytest.fixture
def context(tmp_path):
    """A stage context with seed 0 and an empty data directory."""
    return StageContext(seed=0, data_dir=tmp_path / "no-data")
