"""The grid: ``--grid PATH=V1,V2,...`` options parsed into axes, and their cartesian product."""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass

from pipeline.errors import UserError
from pipeline.userfiles import load_yaml

_EXAMPLE = "e.g. --grid STAGE.FIELD=0.1,0.01"
#: The most runs one sweep plans (configurations times seeds): every one is validated and
#: given its task before the first runs, so a grid of 100 values on 6 axes (10**12 runs) would
#: fill the memory before saying anything.
MAX_RUNS = 10_000


@dataclass(frozen=True)
class Axis:
    """One ``--grid PATH=V1,V2,...``: an override path and the value texts it takes."""

    path: str
    values: tuple[str, ...]

    def overrides(self) -> list[str]:
        """``PATH=V`` for every value, as ``--set`` would write them."""
        return [f"{self.path}={value}" for value in self.values]


def split_values(text: str) -> list[str]:
    """Split ``V1,V2,...`` on the commas outside brackets, so ``[64],[128,64]`` is two values."""
    values, depth, current = [], 0, ""
    for char in text:
        if char in "[{(":
            depth += 1
        elif char in "]})":
            depth -= 1
        if char == "," and depth == 0:
            values.append(current.strip())
            current = ""
        else:
            current += char
    values.append(current.strip())
    return values


def parse_grid(text: str) -> Axis:
    """Parse ``PATH=V1,V2,...``; anything else is a one-line UserError."""
    path, sep, raw = text.partition("=")
    path = path.strip()
    if not sep or not path or not re.fullmatch(r"[A-Za-z0-9_.\-\[\]#]+", path):
        raise UserError(f"--grid {text!r}: expected PATH=V1,V2,... ({_EXAMPLE})")
    values = split_values(raw)
    if any(not value for value in values):
        raise UserError(f"--grid {text!r}: empty value in {raw!r} ({_EXAMPLE})")
    for value in values:
        load_yaml(value, f"--grid {text!r}: value {value!r}")  # within the pipeline file's caps
    return Axis(path, tuple(values))


def configurations(axes: list[Axis], seeds: int | None = None) -> list[tuple[str, ...]]:
    """The cartesian product of the axes, each configuration a tuple of override texts; a
    UserError when a path is given twice or the runs (``seeds`` per configuration) would be
    more than ``MAX_RUNS``, counted before any is made."""
    paths = [axis.path for axis in axes]
    repeated = sorted({p for p in paths if paths.count(p) > 1})
    if repeated:
        raise UserError(f"--grid {repeated[0]}: given more than once; list all its values in one "
                        f"--grid")
    sizes = [len(axis.values) for axis in axes]
    runs = math.prod(sizes) * (seeds or 1)
    if runs > MAX_RUNS:
        shape = " x ".join(map(str, sizes)) + (f" configurations x {seeds} seeds" if seeds
                                               else " configurations")
        raise UserError(f"--grid: {shape} = {runs} runs; a sweep runs at most {MAX_RUNS} (split "
                        f"it, or give fewer values)")
    return [tuple(combo) for combo in itertools.product(*(axis.overrides() for axis in axes))]
