"""Fixtures for the whole suite."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def private_cache(tmp_path_factory):
    """Keep the suite's cache and checkpoints out of the user's own cache folder."""
    saved = os.environ.get("NNPIPE_CACHE")
    os.environ["NNPIPE_CACHE"] = str(tmp_path_factory.mktemp("nnpipe-cache"))
    yield
    if saved is None:
        os.environ.pop("NNPIPE_CACHE", None)
    else:
        os.environ["NNPIPE_CACHE"] = saved
