"""Tiny stages for the framework's own tests: no numpy maths, no MNIST."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pipeline.spec import RelativePath, StageSpec


class Produce(StageSpec):
    """Produces a list of numbers."""

    kind: Literal["produce"] = "produce"
    count: int = Field(3, gt=0)
    outputs = ("numbers",)

    def run(self, inputs, context):
        return {"numbers": list(range(self.count))}


class Double(StageSpec):
    """Doubles the numbers."""

    kind: Literal["double"] = "double"
    factor: int = 2
    inputs = ("numbers",)
    outputs = ("numbers",)

    def run(self, inputs, context):
        return {"numbers": [n * self.factor for n in inputs["numbers"]]}


class Total(StageSpec):
    """Sums the numbers."""

    kind: Literal["total"] = "total"
    inputs = ("numbers",)
    outputs = ("total",)

    def run(self, inputs, context):
        return {"total": sum(inputs["numbers"])}


class ReadsFile(StageSpec):
    """Has a path field, resolved against the pipeline file."""

    kind: Literal["reads_file"] = "reads_file"
    path: RelativePath
    outputs = ("text",)

    def run(self, inputs, context):
        return {"text": self.path.read_text()}


class Liar(StageSpec):
    """Declares one output and returns another."""

    kind: Literal["liar"] = "liar"
    outputs = ("numbers",)

    def run(self, inputs, context):
        return {"something_else": 1}


NOT_A_STAGE = 42


class Affine(StageSpec):
    """Scales and shifts the numbers (two fields, for telling near keys from far ones)."""

    kind: Literal["affine"] = "affine"
    scale: int = 1
    shift: int = 0
    inputs = ("numbers",)
    outputs = ("numbers",)

    def run(self, inputs, context):
        return {"numbers": [n * self.scale + self.shift for n in inputs["numbers"]]}


class MaybeScaled(StageSpec):
    """Sums the numbers, times a ``factor`` artifact when an earlier stage produced one."""

    kind: Literal["maybe_scaled"] = "maybe_scaled"
    inputs = ("numbers",)
    optional_inputs = ("factor",)
    outputs = ("total",)

    def run(self, inputs, context):
        return {"total": (sum(inputs["numbers"]) * inputs.get("factor", 1), sorted(inputs))}


class Factor(StageSpec):
    """Produces a ``factor``."""

    kind: Literal["factor"] = "factor"
    value: int = 10
    outputs = ("factor",)

    def run(self, inputs, context):
        return {"factor": self.value}
