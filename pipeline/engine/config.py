"""Pipeline files: read YAML, TOML or JSON, apply ``--set`` overrides, validate with pydantic.

The model of a pipeline file is built at load time from the registry, so a third party's stage
kinds validate exactly like the built-ins. Every problem is reported at once, each with its path
(``stages[4].batch_size``) and, for YAML, its line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Iterable, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from pipeline.engine.addressing import format_loc, stage_names
from pipeline.engine.overrides import Loc, apply_overrides  # noqa: F401 (pipeline.engine.config's API)
from pipeline.errors import ConfigError, PluginError, UserError
from pipeline.registry import Registry, closest, default_registry, unknown_name_message
from pipeline.spec import Seed, StageSpec
from pipeline.spec import stage_class_problem as check_stage_class  # noqa: F401 (its API)
from pipeline.userfiles import load_json, load_toml, load_yaml, read_text


# --------------------------------------------------------------------------------------------
# The pipeline model, built from the registry


def stage_classes(registry: Registry, kinds: Iterable[str] | None = None
                  ) -> dict[str, type[StageSpec]]:
    """Load the registered stage classes of ``kinds`` (default: every registered one), by kind;
    an unregistered kind or a broken class is left out (it fails only the pipelines that use
    it, with its own message)."""
    classes = {}
    wanted = registry.names("stages") if kinds is None else sorted(set(kinds))
    for name in wanted:
        if name not in registry.names("stages"):
            continue
        try:
            classes[name] = registry.load("stages", name, check=check_stage_class)
        except PluginError:
            continue
    return classes


class PipelineBase(BaseModel):
    """The fields of a pipeline file other than its stages."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(default="pipeline", description="A name for the runs of this pipeline.")
    seed: Seed = Field(default=0, description="Seed every stage derives its randomness from.")
    description: str = ""

    @model_validator(mode="after")
    def _unique_ids(self):
        seen: dict[str, int] = {}
        for index, stage in enumerate(getattr(self, "stages", ())):
            if stage.id is not None and stage.id in seen:
                raise ValueError(
                    f"stages[{index}].id: {stage.id!r} is already the id of stages[{seen[stage.id]}]"
                )
            if stage.id is not None:
                seen[stage.id] = index
        return self


def pipeline_model(registry: Registry, kinds: Iterable[str] | None = None) -> type[PipelineBase]:
    """The pydantic model of a pipeline file whose stages are the registered kinds.

    ``kinds`` narrows the union to the kinds a document names, so validating it imports (and
    builds the validators of) only the stage plugins it uses; the messages do not change, since
    an unknown or broken kind is reported against the registry (``_problems``), not the union.
    ``nnpipe schema`` needs every kind: it passes none."""
    classes = tuple(stage_classes(registry, kinds).values())
    if not classes and kinds is not None:
        classes = tuple(stage_classes(registry).values())  # no usable kind named: the full union
    if not classes:
        raise PluginError("no stage plugins are installed (is nnpipe installed?)")
    stage = Annotated[Union[classes], Field(discriminator="kind")]
    return create_model(
        "Pipeline",
        __base__=PipelineBase,
        stages=(list[stage], Field(min_length=1, description="The stages, run in order.")),
    )


# --------------------------------------------------------------------------------------------
# Reading files, with the line of every value for YAML


def _yaml_lines(node: yaml.Node, loc: Loc = ()) -> Iterable[tuple[Loc, int]]:
    """Every path of a composed YAML document with its 1-based line."""
    yield loc, node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield loc + (key.value,), key.start_mark.line + 1
            yield from _yaml_lines(value, loc + (key.value,))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _yaml_lines(item, loc + (index,))


def read_document(path: Path) -> tuple[Any, dict[Loc, int]]:
    """Parse a pipeline file; return the raw document and, for YAML, the line of each path.

    The file is read within ``pipeline.userfiles``' caps (a regular file of at most 1 MiB; YAML
    of bounded depth and alias expansion; no duplicate keys), so any file answers in seconds."""
    text = read_text(path, "pipeline file")
    suffix = path.suffix.lower()
    if suffix == ".json":
        return load_json(text, str(path)), {}
    if suffix == ".toml":
        return load_toml(text, str(path)), {}
    document, node = load_yaml(text, str(path))
    lines = dict(_yaml_lines(node)) if node is not None else {}
    return document, lines


# --------------------------------------------------------------------------------------------
# Overrides: --set PATH=VALUE


