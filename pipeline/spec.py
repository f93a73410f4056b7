"""Stage specs: the pydantic models a pipeline file is validated against.

A stage is one class: its fields are the spec a user writes in the pipeline file, and its
``run`` method does the work. ``inputs`` and ``outputs`` name the artifacts it consumes and
produces, so the runner can check the wiring of a whole pipeline before anything runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Mapping

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo


def _resolve_against_file(value: Path, info: ValidationInfo) -> Path:
    """Resolve a relative path against the folder of the pipeline file being loaded."""
    base = (info.context or {}).get("base_dir")
    value = Path(value).expanduser()
    if base is not None and not value.is_absolute():
        value = Path(base) / value
    return value


#: A path field in a spec: relative paths resolve against the pipeline file's folder.
RelativePath = Annotated[Path, AfterValidator(_resolve_against_file)]

#: A seed field in a spec: a non-negative integer (numpy's generators refuse negative seeds, so
#: a negative one is refused when the file is validated, not when the stage runs).
Seed = Annotated[int, Field(ge=0)]


class StageSpec(BaseModel):
    """Base of every stage: a frozen pydantic model with a ``kind`` tag and a ``run`` method.

    Subclasses declare ``kind: Literal["name"] = "name"`` (the entry-point name), their own fields,
    the artifacts they read (``inputs``) and write (``outputs``), and implement ``run``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    id: str | None = Field(
        default=None,
        description="Name used to address this stage in overrides (defaults to its kind when unique).",
    )

    #: Names of the artifacts this stage reads; the runner checks an earlier stage produces each.
    inputs: ClassVar[tuple[str, ...]] = ()
    #: Names of the artifacts this stage writes (it may overwrite one it read).
    outputs: ClassVar[tuple[str, ...]] = ()
    #: Whether the result depends on the pipeline's seed (then the seed is part of its key).
    uses_seed: ClassVar[bool] = True

    def input_files(self, context: "StageContext") -> list[Path]:
        """The files this stage reads, whose content is part of its cache key."""
        return []

    def code_modules(self) -> list[str]:
        """Modules besides the stage's own whose code shapes its result (for example the
        plugins it looks up by name); their source is part of its cache key."""
        return []

    def run(self, inputs: Mapping[str, Any], context: "StageContext") -> dict[str, Any]:
        """Do the stage's work: read ``inputs`` (only the names in ``self.inputs``), return a
        dict with exactly the names in ``self.outputs``."""
        raise NotImplementedError(f"stage {self.kind!r} does not implement run()")


class StageContext:
    """What a stage may know about the run it is part of, without knowing about the CLI or cache.

    Attributes:
        seed: the pipeline's seed; a stage derives its own generator from it.
        data_dir: where registered datasets are looked for (``NNPIPE_DATA``), or None.
        progress: a callable receiving progress events (see ``pipeline.progress``).
        stage_index: the stage's position in the pipeline.
    """

    def __init__(self, seed: int, data_dir: Path | None = None, progress=None, stage_index: int = 0,
                 checkpoint_dir: Path | None = None):
        from pipeline.progress import NullProgress

        self.seed = seed
        self.data_dir = data_dir
        self.progress = progress if progress is not None else NullProgress()
        self.stage_index = stage_index
        self.checkpoint_dir = checkpoint_dir
