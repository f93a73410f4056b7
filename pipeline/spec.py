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


def registry_of(info: ValidationInfo) -> Any:
    """The ``pipeline.registry.Registry`` a spec is validated against: the one ``load_pipeline``
    was given (``model_validate(..., context={"registry": ...})``), else the default one. A
    validator looking a plugin up by name uses this, never the default registry directly."""
    registry = (info.context or {}).get("registry")
    if registry is None:
        from pipeline.registry import default_registry

        registry = default_registry()
    return registry


#: A seed field in a spec: a non-negative integer (numpy's generators refuse negative seeds, so
#: a negative one is refused when the file is validated, not when the stage runs).
Seed = Annotated[int, Field(ge=0)]


class StageSpec(BaseModel):
    """Base of every stage: a frozen pydantic model with a ``kind`` tag and a ``run`` method.

    Subclasses declare ``kind: Literal["name"] = "name"`` (the entry-point name), their own fields,
    the artifacts they read (``inputs``) and write (``outputs``), and implement ``run``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    kind: str
    id: str | None = Field(
        default=None,
        description="Name used to address this stage in overrides (defaults to its kind when unique).",
    )

    #: Names of the artifacts this stage reads; the runner checks an earlier stage produces each.
    inputs: ClassVar[tuple[str, ...]] = ()
    #: Names of artifacts this stage reads when an earlier stage produced them (for example the
    #: fitted normaliser); absent ones are simply not in ``run``'s inputs.
    optional_inputs: ClassVar[tuple[str, ...]] = ()
    #: Names of the artifacts this stage writes (it may overwrite one it read).
    outputs: ClassVar[tuple[str, ...]] = ()
    #: Whether the result depends on the pipeline's seed (then the seed is part of its key).
    uses_seed: ClassVar[bool] = True
    #: A stage that fits a transform on the train split and applies it to every split names here
    #: the output holding the fitted transform (an object with ``apply(x)`` and
    #: ``save(directory)``), and implements ``load_transform``. The runner saves each such
    #: transform in the run directory and records the chain in order (``transforms.json``), so
    #: ``nnpipe predict``, the Python API and the exports replay it before the model.
    transform_output: ClassVar[str | None] = None
    #: Values this stage leaves in the run directory (a key of ``history.json`` or of
    #: ``metrics.json``) that a search (``nnpipe sweep``, ``nnpipe tune``) may rank by, each with
    #: its direction: ``"max"`` when higher is better, ``"min"`` when lower is. A search ranks by
    #: the first one declared in the pipeline unless ``--metric`` names another.
    metric_directions: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def load_transform(cls, directory: Path) -> Any:
        """The fitted transform ``save`` wrote into ``directory`` (no pickles), for a stage
        with a ``transform_output``; raise ``pipeline.errors.DataError`` if it is not there."""
        raise NotImplementedError(f"stage {cls.__name__} fits no transform")

    def input_files(self, context: "StageContext") -> list[Path]:
        """The files this stage reads, whose content is part of its cache key."""
        return []

    def code_modules(self) -> list[str]:
        """Modules besides the stage's own whose code shapes its result (for example the
        plugins it looks up by name); their source is part of its cache key."""
        return []

    def run(self, inputs: Mapping[str, Any], context: "StageContext") -> dict[str, Any]:
        """Do the stage's work: read ``inputs`` (the names in ``self.inputs``, and those in
        ``self.optional_inputs`` that an earlier stage produced), return a dict with exactly the
        names in ``self.outputs``."""
        raise NotImplementedError(f"stage {self.kind!r} does not implement run()")


def stage_class_problem(value: Any) -> str | None:
    """None when ``value`` is a ``StageSpec`` subclass, else what it is instead (the stage
    group's type check)."""
    if isinstance(value, type) and issubclass(value, StageSpec):
        return None
    return f"expected a StageSpec subclass, got {value!r}"


class StageContext:
    """What a stage may know about the run it is part of, without knowing about the CLI or cache.

    Attributes:
        seed: the pipeline's seed; a stage derives its own generator from it.
        data_dir: where registered datasets are looked for (``NNPIPE_DATA``), or None.
        progress: a callable receiving progress events (see ``pipeline.progress``).
        stage_index: the stage's position in the pipeline.
        monitor: called by ``report`` with ``(step, values)``; returns True when whoever runs the
            pipeline (a tuner) wants this stage to stop. None: nobody is watching.
        stop_requested: True once a report was answered with "stop"; the runner then neither
            caches the stage's (partial) result nor runs the stages after it.
    """

    def __init__(self, seed: int, data_dir: Path | None = None, progress=None, stage_index: int = 0,
                 checkpoint_dir: Path | None = None, monitor=None):
        from pipeline.progress import NullProgress

        self.seed = seed
        self.data_dir = data_dir
        self.progress = progress if progress is not None else NullProgress()
        self.stage_index = stage_index
        self.checkpoint_dir = checkpoint_dir
        self.monitor = monitor
        self.stop_requested = False

    def report(self, step: int, values: Mapping[str, Any]) -> bool:
        """Report intermediate values (for example one epoch's ``val_accuracy`` at ``step`` =
        the epoch); True means "stop now": return what you have, it will not be kept.

        A no-op answering False unless the pipeline runs under a monitor (``nnpipe tune``).
        """
        if self.monitor is not None and not self.stop_requested:
            self.stop_requested = bool(self.monitor(step, values))
        return self.stop_requested
