"""The search space: ``--param PATH=SPACE`` parsed into ``Param`` objects, apart from the search.

SPACE is ``float(LOW,HIGH)``, ``float(LOW,HIGH,log)``, ``int(LOW,HIGH)``, ``int(LOW,HIGH,log)``
or ``choice(A,B,...)``. Choice values are written as ``--set`` writes them (YAML), so
``choice([128],[256,128])`` is two values; Optuna stores a choice as its text, and the text is
what becomes the override, so any YAML value works.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml

from pipeline.engine.config import Override, load_pipeline
from pipeline.errors import ConfigError, UserError
from pipeline.sweep.grid import split_values

_SPACE = re.compile(r"(float|int|choice)\((.*)\)", re.DOTALL)
_EXAMPLE = "e.g. --param STAGE.FIELD=float(1e-4,1e-1,log)"
#: The most points ``--sampler grid`` searches: Optuna's grid sampler lists them all up front.
MAX_GRID_POINTS = 100_000
#: The largest magnitude of an int range's ends: samplers draw ints through float64, which holds
#: every integer up to 2**53 exactly.
MAX_INT = 2 ** 53


@dataclass(frozen=True)
class Param:
    """One tuned field: its override path and the values it may take."""

    path: str
    kind: str  # "float", "int" or "choice"
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    choices: tuple[str, ...] = ()
    text: str = ""

    def distribution(self):
        """The Optuna distribution of this parameter."""
        from optuna.distributions import (CategoricalDistribution, FloatDistribution,
                                          IntDistribution)

        if self.kind == "choice":
            return CategoricalDistribution(list(self.choices))
        if self.kind == "int":
            return IntDistribution(int(self.low), int(self.high), log=self.log)
        return FloatDistribution(float(self.low), float(self.high), log=self.log)

    def override(self, value: Any) -> str:
        """The ``--set`` text giving the field ``value`` (a number, or a choice's text)."""
        return f"{self.path}={yaml_float(value)}" if self.kind == "float" else \
            f"{self.path}={value}"

    def first(self) -> Any:
        """A value of the space (the low end, or the first choice) to check the path with."""
        return self.choices[0] if self.kind == "choice" else self.low

    def grid(self) -> list[Any]:
        """Every value, for ``--sampler grid``; a float range has no finite grid."""
        self.grid_size()  # the size first: int(0,10**12) is not made into a list
        if self.kind == "choice":
            return list(self.choices)
        return list(range(int(self.low), int(self.high) + 1))

    def grid_size(self) -> int:
        """How many values ``grid`` has, counted without making them."""
        if self.kind == "choice":
            return len(self.choices)
        if self.kind == "int" and not self.log:
            return int(self.high) - int(self.low) + 1
        raise UserError(f"--param {self.text}: --sampler grid needs choice(...) or int(LOW,HIGH)"
                        f" spaces; use tpe or random for ranges")


def grid_points(params: list[Param]) -> int:
    """The points of the grid over ``params`` (``--sampler grid``); a UserError naming the
    spaces when there are more than ``MAX_GRID_POINTS``, counted before any is made."""
    sizes = [param.grid_size() for param in params]
    points = math.prod(sizes)
    if points > MAX_GRID_POINTS:
        shape = f"{' x '.join(map(str, sizes))} = {points}" if len(sizes) > 1 else str(points)
        raise UserError(f"--sampler grid: {shape} points over "
                        f"{', '.join(p.text for p in params)}; at most {MAX_GRID_POINTS} (use tpe "
                        f"or random for a space this large)")
    return points


def yaml_float(value: float) -> str:
    """``repr`` of a float that YAML 1.1 reads back as a float (``1e-05`` is a string there)."""
    text = repr(float(value))
    if "e" in text and "." not in text:
        mantissa, _, exponent = text.partition("e")
        text = f"{mantissa}.0e{exponent}"
    return text


def _number(kind: str, text: str, where: str):
    try:
        return int(text) if kind == "int" else float(text)
    except ValueError:
        what = "an int" if kind == "int" else "a number"
        raise UserError(f"--param {where}: {text!r} is not {what}") from None


def _range(path: str, kind: str, args: list[str], text: str) -> Param:
    """``float(...)``/``int(...)``: finite ends, LOW below HIGH, ``log`` only with LOW > 0; a
    float range no wider than float64 holds (the samplers draw LOW + u * (HIGH - LOW))."""
    if len(args) not in (2, 3) or (len(args) == 3 and args[2] != "log"):
        raise UserError(f"--param {text}: expected {kind}(LOW,HIGH) or {kind}(LOW,HIGH,log)")
    low, high = _number(kind, args[0], text), _number(kind, args[1], text)
    log = len(args) == 3
    for end, written in ((low, args[0]), (high, args[1])):
        if kind == "float" and not math.isfinite(end):
            raise UserError(f"--param {text}: {written} is not a finite number")
        if kind == "int" and abs(end) > MAX_INT:
            raise UserError(f"--param {text}: {written} is too large (at most 2**53 in size)")
    if kind == "float" and low < high and not math.isfinite(high - low):
        raise UserError(f"--param {text}: the range is too wide (HIGH - LOW overflows a float)")
    if not low < high:
        raise UserError(f"--param {text}: LOW ({args[0]}) must be below HIGH ({args[1]})")
    if log and low <= 0:
        raise UserError(f"--param {text}: a log range needs LOW > 0 (got {args[0]})")
    return Param(path, kind, low, high, log, text=text)


def _choice(path: str, args: list[str], text: str) -> Param:
    """``choice(A,B,...)``: at least one value, each valid YAML, none repeated."""
    if args == [""] or any(not arg for arg in args):
        raise UserError(f"--param {text}: choice() needs at least one value and no empty one, "
                        f"e.g. choice(8,16)")
    for arg in args:
        try:
            yaml.safe_load(arg)
        except yaml.YAMLError:
            raise UserError(f"--param {text}: cannot parse the value {arg!r}") from None
    if len(set(args)) < len(args):
        raise UserError(f"--param {text}: a value is listed twice")
    return Param(path, "choice", choices=tuple(args), text=text)


def parse_param(text: str) -> Param:
    """Parse ``PATH=SPACE``; anything else is a one-line UserError naming the option."""
    path, sep, space = text.partition("=")
    path, space = path.strip(), space.strip()
    if not sep or not re.fullmatch(r"[A-Za-z0-9_.\-]+", path):
        raise UserError(f"--param {text!r}: expected PATH=SPACE ({_EXAMPLE})")
    match = _SPACE.fullmatch(space)
    if not match:
        raise UserError(f"--param {text!r}: unknown space {space!r}; use float(LOW,HIGH[,log]), "
                        f"int(LOW,HIGH[,log]) or choice(A,B,...)")
    kind, args = match.group(1), split_values(match.group(2))
    return _choice(path, args, text) if kind == "choice" else _range(path, kind, args, text)


def check_space(file: Path, params: list[Param], fixed: Iterable[str] = ()) -> None:
    """Refuse a space the pipeline cannot take, before any trial: a path naming no field, a path
    given twice, or a value (the low end, or a choice) the spec refuses."""
    paths = [p.path for p in params]
    if not params:
        raise UserError(f"tune needs at least one --param ({_EXAMPLE})")
    repeated = sorted({p for p in paths if paths.count(p) > 1})
    if repeated:
        raise UserError(f"--param {repeated[0]}: given more than once")
    if "seed" in paths:
        raise UserError("--param seed: use --seeds N to repeat configurations over seeds")
    for param in params:
        # both ends of a range: a field bounded above (dropout < 1) refuses HIGH, not LOW
        values = param.choices if param.kind == "choice" else (param.low, param.high)
        for value in values:
            # An override naming no stage is a UserError naming --param and the value.
            override = Override.parse(param.override(value), f"--param {param.text}: value")
            try:
                load_pipeline(file, [*fixed, override])
            except ConfigError as exc:
                raise UserError(f"--param {param.text}: {exc.problems[0]}") from None