@dataclass(frozen=True)
class Override:
    """One ``--set PATH=VALUE``: the value is parsed as YAML, so ``3`` is an int, ``[64]`` a list.

    ``option`` is what the user typed it with (``--set``, or ``--grid``/``--param`` when a sweep
    or a study made it from a value of theirs): every message about it names that option."""

    path: str
    value: Any
    text: str
    option: str = "--set"

    @classmethod
    def parse(cls, text: str, option: str = "--set") -> "Override":
        """Parse ``PATH=VALUE``; a malformed override is a UserError naming it."""
        path, sep, raw = text.partition("=")
        if not sep or not path.strip():
            raise UserError(f"{option} {text!r}: expected PATH=VALUE, e.g. STAGE.FIELD=VALUE")
        if any(not part.strip() for part in path.strip().split(".")):
            raise UserError(f"{option} {text!r}: PATH has an empty name (two dots in a row, or a "
                            f"dot at an end), e.g. STAGE.FIELD=VALUE")
        # The value is YAML read within the same caps as a pipeline file (no alias bombs).
        value = load_yaml(raw, f"{option} {text!r}")[0] if raw.strip() else ""
        return cls(path.strip(), value, text, option)


# --------------------------------------------------------------------------------------------
# Validation with every problem reported at once


def _friendly(message: str) -> str:
    message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if message.startswith("Input should be "):
        message = "must be " + message.removeprefix("Input should be ")
    return message


def _problems(error: ValidationError, document: Any, registry: Registry,
              model: type[BaseModel]) -> list[tuple[Loc, str]]:
    """Turn pydantic's errors into (path in the document, message) pairs."""
    kinds = registry.names("stages")
    found = []
    for item in error.errors():
        loc: Loc = tuple(item["loc"])
        # A discriminated union puts the tag into the path: stages.4.<kind>.epochs.
        if len(loc) >= 3 and loc[0] == "stages" and isinstance(loc[1], int) and loc[2] in kinds:
            loc = loc[:2] + loc[3:]
        kind = item["type"]
        if kind == "union_tag_invalid":
            tag = item["ctx"]["tag"]
            message = (_broken_stage_message(registry, tag) if tag in kinds
                       else unknown_name_message("stage kind", tag, kinds))
            loc = loc + ("kind",)
        elif kind == "union_tag_not_found":
            message = f"missing 'kind'; installed kinds: {', '.join(kinds)}"
        elif kind == "extra_forbidden":
            message = "unknown field"
            hint = closest(str(loc[-1]), _fields_at(document, loc, model, registry))
            if hint:
                message += f" (did you mean {hint!r}?)"
        elif kind == "missing":
            message = "required field is missing"
        else:
            message = _friendly(item["msg"])
            if "input" in item and kind not in ("model_type", "dict_type", "list_type"):
                shown = item["input"]
                if not isinstance(shown, (dict, list)):
                    message += f" (got {shown!r})"
        found.append((loc, message))
    return _one_per_union(found, error, document)


def _one_per_union(found: list[tuple[Loc, str]], error: ValidationError,
                   document: Any) -> list[tuple[Loc, str]]:
    """One problem per field of a union type (``class_weight: balanced | [w, ...]``): pydantic
    reports every member it tried, each under the member's name in the path
    (``class_weight.literal['balanced']``, ``class_weight.list[...][9]``). Where one field has
    two or more such reports, keep the member that got furthest into the value, without its
    name; members that all failed at the value itself are joined ("must be A or B")."""
    members: dict[Loc, list[tuple[int, int, Loc]]] = {}  # field -> [(depth, index, rest)]
    for index, ((loc, _), item) in enumerate(zip(found, error.errors())):
        if item["type"] == "missing":
            continue  # its last name is a field's, absent from the document
        field, depth, rest = _union_member(loc, document)
        if depth is not None:
            members.setdefault(field, []).append((depth, index, rest))
    replaced: dict[int, tuple[Loc, str] | None] = {}
    for field, tried in members.items():
        if len(tried) < 2:
            continue  # one report: nothing to choose between, its path stays as pydantic gave it
        deepest = max(depth for depth, _, _ in tried)
        best = [entry for entry in tried if entry[0] == deepest]
        messages = [found[index][1] for _, index, _ in best]
        message = messages[0] if deepest else _joined(messages)
        for _, index, _ in tried:
            replaced[index] = None
        replaced[best[0][1]] = (field + best[0][2], message)
    return [replaced.get(index, problem) for index, problem in enumerate(found)
            if replaced.get(index, problem) is not None]


def _joined(messages: list[str]) -> str:
    """``must be 'balanced' (got 'x')`` and ``must be a valid list`` -> ``must be 'balanced' or
    a valid list (got 'x')``."""
    if not all(m.startswith("must be ") for m in messages):  # a validator's own sentences
        return "; or ".join(dict.fromkeys(messages))
    got = next((m[m.index(" (got "):] for m in messages if " (got " in m), "")
    bare = [m.split(" (got ")[0].removeprefix("must be ") for m in messages]
    return "must be " + " or ".join(dict.fromkeys(bare)) + got


def _union_member(loc: Loc, document: Any) -> tuple[Loc, int | None, Loc]:
    """Split a stage field's ``loc`` at the first element that is not in ``document`` (a union
    member's name, or a missing field's): (the path before it, how deep the rest goes, the
    rest); depth None when every element is in the document."""
    node = document
    for position, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        elif position >= 2 and loc[0] == "stages" and _member_name(part):
            rest = loc[position + 1:]
            return loc[:position], len(rest), rest
        else:
            return loc, None, ()
    return loc, None, ()


