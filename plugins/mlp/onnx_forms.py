"""The ONNX form of every piece of the inference path: transforms, layers, activations, links.

Each form is a small function that appends the nodes computing one piece to an ``OnnxGraph`` and
returns the name of its output, so the exporter (``plugins.mlp.export``) is a loop over the
pieces. A form must compute exactly what nnpipe computes (the tests compare onnxruntime with
nnpipe's own predictions within 1e-5):

    normalizer     (x - offset) / scale                      Sub, Div
    dense          x @ W + b                                 Gemm
    batch_norm     gamma (x - mean) / sqrt(var + eps) + beta BatchNormalization (inference mode)
    layer_norm     the same over each row's features         LayerNormalization (opset 17)
    dropout        nothing at inference                      (no node)
    relu sigmoid tanh leaky_relu(0.01) elu(1) identity       their ONNX operators
    gelu           x/2 (1 + tanh(c (x + 0.044715 x^3)))      nnpipe's tanh form, from primitives
    softplus       max(x, 0) + log(1 + exp(-|x|))            the overflow-free form nnpipe uses
    cross_entropy  softmax over the classes                  Softmax(axis=-1)
    mse            the raw output                            Identity

A plugin provides its own form with an ``onnx`` attribute: an activation's ``onnx(graph, x)``, a
layer's ``onnx(graph, x, params, state)``, a loss's ``onnx_link(graph, x)``, each returning the
output's name. A piece with neither is refused with its name (``missing_form``).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

from plugins.mlp import activations, losses

#: The ONNX operator set the forms use (LayerNormalization needs 17).
OPSET = 17


class OnnxGraph:
    """Nodes and constant arrays being collected for one ONNX graph.

    Args:
        dtype: the float dtype of the constants (the model's: float32 or float64).
    """

    def __init__(self, dtype: Any = np.float32):
        self.dtype = np.dtype(dtype)
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0

    def fresh(self, hint: str) -> str:
        """A new unique value name such as ``gemm_3``."""
        self._count += 1
        return f"{hint}_{self._count}"

    def constant(self, array: Any, hint: str = "const", dtype: Any = None) -> str:
        """Add ``array`` (cast to ``dtype``, default the graph's) as an initializer; its name."""
        from onnx import numpy_helper

        name = self.fresh(hint)
        value = np.asarray(array, dtype=self.dtype if dtype is None else dtype)
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def node(self, op: str, inputs: list[str], hint: str | None = None,
             output: str | None = None, **attributes: Any) -> str:
        """Append one ``op`` node reading ``inputs``; the name of its (single) output (``output``
        when given, for the graph's named outputs)."""
        from onnx import helper

        output = output or self.fresh(hint or op.lower())
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
        return output


Form = Callable[..., str]


# ----------------------------------------------------------------------------------------------
# activations: (graph, x) -> y, elementwise

def _gelu(g: OnnxGraph, x: str) -> str:
    # nnpipe's gelu is the tanh form: x/2 (1 + tanh(c (x + k x^3))), c = sqrt(2/pi), k = 0.044715
    cube = g.node("Mul", [g.node("Mul", [x, x]), x])  # x^3
    inner = g.node("Add", [x, g.node("Mul", [cube, g.constant(activations._GELU_K)])])
    t = g.node("Tanh", [g.node("Mul", [inner, g.constant(activations._GELU_C)])])
    half_x = g.node("Mul", [x, g.constant(0.5)])
    return g.node("Mul", [half_x, g.node("Add", [t, g.constant(1.0)])], hint="gelu")


def _softplus(g: OnnxGraph, x: str) -> str:
    # max(x, 0) + log(1 + exp(-|x|)): never overflows, as nnpipe's softplus_value
    tail = g.node("Exp", [g.node("Neg", [g.node("Abs", [x])])])  # exp(-|x|) in (0, 1]
    return g.node("Add", [g.node("Relu", [x]),
                          g.node("Log", [g.node("Add", [tail, g.constant(1.0)])])], hint="softplus")


#: The built-in activations' forms, by the Activation object they belong to (a plugin that
#: registers another object under a built-in's name does not inherit its form).
ACTIVATION_FORMS: dict[Any, Form] = {
    activations.relu: lambda g, x: g.node("Relu", [x]),
    activations.sigmoid: lambda g, x: g.node("Sigmoid", [x]),
    activations.tanh: lambda g, x: g.node("Tanh", [x]),
    activations.leaky_relu: lambda g, x: g.node("LeakyRelu", [x], alpha=activations.LEAKY_SLOPE),
    activations.elu: lambda g, x: g.node("Elu", [x], alpha=1.0),
    activations.gelu: _gelu,
    activations.softplus: _softplus,
    activations.identity: lambda g, x: g.node("Identity", [x]),
}


def _own_or_builtin(obj: Any, attribute: str, table: dict[Any, Form]) -> Form | None:
    """``obj``'s own form (its ``attribute``), else the built-in form of that very object."""
    own = getattr(obj, attribute, None)
    if callable(own):
        return own
    try:
        return table.get(obj)
    except TypeError:  # an unhashable plugin object: not a built-in
        return None


def activation_form(activation: Any) -> Form | None:
    """The form of an activation object: its own ``onnx``, else the built-in's, else None."""
    return _own_or_builtin(activation, "onnx", ACTIVATION_FORMS)


# ----------------------------------------------------------------------------------------------
# layers: (graph, x, params, state, layer) -> y

def dense(g: OnnxGraph, x: str, params: Mapping[str, np.ndarray], state=None, layer=None) -> str:
    """x (n, fan_in) @ W (fan_in, units) + b (units,) as one Gemm."""
    return g.node("Gemm", [x, g.constant(params["W"], "W"), g.constant(params["b"], "b")],
                  hint="dense")


def batch_norm(g: OnnxGraph, x: str, params: Mapping[str, np.ndarray],
               state: Mapping[str, np.ndarray], layer: Any = None, eps: float | None = None) -> str:
    """Inference-mode batch norm from the running statistics: x (n, h) -> (n, h)."""
    eps = float(eps if eps is not None else getattr(layer, "eps", 1e-5))
    inputs = [x, g.constant(params["gamma"], "gamma"), g.constant(params["beta"], "beta"),
              g.constant(state["running_mean"], "running_mean"),
              g.constant(state["running_var"], "running_var")]
    return g.node("BatchNormalization", inputs, hint="batch_norm", epsilon=eps)


def layer_norm(g: OnnxGraph, x: str, params: Mapping[str, np.ndarray], state=None,
               layer: Any = None, eps: float | None = None) -> str:
    """Each row normalised over its features, then gamma and beta: x (n, h) -> (n, h)."""
    eps = float(eps if eps is not None else getattr(layer, "eps", 1e-5))
    inputs = [x, g.constant(params["gamma"], "gamma"), g.constant(params["beta"], "beta")]
    return g.node("LayerNormalization", inputs, hint="layer_norm", axis=-1, epsilon=eps)


def dropout(g: OnnxGraph, x: str, params=None, state=None, layer=None) -> str:
    """Dropout is the identity at inference: no node."""
    return x


#: The built-in layers' forms by kind. An activation layer (kind = the activation's name) goes
#: through ``activation_form``.
LAYER_FORMS: dict[str, Form] = {"dense": dense, "batch_norm": batch_norm,
                                "layer_norm": layer_norm, "dropout": dropout}


def layer_form(layer: Any) -> Form | None:
    """The form of a layer object: its own ``onnx``, an activation layer's activation form, the
    built-in form of its kind, else None."""
    own = getattr(layer, "onnx", None)
    if callable(own):
        return lambda g, x, params, state, layer=None: own(g, x, params, state)
    activation = getattr(layer, "activation", None)
    if activation is not None and getattr(layer, "kind", None) not in LAYER_FORMS:
        form = activation_form(activation)
        return None if form is None else (lambda g, x, params, state, layer=None: form(g, x))
    if type(layer).__module__.startswith("plugins.mlp."):  # built-in kinds only
        return LAYER_FORMS.get(getattr(layer, "kind", None))
    return None


# ----------------------------------------------------------------------------------------------
# the loss's link, at the end: (graph, logits) -> predictions

LINK_FORMS: dict[Any, Form] = {
    losses.cross_entropy: lambda g, x: g.node("Softmax", [x], hint="probabilities", axis=-1),
    losses.mse: lambda g, x: g.node("Identity", [x], hint="predictions"),
}


def link_form(loss: Any) -> Form | None:
    """The form of a loss's link: its own ``onnx_link``, else the built-in's, else None."""
    return _own_or_builtin(loss, "onnx_link", LINK_FORMS)


# ----------------------------------------------------------------------------------------------
# transforms fitted before the model: (graph, x) -> x'

def normalizer(g: OnnxGraph, x: str, fitted: Any) -> str:
    """The ``Normalizer``'s (x - offset) / scale on flat rows x (n, d), in its own dtype."""
    dtype = np.dtype(fitted.dtype)
    offset = np.asarray(fitted.offset).reshape(-1) if fitted.offset.ndim else fitted.offset
    scale = np.asarray(fitted.scale).reshape(-1) if fitted.scale.ndim else fitted.scale
    centred = g.node("Sub", [x, g.constant(offset, "offset", dtype)])
    return g.node("Div", [centred, g.constant(scale, "scale", dtype)], hint="normalized")


#: Forms of fitted transforms, by class name (the class's ``onnx(graph, x)`` method wins).
TRANSFORM_FORMS: dict[str, Form] = {"Normalizer": normalizer}


def transform_form(fitted: Any) -> Form | None:
    """The form of a fitted transform: its own ``onnx``, else the built-in's, else None."""
    own = getattr(fitted, "onnx", None)
    if callable(own):
        return lambda g, x, fitted: own(g, x)
    if type(fitted).__module__.startswith("plugins."):
        return TRANSFORM_FORMS.get(type(fitted).__name__)
    return None
