"""The layers of an MLP, as plugins of the ``nnpipe.layers`` group (contract: ``base.py``).

    base.py           Layer (forward, backward, shapes, init), Shapes, Pass: the contract
    dense.py          dense: x @ W + b
    normalization.py  batch_norm (PyTorch's BatchNorm1d), layer_norm
    dropout.py        dropout (inverted)
    activation.py     any registered activation as a layer

An entry of a ``layers:`` list is a registered layer (``{kind: dense, units: 512}``) or an
activation's name (``relu``, or ``{kind: relu}``); ``resolve`` turns one into a ``Layer``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

from pipeline.errors import PluginError
from pipeline.lazy import lazy_attributes
from pipeline.registry import default_registry, unknown_name_message
from plugins.mlp.layers.base import Layer, Pass, Shapes

if TYPE_CHECKING:
    from plugins.mlp.layers.activation import ActivationLayer
    from plugins.mlp.layers.dense import Dense
    from plugins.mlp.layers.dropout import Dropout

__all__ = ["ActivationLayer", "Dense", "Dropout", "Layer", "Pass", "Shapes", "check", "implied",
           "resolve"]

#: The built-in layers, imported on first use: validating a pipeline file without ``layers:``
#: needs only the contract (``Layer``), not the classes (see benchmarks/cli_latency.py).
__getattr__ = lazy_attributes(__name__, {"ActivationLayer": "plugins.mlp.layers.activation",
                                          "Dense": "plugins.mlp.layers.dense",
                                          "Dropout": "plugins.mlp.layers.dropout"})


def check(obj: Any) -> str | None:
    """None when ``obj`` can serve as a layer (a pydantic class with shapes, forward and
    backward), else what is wrong (for the registry)."""
    if not isinstance(obj, type) or not callable(getattr(obj, "model_validate", None)):
        return f"expected a Layer class (a pydantic model), got {obj!r}"
    missing = [m for m in ("shapes", "init", "forward", "backward")
               if not callable(getattr(obj, m, None))]
    if missing:
        return f"expected a Layer class with {', '.join(missing)}; {obj.__name__} has none"
    return None


def resolve(entry: Any, registry: Any = None) -> Layer:
    """A ``Layer`` from a pipeline file's entry: a mapping with ``kind`` (a layer or activation
    registered in ``registry``, by default the default one), an activation's name, or a
    ``Layer`` already. Raises ``ValueError`` (unknown kind, listing what is installed) or
    pydantic's ``ValidationError`` (bad fields)."""
    if isinstance(entry, Layer):
        return entry
    if isinstance(entry, str):
        entry = {"kind": entry}
    if not isinstance(entry, Mapping) or not isinstance(entry.get("kind"), str):
        raise ValueError("expected a layer such as {kind: dense, units: 256}, or an "
                         "activation's name such as relu")
    registry = registry or default_registry()
    kind = entry["kind"]
    if kind in registry.names("layers"):
        return registry.load("layers", kind).model_validate(dict(entry))
    if kind in registry.names("activations"):
        if len(entry) > 1:
            extra = ", ".join(sorted(set(entry) - {"kind"}))
            raise ValueError(f"activation {kind!r} takes no fields (got {extra})")
        from plugins.mlp.layers.activation import ActivationLayer

        return ActivationLayer.of(kind, registry)
    names = registry.names("layers") + registry.names("activations")
    raise PluginError(unknown_name_message("layer", kind, names))


def implied(hidden: Sequence[int], activation: Any, dropout: float) -> list[Layer]:
    """The stack that ``hidden``, ``activation`` and ``dropout`` mean: for each width, dense,
    the activation, then dropout when p > 0."""
    from plugins.mlp.layers.activation import ActivationLayer
    from plugins.mlp.layers.dense import Dense
    from plugins.mlp.layers.dropout import Dropout

    act = ActivationLayer.of(activation)
    stack: list[Layer] = []
    for units in hidden:
        stack += [Dense(units=int(units)), act]
        if dropout > 0:
            stack.append(Dropout(p=dropout))
    return stack
