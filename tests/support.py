"""Helpers shared by the tests: real EntryPoint objects, installed distributions, a small dataset."""

from __future__ import annotations

from importlib import metadata

import numpy as np

from pipeline.artifacts import Dataset, Split
from pipeline.progress import ListProgress


def entry_points(group: str, targets: dict[str, str]) -> list[metadata.EntryPoint]:
    """Real EntryPoint objects, as a distribution's metadata would give them."""
    return [metadata.EntryPoint(name=name, value=value, group=group)
            for name, value in targets.items()]


def make_distribution(root, name: str, version: str, groups: dict[str, dict[str, str]],
                      modules: dict[str, str] | None = None):
    """Write an installed distribution (``NAME-VERSION.dist-info`` with entry points, plus its
    modules) under ``root``, exactly as pip would leave it in site-packages."""
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = []
    for group, targets in groups.items():
        lines.append(f"[{group}]")
        lines.extend(f"{key} = {value}" for key, value in targets.items())
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for filename, source in (modules or {}).items():
        (root / filename).write_text(source)
    return info


def installed_entry_points(root) -> list[metadata.EntryPoint]:
    """The entry points of the distributions under ``root``, with their ``dist`` attached."""
    return [ep for dist in metadata.distributions(path=[str(root)]) for ep in dist.entry_points]


def blobs(n: int = 300, seed: int = 0, classes: int = 3) -> Dataset:
    """``classes`` well-separated Gaussian blobs in 4-d: 80% train, 20% validation."""
    rng = np.random.default_rng(seed)
    centres = 4.0 * np.eye(classes, 4)  # (classes, 4)
    y = rng.integers(0, classes, size=n)  # (n,)
    x = centres[y] + rng.normal(size=(n, 4))  # (n, 4)
    cut = int(0.8 * n)
    return Dataset({"train": Split(x[:cut], y[:cut]), "validation": Split(x[cut:], y[cut:])})


class StopAfter(ListProgress):
    """Raises KeyboardInterrupt in the middle of epoch ``k + 1`` (after ``k`` complete epochs)."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k, self.begun = k, 0

    def begin(self, description: str, total: int) -> None:
        self.begun += 1

    def advance(self, steps: int = 1, **fields) -> None:
        if self.begun == self.k + 1:
            raise KeyboardInterrupt
