"""The key chain: every stage's cache key, computed in one place for the runner, plan and sweep.

Stage N's key is the digest of its key parts (``pipeline.engine.keys.stage_key_parts``), and those
include stage N-1's key, so the keys form a chain: a change to one stage changes its key and
every key after it. ``key_chain`` walks the stages once and returns one ``StageKey`` per stage: a
small frozen record of who the stage is, its key and what the key was built from. The cache
stores that record beside each entry (``to_json``) and reads it back (``from_json``), so
``nnpipe plan`` can say what changed since an earlier key of the same stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from pipeline.engine.keys import FileHasher, digest, input_hashes, stage_key_parts
from pipeline.spec import StageContext


@dataclass(frozen=True)
class StageKey:
    """One link of the key chain.

    Attributes:
        index: the stage's position in the pipeline.
        id: its printed name (``pipeline.engine.addressing.stage_names``).
        kind: its kind.
        key: sha256 hex of ``parts``.
        parts: what the key was built from (kind, spec, code, numpy, previous key, inputs, seed).
        inputs: the files the stage reads, in its order, each with its sha256.
        pipeline: the name of the pipeline the stage belongs to.
    """

    index: int
    id: str
    kind: str
    key: str
    parts: Mapping[str, Any] = field(repr=False)
    inputs: Mapping[str, str] = field(default_factory=dict, repr=False)
    pipeline: str = ""

    @property
    def label(self) -> str:
        """``stages[4] (mlp_train)``, for messages."""
        return f"stages[{self.index}] ({self.id})"

    def to_json(self) -> dict[str, Any]:
        """The record as plain JSON data (what the cache writes beside the entry)."""
        return {"pipeline": self.pipeline, "stage_id": self.id, "index": self.index,
                "kind": self.kind, "key": self.key, "parts": dict(self.parts),
                "inputs": dict(self.inputs), "label": self.label}

    @classmethod
    def from_json(cls, data: Any) -> "StageKey | None":
        """The record ``to_json`` wrote, or one of the previous version (``input_paths`` beside
        ``parts``); None for anything else, so an unreadable record is "no record"."""
        try:
            parts = data["parts"]
            if "inputs" in data and isinstance(data["inputs"], dict):
                inputs = {str(k): str(v) for k, v in data["inputs"].items()}
            else:  # previous version: the paths apart, the hashes in parts["inputs"]
                inputs = dict(zip(map(str, data.get("input_paths", [])),
                                  map(str, parts.get("inputs", []))))
            record = cls(int(data["index"]), str(data["stage_id"]), str(data["kind"]),
                         str(data["key"]), dict(parts), inputs, str(data.get("pipeline", "")))
        except (KeyError, TypeError, ValueError, AttributeError):
            return None
        return record if _well_formed(record.parts) else None


def _well_formed(parts: Mapping[str, Any]) -> bool:
    """Whether key parts read back from a file have the shapes ``plan`` compares."""
    code = parts.get("code", {})
    return (isinstance(parts.get("spec", {}), dict) and isinstance(code, dict)
            and isinstance(code.get("modules", {}), dict)
            and isinstance(parts.get("inputs", []), list))


def key_chain(pipeline, data_dir: Path | None = None, hasher: FileHasher | None = None,
              progress=None) -> list[StageKey]:
    """The ``StageKey`` of every stage of ``pipeline`` (a ``LoadedPipeline``), in order.

    ``hasher`` reuses file hashes between runs; ``progress`` is handed to the stages'
    ``input_files`` (a registered dataset may be fetched to know its files).
    """
    hasher = hasher or FileHasher()
    chain: list[StageKey] = []
    previous: str | None = None
    for index, (stage, stage_id) in enumerate(zip(pipeline.stages, pipeline.stage_ids())):
        context = StageContext(seed=pipeline.spec.seed, data_dir=data_dir, progress=progress,
                               stage_index=index)
        inputs = input_hashes(stage, context, hasher)  # path -> sha256, in the stage's order
        parts = stage_key_parts(stage, previous, context, hasher, inputs=inputs)
        previous = digest(parts)
        chain.append(StageKey(index, stage_id, stage.kind, previous, parts, inputs,
                              pipeline.spec.name))
    return chain
