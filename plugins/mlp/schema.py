"""The JSON Schema of ``mlp_train``'s registry-backed fields, as ``nnpipe schema`` shows them.

pydantic alone would describe ``optimizer`` and ``schedule`` as their base classes (which forbid
every field a subclass adds) and ``activation``, ``loss`` and ``init`` as plain strings. Here the
installed plugins fill them in, so an editor's YAML support checks a pipeline file as nnpipe does:

    activation, loss, init   an enum of the installed names of the group
    optimizer, schedule      ``oneOf`` the installed kinds, each with its own fields, ``kind``
                             required and naming the variant (``discriminator``)

A plugin that fails to load is left out (validation reports it by name). Each variant keeps its
own ``$defs`` inside a resource of its own (``$id``), so its references resolve wherever the
variant lands in the pipeline schema.
"""

from __future__ import annotations

from typing import Any

from pipeline.errors import PluginError
from pipeline.registry import Registry

#: mlp_train field -> the group of the names it takes.
NAMED_FIELDS = {"activation": "activations", "loss": "losses", "init": "initializers"}
#: mlp_train field -> the group of the kinds it takes (``{kind: name, ...}``).
KIND_FIELDS = {"optimizer": "optimizers", "schedule": "schedules"}


def _loadable(registry: Registry, group: str) -> dict[str, Any]:
    """The installed plugins of ``group`` that load and pass the group's type check, by name."""
    found = {}
    for name in registry.names(group):
        try:
            found[name] = registry.load(group, name)
        except PluginError:
            continue
    return found


def _variant(group: str, name: str, cls: type) -> dict[str, Any]:
    """The JSON Schema of one kind, ``kind`` required (every kind has a default for it)."""
    schema = cls.model_json_schema()
    schema["$id"] = f"urn:nnpipe:{group}:{name}"  # its own "#/$defs/..." resolve inside it
    schema["required"] = sorted({"kind", *schema.get("required", [])})
    return schema


def fill_in_installed(properties: dict[str, Any], registry: Registry) -> None:
    """Replace, in mlp_train's schema ``properties``, the registry-backed fields by the installed
    choices (those that load, as validation loads them)."""
    for field, group in NAMED_FIELDS.items():
        names = sorted(_loadable(registry, group))
        properties[field] = {key: value for key, value in properties[field].items()
                             if key != "type"} | {"enum": names}
    for field, group in KIND_FIELDS.items():
        kinds = _loadable(registry, group)
        old = properties[field]
        properties[field] = {
            "oneOf": [_variant(group, name, cls) for name, cls in kinds.items()],
            "discriminator": {"propertyName": "kind"},
            **{key: old[key] for key in ("default", "description", "title") if key in old},
        }
