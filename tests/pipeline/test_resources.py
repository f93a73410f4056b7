"""Memory checks happen before the allocation, with a clear message."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import resources
from pipeline.errors import DataError
from plugins.idx import read_idx, write_idx


def test_human_bytes():
    assert resources.human_bytes(512) == "512 B"
    assert resources.human_bytes(1536) == "1.5 KB"
    assert resources.human_bytes(3 * 1024 ** 3) == "3.0 GB"
    assert resources.human_bytes(2 ** 8000).endswith(" TB")  # no float overflow


def test_available_memory_is_a_plausible_number():
    available = resources.available_memory()
    assert available is None or available > 1024 ** 2


def test_a_file_too_big_for_memory_is_refused_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "big.idx"
    write_idx(path, np.zeros((100, 28, 28), dtype=np.float64))
    monkeypatch.setattr(resources, "available_memory", lambda: 1000)
    with pytest.raises(DataError) as caught:
        read_idx(path)
    message = str(caught.value)
    assert str(path) in message and "need 1.2 MB to read, but only 1000 B" in message


def test_normalize_checks_the_converted_size(monkeypatch, tmp_path):
    from pipeline.artifacts import Dataset, Split
    from pipeline.spec import StageContext
    from plugins.normalize import Normalize

    data = Dataset({"train": Split(np.zeros((1000, 784), np.uint8), np.zeros(1000, np.int64))},
                   name="toy")
    monkeypatch.setattr(resources, "available_memory", lambda: 4_000_000)
    with pytest.raises(DataError, match="normalize: dataset toy as float64 needs 6.0 MB"):
        Normalize(dtype="float64").run({"data": data}, StageContext(seed=0))
    Normalize(dtype="float32").run({"data": data}, StageContext(seed=0))  # 3.0 MB fits