#: The names pydantic gives union members of built-in types in an error's path.
_BUILTIN_MEMBERS = {"int", "float", "str", "bool", "bytes", "none", "list", "dict", "tuple",
                    "set", "frozenset", "decimal", "date", "datetime", "path"}


def _member_name(part: Any) -> bool:
    """Whether a path element names a union member (``literal['balanced']``, ``list[...]``,
    ``int``, a model's class name ``Dense``), not a field (lower-case identifiers)."""
    return isinstance(part, str) and (not part.isidentifier() or part in _BUILTIN_MEMBERS
                                      or part[:1].isupper())


def _broken_stage_message(registry: Registry, kind: str) -> str:
    """Why a registered stage kind is not in the pipeline model: its plugin failed to load, is
    not a stage, or is registered by two distributions (the registry's message names them)."""
    try:
        registry.load("stages", kind, check=check_stage_class)
    except PluginError as exc:
        return str(exc)
    return f"stage kind {kind!r} could not be used"  # pragma: no cover - loaded after all


def _fields_at(document: Any, loc: Loc, model: type[BaseModel], registry: Registry) -> list[str]:
    """The field names allowed where ``loc`` points, for 'did you mean' hints."""
    if len(loc) >= 3 and loc[0] == "stages":
        try:
            kind = document["stages"][loc[1]]["kind"]
        except (KeyError, IndexError, TypeError):
            return []
        stage_cls = stage_classes(registry, [kind]).get(kind) if isinstance(kind, str) else None
        return list(stage_cls.model_fields) if stage_cls else []
    return list(model.model_fields)



@dataclass(frozen=True)
class LoadedPipeline:
    """A validated pipeline file."""

    spec: PipelineBase  # the pydantic model instance (has .name, .seed, .stages)
    path: Path  # the file it came from
    overrides: tuple[str, ...] = ()

    @property
    def stages(self) -> list[StageSpec]:
        return list(self.spec.stages)

    def stage_ids(self) -> list[str]:
        """A name per stage, as every command prints and accepts it: its id, else its kind when
        unique, else ``stages[N]`` (``pipeline.engine.addressing``)."""
        return stage_names(self.stages)

    def resolved(self) -> dict:
        """The whole spec with defaults filled in, as plain JSON-able data."""
        return self.spec.model_dump(mode="json")


def validate_document(document: Any, source: str, base_dir: Path, registry: Registry | None = None,
                      lines: dict[Loc, int] | None = None,
                      touched: list[tuple[Loc, str]] | None = None) -> PipelineBase:
    """Validate a raw document; raise one ConfigError listing every problem."""
    registry = registry or default_registry()
    if not isinstance(document, dict):
        raise ConfigError(source, [f"{source}: the file must hold a mapping with a 'stages' list"])
    model = pipeline_model(registry, _kinds_named(document))
    try:
        return model.model_validate(document, context={"base_dir": base_dir,
                                                       "registry": registry})
    except ValidationError as exc:
        problems = []
        for loc, message in _problems(exc, document, registry, model):
            where = format_loc(loc) or "(top level)"
            line = _line_of(loc, lines or {})
            override = next((text for t_loc, text in (touched or []) if loc[:len(t_loc)] == t_loc),
                            None)
            at = f"{source}:{line}" if line and not override else source
            suffix = f" (from {override})" if override else ""
            problems.append(f"{at}: {where}: {message}{suffix}")
        raise ConfigError(source, problems) from None


def _kinds_named(document: dict) -> list[str] | None:
    """The stage kinds ``document`` names (strings only), or None (every kind) when its
    ``stages`` is not a list: pydantic then reports that against the full model."""
    stages = document.get("stages")
    if not isinstance(stages, list):
        return None
    return [stage["kind"] for stage in stages
            if isinstance(stage, dict) and isinstance(stage.get("kind"), str)]


def _line_of(loc: Loc, lines: dict[Loc, int]) -> int | None:
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return None


def load_pipeline(path: Path | str, overrides: Iterable[str | Override] = (),
                  registry: Registry | None = None) -> LoadedPipeline:
    """Read, override and validate a pipeline file. ``overrides`` are ``--set`` texts, or
    ``Override`` objects (which name the option they came from in every message).

    Raises:
        UserError: the file cannot be read or parsed (one line with file and line).
        ConfigError: the file does not validate (every problem, each with its path).
    """
    path = Path(path)
    document, lines = read_document(path)
    parsed = [o if isinstance(o, Override) else Override.parse(o) for o in overrides]
    touched = apply_overrides(document, parsed) if isinstance(document, dict) else []
    spec = validate_document(document, str(path), path.resolve().parent, registry, lines, touched)
    return LoadedPipeline(spec, path, tuple(o.text for o in parsed))
