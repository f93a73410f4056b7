"""``nnpipe export RUN --format onnx``: the whole inference path of a run as one ONNX graph.

    images (N, *sample shape) float32 raw pixels, 0..255 as the IDX files hold them
      -> Flatten -> every fitted transform (the normaliser: Sub, Div)
      -> every layer (dense as Gemm, activations, batch/layer norm; dropout gone)
      -> the loss's link (Softmax for cross-entropy)
    -> probabilities (N, classes)

Each piece brings its own ONNX form (``plugins.mlp.onnx_forms``); a piece without one is refused
by name before anything is written. The file carries the class names, the input shape and
``producer_name = "nnpipe"``, which is how a later export recognises a file it may replace: any
other file at ``--out`` is left alone. Registered as the ``onnx`` entry point of the
``nnpipe.exporters`` group.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

import pipeline
from pipeline.errors import DataError, RunError, UserError
from pipeline.files import atomic_open
from plugins.mlp import onnx_forms
from plugins.mlp.model import MLP
from plugins.mlp.onnx_forms import OnnxGraph
from plugins.mlp.predict import saved_chain

PRODUCER = "nnpipe"
#: metadata key marking a file as nnpipe's export (with the format of what follows)
MARK = "nnpipe_export"
INPUT, OUTPUT = "images", "probabilities"
#: the largest file at --out read to see whether nnpipe wrote it (ours are far smaller)
MAX_RECOGNISED_BYTES = 1 << 30


def _onnx():
    try:
        import onnx
    except ImportError:
        raise UserError("nnpipe export --format onnx needs the onnx package: "
                        "pip install 'nnpipe[onnx]'") from None
    return onnx


def _run_facts(run_dir: Path) -> tuple[list[str] | None, list[int] | None]:
    """(class names, sample shape) from the run's metrics.json, each None when not recorded."""
    try:
        metrics = json.loads((run_dir / "metrics.json").read_text())
    except (OSError, ValueError):
        return None, None
    names, shape = metrics.get("class_names"), metrics.get("sample_shape")
    return (list(map(str, names)) if isinstance(names, list) else None,
            [int(d) for d in shape] if isinstance(shape, list) else None)


def model_pieces(model: Any) -> list[tuple[str, Any, dict, dict, Any]]:
    """(label, form or None, params, state, layer) for every layer of ``model`` in order."""
    layers = getattr(model, "layers", None)
    if layers is not None:  # the layer stack
        return [(f"layer {getattr(layer, 'kind', type(layer).__name__)!r} (layers[{i}])",
                 onnx_forms.layer_form(layer), params, state, layer)
                for i, (layer, params, state)
                in enumerate(zip(layers, model.layer_params, model.layer_state))]
    pieces = []
    act = model.activation
    for l in range(model.depth):  # dense, activation, dense, ..., dense
        pieces.append((f"dense layer {l}", onnx_forms.dense, {"W": model.W[l], "b": model.b[l]},
                       {}, None))
        if l < model.depth - 1:
            form = onnx_forms.activation_form(act)
            where = getattr(getattr(act, "value", None), "__module__", type(act).__module__)
            pieces.append((f"activation {getattr(act, 'name', act)!r} from {where}",
                           None if form is None else (lambda g, x, p, s, layer, f=form: f(g, x)),
                           {}, {}, None))
    return pieces


def _origin(layer: Any) -> str:
    """The module that defines ``layer``: for an activation used as a layer, the activation's
    own (a plugin's, say), not the wrapper's."""
    activation = getattr(layer, "activation", None)
    value = getattr(activation, "value", None)
    return getattr(value, "__module__", None) or type(layer).__module__


def _refuse_missing(run_dir: Path, transforms: list, pieces: list, loss: Any) -> None:
    """One UserError naming every piece that has no ONNX form."""
    missing = [f"the transform of {f.label} ({type(f.transform).__module__}."
               f"{type(f.transform).__name__})" for f in transforms
               if onnx_forms.transform_form(f.transform) is None]
    missing += [label if layer is None else f"{label} from {_origin(layer)}"
                for label, form, _, _, layer in pieces if form is None]
    if onnx_forms.link_form(loss) is None:
        missing.append(f"the link of loss {getattr(loss, 'name', loss)!r}")
    if missing:
        raise UserError(f"{run_dir}: cannot export to ONNX: no ONNX form for "
                        f"{'; '.join(missing)} (a plugin provides one with an onnx attribute; "
                        "see plugins/mlp/onnx_forms.py)")


def _input_shape(model: MLP, sample_shape: list[int] | None, chain: list) -> list[int]:
    """The shape of one raw input sample: the dataset's (28, 28) when it has the size the first
    transform (else the model) was trained on, else flat rows of that size."""
    first = chain[0].input_shape if chain else None
    d = int(np.prod(first)) if first is not None else model.sizes[0]
    if sample_shape and int(np.prod(sample_shape)) == d:
        return sample_shape
    return [d]


