"""A pipeline's wiring: every artifact a stage reads is produced by an earlier stage.

Checked before anything runs (``validate``, ``plan``, the runner), so a stage whose input
nothing produces is an error at once, not after an hour of training.
"""

from __future__ import annotations

from pipeline.engine.config import LoadedPipeline
from pipeline.errors import UserError


def check_wiring(pipeline: LoadedPipeline) -> None:
    """Raise a UserError if some stage reads an artifact no earlier stage produces."""
    available: list[str] = []
    problems = []
    for index, (stage, stage_id) in enumerate(zip(pipeline.stages, pipeline.stage_ids())):
        missing = [name for name in stage.inputs if name not in available]
        if missing:
            have = ", ".join(available) or "nothing yet"
            problems.append(
                f"{pipeline.path}: stages[{index}] ({stage_id}) needs "
                f"{', '.join(repr(m) for m in missing)}, which no earlier stage produces "
                f"(available: {have})"
            )
        available.extend(name for name in stage.outputs if name not in available)
        fitted = getattr(stage, "transform_output", None)
        if fitted is not None and fitted not in stage.outputs:
            problems.append(f"{pipeline.path}: stages[{index}] ({stage_id}, {type(stage).__module__}) "
                            f"declares transform_output {fitted!r}, which is not one of its outputs")
    if problems:
        raise UserError("\n".join(problems))
