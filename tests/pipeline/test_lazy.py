"""pipeline.lazy: a module's names imported on first use."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline.lazy import lazy_attributes

_FRESH = """
import sys
import plugins.augment as augment
before = "plugins.augment.distort" in sys.modules
from plugins.augment import Distortion, shift_images
from plugins.augment.distort import Distortion as direct
print(before, "plugins.augment.distort" in sys.modules, Distortion is direct)
"""


def test_a_lazy_name_is_imported_on_first_use_and_is_the_real_object():
    result = subprocess.run([sys.executable, "-c", _FRESH], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["False", "True", "True"]


def test_any_other_name_is_the_usual_attribute_error():
    getter = lazy_attributes("some.module", {"Path": "pathlib"})
    from pathlib import Path

    assert getter("Path") is Path
    with pytest.raises(AttributeError, match="module 'some.module' has no attribute 'Nope'"):
        getter("Nope")
    with pytest.raises(AttributeError):
        import plugins.mlp.layers as layers

        layers.NoSuchLayer  # noqa: B018
