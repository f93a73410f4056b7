"""The multilayer perceptron: a stack of layers (``plugins.mlp.layers``), a dense output layer as
wide as the classes, and a loss that says what the output means.

    a_0 = x                                    (n, d)
    a_{i+1}, cache_i = layer_i.forward(a_i)    (n, widths[i+1])      i = 0 .. L-1
    output = a_L                               (n, k)   logits for cross-entropy

``MLP([784, 256, 128, 10], "relu")`` is the stack dense 256, relu, dense 128, relu, dense 10;
``MLP([784, 10], layers=[...])`` any other stack before the output layer.

Every trainable array (weights, biases, scales, shifts) is a view into ONE flat parameter vector
``params`` (P,), laid out in stack order (W_0, b_0, gamma_1, beta_1, W_2, ...), and every gradient a
view into ``grads`` (P,) of the same layout, so an optimiser updates the whole network with one
vectorised call. Non-trainable state (batch norm's running statistics) is a view into a second
flat vector ``stats`` (S,). Never rebind ``params``, ``grads`` or ``stats``; write into them
(``model.params[...] = other``).

Backpropagation, for a batch, with delta_i = dL/da_i:

    delta_L = dL/doutput                       given by the loss
    delta_i = layer_i.backward(delta_{i+1})    fills layer i's slice of ``grads``

Nothing below the first layer with parameters is backpropagated (dL/dx is never computed).
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

import pipeline
from pipeline.errors import DataError, PluginError
from pipeline.files import write_json, write_npz
from pipeline.resources import require_memory
from pipeline.userfiles import load_json_file
from pipeline.registry import default_registry
from plugins.mlp import activations, init as initializers, losses
from plugins.mlp import layers as layer_plugins
from plugins.mlp.activations import Activation
from plugins.mlp.layers import ActivationLayer, Dense, Layer, Pass
from plugins.mlp.losses import Loss

DTYPES = ("float32", "float64")
FORMAT = "nnpipe-mlp/2"  # /1 had sizes and one activation, arrays W0, b0, W1, ...


def lookup(group: str, value: Any, check: Callable[[Any], str | None],
           registry: Any = None) -> Any:
    """A registered plugin by name (``PluginError`` listing the installed ones when unknown) in
    ``registry`` (by default the default one), or an object passed directly, checked the same
    way (``check`` is the group's type check, which the registry runs on every load)."""
    if isinstance(value, str):
        return (registry or default_registry()).load(group, value)
    problem = check(value)
    if problem:
        raise TypeError(problem)
    return value



#: (i, layer, input (n, fan_in), output (n, width)) for every layer of an evaluation pass.
Watch = Callable[[int, Layer, np.ndarray, np.ndarray], None]


def _weights(path: Path, npz, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """Array ``name`` of an opened ``model.npz``: present, real numbers of ``shape``, all finite."""
    if name not in npz.files:
        raise DataError(f"{path}: no array {name} (model.json describes it)")
    array = npz[name]
    if array.shape != shape:
        raise DataError(f"{path}: {name} has shape {array.shape}; model.json implies {shape}")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise DataError(f"{path}: {name} holds {array.dtype} values, not real numbers")
    bad = int(array.size - np.count_nonzero(np.isfinite(array)))
    if bad:
        raise DataError(f"{path}: {name} has {bad} NaN or infinite weight(s); the model cannot "
                        f"predict")
    return array


class MLP:
    """A multilayer perceptron with its parameters in one flat vector.

    Args:
        sizes: input width first and output width last; the widths between (e.g. (784, 256, 128,
            10)) imply the stack dense, ``activation`` [, dropout] for each.
        activation: the implied stack's activation, a registered name or an ``Activation``.
        loss: the loss on the output, a registered name or a ``Loss``.
        dtype: "float32" (default) or "float64"; parameters, gradients and activations use it.
        init: an initialiser (registered name or function) for the dense layers, or None to
            leave every parameter at zero (``load`` fills them afterwards).
        rng: seed or ``np.random.Generator`` for ``init``.
        layers: the stack before the output layer (``Layer`` objects or pipeline-file entries);
            then ``sizes`` is (input width, output width).
        dropout: the implied stack's dropout probability after each activation.
    """

    def __init__(self, sizes: Sequence[int], activation: str | Activation = "relu",
                 loss: str | Loss = "cross_entropy", dtype: str = "float32",
                 init: str | Callable | None = "he_normal",
                 rng: np.random.Generator | int | None = None,
                 layers: Sequence[Any] | None = None, dropout: float = 0.0):
        sizes = tuple(int(s) for s in sizes)
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"sizes needs an input and an output width, all >= 1; got {sizes}")
        if layers is not None and len(sizes) != 2:
            raise ValueError(f"with layers, sizes is (input width, output width); got {sizes}")
        if str(dtype) not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}; got {dtype!r}")
        self.dtype = np.dtype(str(dtype))
        self.loss_fn: Loss = lookup("losses", loss, losses.check)
        if layers is None:
            layers = layer_plugins.implied(sizes[1:-1], activation, dropout)
        self.hidden: list[Layer] = [layer_plugins.resolve(entry) for entry in layers]
        self.layers: list[Layer] = [*self.hidden, Dense(units=sizes[-1])]  # + the output layer
        self._build(sizes[0])
        if init is not None:
            self._init(init, np.random.default_rng(rng))

    def _build(self, d: int) -> None:
        """Shapes, the flat vectors and their per-layer views for input width ``d``."""
        self.shapes, widths = [], [d]
        for layer in self.layers:
            self.shapes.append(layer.shapes(widths[-1]))
            widths.append(int(self.shapes[-1].width))
        self.widths = tuple(widths)  # (L + 1,) input, then each layer's output
        dense = [i for i, layer in enumerate(self.layers) if isinstance(layer, Dense)]
        self.sizes = (d, *(widths[i + 1] for i in dense))  # the dense widths, as /1's sizes
        self.depth = len(dense)  # number of dense layers
        n_params = sum(int(np.prod(s)) for sh in self.shapes for s in sh.params.values())
        n_stats = sum(int(np.prod(s)) for sh in self.shapes for s in sh.state.values())
        require_memory((2 * n_params + n_stats) * self.dtype.itemsize,  # params, grads, stats
                       f"a network of layer widths {list(self.widths)} ({n_params} parameters)",
                       "use fewer or smaller hidden layers")
        self.params = np.zeros(n_params, dtype=self.dtype)  # (P,) every trainable value
        self.grads = np.zeros(n_params, dtype=self.dtype)  # (P,) dL/dparams, same layout
        self.stats = np.zeros(n_stats, dtype=self.dtype)  # (S,) running statistics
        self.layer_params = self._views(self.params, "params")  # [layer] -> {name: view}
        self.layer_grads = self._views(self.grads, "params")
        self.layer_state = self._views(self.stats, "state")
        # the dense layers' weights and biases, W[l] (sizes[l], sizes[l+1]), b[l] (sizes[l+1],)
        self.W = [self.layer_params[i]["W"] for i in dense]
        self.b = [self.layer_params[i]["b"] for i in dense]
        self.dW = [self.layer_grads[i]["W"] for i in dense]
        self.db = [self.layer_grads[i]["b"] for i in dense]
        acts = [layer.activation for layer in self.layers if isinstance(layer, ActivationLayer)]
        self.activation: Activation | None = acts[0] if acts else None
        self._first_trained = next((i for i, sh in enumerate(self.shapes) if sh.params), 0)
        self._cache: list[Any] | None = None  # set by forward, read by backward
        self._passes: list[Pass] = []
        self._work: dict[int, list[Pass]] = {}  # batch size -> each layer's Pass and buffers

    def _views(self, flat: np.ndarray, kind: str) -> list[dict[str, np.ndarray]]:
        """Cut ``flat`` into per-layer dicts of views, in stack order, names in declared order."""
        views, offset = [], 0
        for shapes in self.shapes:
            named = {}
            for name, shape in getattr(shapes, kind).items():
                size = int(np.prod(shape))
                named[name] = flat[offset:offset + size].reshape(shape)
                offset += size
            views.append(named)
        return views

    def _init(self, init: str | Callable, rng: np.random.Generator) -> None:
        """Every layer's ``init`` in stack order (the dense layers draw from ``rng`` in turn)."""
        default = lookup("initializers", init, initializers.check)
        for layer, params, state in zip(self.layers, self.layer_params, self.layer_state):
            own = layer.initializer if isinstance(layer, Dense) else None
            chosen = lookup("initializers", own, initializers.check) if isinstance(own, str) \
                else default
            try:
                layer.init(params, state, rng, chosen)
            except ValueError as exc:
                raise ValueError(f"layer {layer.label()}, initializer {init!r}: {exc}") from None

    def parameter_groups(self) -> dict[str, tuple[str, slice]]:
        """Where each parameter array lives in the flat vector: its model.npz name -> (kind,
        slice of ``params``), in layout order, e.g. ``{"dense0.W": ("weight", slice(0, 3136)),
        "dense0.b": ("bias", slice(3136, 3140)), "batch_norm0.gamma": ("bias", ...)}``. Kinds:
        ``weight`` (what a layer's ``Shapes.weights`` names) and ``bias`` (everything else)."""
        groups, offset, names = {}, 0, iter(name for name, _ in self.array_names())
        for shapes in self.shapes:
            for param, shape in shapes.params.items():
                name = next(names)
                size = int(np.prod(shape))
                kind = "weight" if param in shapes.weights else "bias"
                groups[name] = (kind, slice(offset, offset + size))
                offset += size
            for _ in shapes.state:
                next(names)
        return groups

    def param_slices(self) -> list[tuple[int, slice]]:
        """(layer index, its slice of ``params``) for every layer with parameters."""
        slices, offset = [], 0
        for i, shapes in enumerate(self.shapes):
            size = sum(int(np.prod(s)) for s in shapes.params.values())
            if size:
                slices.append((i, slice(offset, offset + size)))
            offset += size
        return slices

    # ------------------------------------------------------------------------------------------
    # forward and backward

    def _input(self, x: np.ndarray) -> np.ndarray:
        """``x`` as (n, d) in the model's dtype (no copy when it already is); images flattened."""
        x = np.asarray(x)
        x = x.reshape(x.shape[0], -1)  # (n, d)
        if x.shape[1] != self.sizes[0]:
            raise DataError(f"the model expects {self.sizes[0]} input features per sample; "
                            f"got {x.shape[1]}")
        return x.astype(self.dtype, copy=False)

    def _training_passes(self, n: int, rng: np.random.Generator | None) -> list[Pass]:
        """One ``Pass`` per layer, with work buffers allocated once per batch size (training
        sees at most two: the batch size and the last, partial batch)."""
        passes = self._work.get(n)
        if passes is None:
            if len(self._work) >= 4:
                self._work.clear()
            passes = self._work[n] = [Pass(True, None, {}, i > self._first_trained)
                                      for i in range(len(self.layers))]
        for ctx in passes:
            ctx.rng = rng
        return passes

    def forward(self, x: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """The raw output (n, k) for a batch ``x`` (n, d) in training mode (batch statistics,
        dropout masks drawn from ``rng``), keeping what ``backward`` needs. The output lives in
        a work buffer: the next ``forward`` overwrites it."""
        a = self._input(x)  # (n, d)
        self._passes = self._training_passes(a.shape[0], rng)
        self._cache = []
        for layer, params, state, ctx in zip(self.layers, self.layer_params, self.layer_state,
                                             self._passes):
            a, cache = layer.forward(a, params, state, ctx)  # (n, widths[i + 1])
            self._cache.append(cache)
        return a  # (n, k)

    def backward(self, output_grad: np.ndarray) -> None:
        """Fill ``self.grads`` with dL/dparams, given dL/doutput (n, k) for the last ``forward``."""
        if self._cache is None:
            raise RuntimeError("backward() needs a forward() first")
        delta = np.asarray(output_grad, dtype=self.dtype)  # (n, k) = dL/doutput
        for i in range(len(self.layers) - 1, self._first_trained - 1, -1):
            delta = self.layers[i].backward(delta, self._cache[i], self.layer_params[i],
                                            self.layer_grads[i], self._passes[i])

    # ------------------------------------------------------------------------------------------
    # inference: evaluation mode, batched, nothing kept

    def output(self, x: np.ndarray, batch_size: int = 4096, watch: Watch | None = None) -> np.ndarray:
        """The raw output (n, k) (logits for cross-entropy) in evaluation mode (running
        statistics, no dropout), ``batch_size`` rows at a time, without touching what
        ``backward`` needs. ``watch(i, layer, input, output)`` sees every layer of every chunk."""
        x = self._input(x)  # (n, d)
        out = np.empty((x.shape[0], self.widths[-1]), dtype=self.dtype)  # (n, k)
        ctx = Pass(training=False, need_input_grad=False)
        for start in range(0, x.shape[0], batch_size):
            a = x[start:start + batch_size]  # (b, d)
            for i, layer in enumerate(self.layers):
                y, _ = layer.forward(a, self.layer_params[i], self.layer_state[i], ctx)
                if watch is not None:
                    watch(i, layer, a, y)
                a = y
            out[start:start + batch_size] = a
        return out

    def predict_proba(self, x: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """Predictions (n, k) with the loss's link applied (class probabilities for
        cross-entropy, the raw output for mse)."""
        return self.loss_fn.link(self.output(x, batch_size))

    def predict(self, x: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """Predicted class labels (n,)."""
        return self.output(x, batch_size).argmax(axis=1)

    def loss(self, x: np.ndarray, y: np.ndarray) -> float:
        """The mean loss over ``x`` (n, d) with targets ``y``: one-hot (n, k) or labels (n,)."""
        return self.loss_fn.value(self.output(x), y)

    # ------------------------------------------------------------------------------------------
    # files: model.npz (one array per layer parameter and state; no pickle) and model.json

    def config(self) -> dict[str, Any]:
        """The architecture as JSON-ready values (what ``model.json`` holds)."""
        return {
            "format": FORMAT,
            "sizes": list(self.sizes),
            "layers": [layer.model_dump(mode="json") for layer in self.hidden],
            "activation": self.activation.name if self.activation is not None else None,
            "loss": self.loss_fn.name,
            "dtype": self.dtype.name,
            "parameters": int(self.params.size),
            "nnpipe_version": pipeline.__version__,
        }

    def array_names(self) -> list[tuple[str, np.ndarray]]:
        """(name in model.npz, view) for every parameter and state array: ``dense0.W``,
        ``dense0.b``, ``batch_norm0.running_mean``, ... (numbered within each kind)."""
        named, seen = [], {}
        for layer, params, state in zip(self.layers, self.layer_params, self.layer_state):
            j = seen[layer.kind] = seen.get(layer.kind, -1) + 1
            named += [(f"{layer.kind}{j}.{name}", view) for name, view in {**params, **state}.items()]
        return named

    def save(self, directory: Path | str) -> list[str]:
        """Write ``model.npz`` and ``model.json`` into ``directory`` atomically; return their names."""
        directory = Path(directory)
        write_npz(directory / "model.npz", dict(self.array_names()))
        write_json(directory / "model.json", self.config())
        return ["model.npz", "model.json"]

    @classmethod
    def load(cls, directory: Path | str) -> "MLP":
        """The model saved in ``directory``; layers, activation and loss are looked up by name in
        the registry.

        Raises:
            DataError: naming the file, when ``model.json`` or ``model.npz`` is missing, is not
                what ``save`` writes, or the two do not match (arrays missing, extra or of another
                shape), or a weight or statistic is NaN or infinite.
        """
        directory = Path(directory)
        model, legacy = cls._from_description(directory / "model.json")
        model._read_arrays(directory / "model.npz", legacy)
        return model

    def _read_arrays(self, npz_path: Path, legacy: bool) -> None:
        """Fill every parameter and state view from ``npz_path``: no array missing or extra,
        each of its view's shape, all finite."""
        named = self.array_names()
        if legacy:  # /1 named the dense layers' arrays W0, b0, ... (they are all there was)
            named = [(f"{name.split('.')[1]}{name.split('.')[0][len('dense'):]}", view)
                     for name, view in named]
        try:
            with np.load(npz_path, allow_pickle=False) as npz:
                extra = sorted(set(npz.files) - {name for name, _ in named})
                if extra:
                    raise DataError(f"{npz_path}: arrays {', '.join(extra)} that model.json "
                                    f"({self.sizes[0]} -> {', '.join(l.label() for l in self.layers)}) "
                                    f"has no layer for")
                for name, view in named:
                    view[...] = _weights(npz_path, npz, name, view.shape)
        except FileNotFoundError:
            raise DataError(f"{npz_path}: no such file (the weights beside model.json)") from None
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:  # pickles, corrupt zip
            raise DataError(f"{npz_path}: cannot read: {exc}") from None

    @classmethod
    def _from_description(cls, path: Path) -> tuple["MLP", bool]:
        """An MLP of the architecture ``model.json`` describes, its parameters zero, and whether
        the description is the first format (sizes and one activation, no layer stack)."""
        try:
            meta = load_json_file(path)  # bounded: a FIFO or a huge file is refused
        except FileNotFoundError:
            raise DataError(f"{path}: no such file (not a saved model?)") from None
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: not a valid model description: {exc}") from None
        legacy = isinstance(meta, dict) and "layers" not in meta
        fields = ("sizes", "activation" if legacy else "layers", "loss", "dtype")
        if not isinstance(meta, dict) or any(name not in meta for name in fields):
            raise DataError(f"{path}: not a valid model description (expected an object with "
                            f"{', '.join(fields)})")
        sizes = meta["sizes"]
        if not isinstance(sizes, list) or len(sizes) < 2 or not all(type(n) is int for n in sizes):
            raise DataError(f"{path}: sizes must be a list of layer widths, got {sizes!r}")
        if not legacy and not isinstance(meta["layers"], list):
            raise DataError(f"{path}: layers must be a list, got {meta['layers']!r}")
        try:
            if legacy:
                return cls(sizes, meta["activation"], meta["loss"], meta["dtype"], init=None), True
            model = cls([sizes[0], sizes[-1]], loss=meta["loss"], dtype=meta["dtype"], init=None,
                        layers=meta["layers"])
        except PluginError as exc:  # a layer, activation or loss that is not installed
            raise PluginError(f"{path}: {exc}") from None
        except DataError as exc:  # a network too large for the memory available
            raise DataError(f"{path}: {exc}") from None
        except (ValueError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
            raise DataError(f"{path}: not a valid model description: {exc}") from None
        if list(model.sizes) != sizes:
            raise DataError(f"{path}: sizes {sizes} but its layers give {list(model.sizes)}")
        return model, False

    # ------------------------------------------------------------------------------------------
    # pickling (the stage cache) keeps the views: only the flat vectors and the architecture travel

    def __getstate__(self) -> dict[str, Any]:
        return {"sizes": (self.sizes[0], self.sizes[-1]), "layers": self.hidden,
                "loss": self.loss_fn, "dtype": self.dtype.name, "params": self.params,
                "stats": self.stats}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["sizes"], loss=state["loss"], dtype=state["dtype"], init=None,
                      layers=state["layers"])
        self.params[...] = state["params"]
        self.stats[...] = state["stats"]

    def __repr__(self) -> str:
        stack = ", ".join(layer.label() for layer in self.layers)
        return (f"MLP({self.sizes[0]} -> {stack}, {self.loss_fn.name}, {self.dtype.name}, "
                f"{self.params.size:,} parameters)")