def build(run_dir: Path | str) -> Any:
    """The checked ``onnx.ModelProto`` of the run's inference path.

    Raises:
        UserError: the run has no model, or a piece has no ONNX form.
    """
    onnx = _onnx()
    from onnx import TensorProto, helper

    run_dir = Path(run_dir)
    model = MLP.load(run_dir)
    transforms, pieces = saved_chain(run_dir, model.sizes[0]), model_pieces(model)
    _refuse_missing(run_dir, transforms, pieces, model.loss_fn)
    class_names, sample_shape = _run_facts(run_dir)
    shape = _input_shape(model, sample_shape, transforms)

    g = OnnxGraph(model.dtype)
    x = g.node("Flatten", [INPUT], axis=1) if len(shape) > 1 else INPUT  # (N, d) float32
    x, dtype = _chain(g, x, np.dtype(np.float32), transforms, model.dtype)
    for _, form, params, state, layer in pieces:
        x = form(g, x, params, state, layer)
    x = onnx_forms.link_form(model.loss_fn)(g, x)
    g.node("Identity", [x], output=OUTPUT)

    elem = helper.np_dtype_to_tensor_dtype(model.dtype)
    graph = helper.make_graph(
        g.nodes, "nnpipe", [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["N", *shape])],
        [helper.make_tensor_value_info(OUTPUT, elem, ["N", model.sizes[-1]])], g.initializers)
    proto = helper.make_model(graph, producer_name=PRODUCER, producer_version=pipeline.__version__,
                              opset_imports=[helper.make_opsetid("", onnx_forms.OPSET)],
                              ir_version=8, doc_string=f"nnpipe run {run_dir.name}")
    helper.set_model_props(proto, {
        MARK: "onnx/1", "class_names": json.dumps(class_names), "input_shape": json.dumps(shape),
        "input": f"{INPUT}: raw pixel values (0..255) as float32, shape (N, {', '.join(map(str, shape))})",
        "output": f"{OUTPUT}: the loss's link of the network's output, shape (N, {model.sizes[-1]})",
        "run": run_dir.name})
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as exc:  # a form built an invalid graph: nnpipe's fault, not the user's
        raise RunError(f"{run_dir}: the exported graph fails onnx.checker: {exc}") from exc
    return proto


def _chain(g: OnnxGraph, x: str, dtype: np.dtype, transforms: list, model_dtype: np.dtype):
    """Every fitted transform of the chain, each in its own dtype (a Cast where it changes), then a Cast to the
    model's dtype if needed; (output name, its dtype)."""
    from onnx import helper

    for fitted in (f.transform for f in transforms):  # on flat rows (N, d)
        wanted = np.dtype(getattr(fitted, "dtype", dtype))
        if wanted != dtype:
            x, dtype = g.node("Cast", [x], to=helper.np_dtype_to_tensor_dtype(wanted)), wanted
        x = onnx_forms.transform_form(fitted)(g, x, fitted)
    if dtype != model_dtype:
        x = g.node("Cast", [x], to=helper.np_dtype_to_tensor_dtype(model_dtype))
    return x, model_dtype


def _refuse_foreign(target: Path) -> None:
    """Refuse to replace anything at ``target`` but an earlier nnpipe export."""
    if not target.exists() and not target.is_symlink():
        return
    if not target.is_file():
        raise UserError(f"{target}: exists and is not a file; refusing to replace it")
    ours = False
    if target.stat().st_size <= MAX_RECOGNISED_BYTES:
        try:
            found = _onnx().load_model(str(target), load_external_data=False)
            ours = found.producer_name == PRODUCER and any(
                prop.key == MARK for prop in found.metadata_props)
        except Exception:  # not an ONNX file at all
            ours = False
    if not ours:
        raise UserError(f"{target}: exists and is not an ONNX file nnpipe exported; refusing to "
                        "overwrite it (choose another --out, or move the file away)")


def export_onnx(run_dir: Path | str, out: Path | str | None = None) -> Path:
    """Write the ONNX graph of ``run_dir``'s inference path to ``out`` (default
    ``RUN/model.onnx``) atomically, replacing only an earlier nnpipe export; return the path.

    Raises:
        UserError: not a run directory with a model, a piece without an ONNX form, or ``out``
            holds something nnpipe did not write.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(f"{run_dir}: not a run directory (expected model.npz and model.json)")
    target = Path(out) if out is not None else run_dir / "model.onnx"
    _refuse_foreign(target)
    data = build(run_dir).SerializeToString()
    with atomic_open(target, "wb") as handle:
        handle.write(data)
    return target
