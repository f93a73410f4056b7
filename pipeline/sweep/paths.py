"""Where a sweep writes: its directory (``runs/sweep-NAME-TIME``) and its runs' folder names."""

from __future__ import annotations

import datetime as _dt
import re
from pathlib import Path
from typing import Iterable

from pipeline.io.names import slug


def default_out(name: str, root: Path = Path("runs")) -> Path:
    """``runs/sweep-<name>-<date>-<time>``, the name made safe (``pipeline.io.names.slug``)."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    name = slug(name)
    candidate, counter = root / f"sweep-{name}-{stamp}", 1
    while candidate.exists():
        counter += 1
        candidate = root / f"sweep-{name}-{stamp}-{counter}"
    return candidate


def label(overrides: Iterable[str]) -> str:
    """A folder-name label: the last part of each path with its value (``rate=0.1,seed=0``)."""
    parts = []
    for override in overrides:
        path, _, value = override.partition("=")
        parts.append(f"{path.rpartition('.')[2]}={value}")
    return re.sub(r"[^A-Za-z0-9=.,_-]+", "_", ",".join(parts))[:60] or "base"


def run_dir(out: Path, index: int, overrides: Iterable[str]) -> Path:
    """The run directory of run ``index`` in the sweep directory ``out``: ``003-rate=0.1``."""
    return out / f"{index:03d}-{label(overrides)}"
