"""The fitted-transform chain of a run: saved in the run directory, replayed before the model.

A stage whose class names a ``transform_output`` (see ``pipeline.spec.StageSpec``) fits a
transform on the train split and applies it to every split. The runner collects those transforms
in pipeline order and ``write_chain`` records the chain in ``transforms.json``; each transform's
files are the ones its artifact left in the run directory (``"dir": "."``), or, for one a later
stage of the same output name replaced, its own folder ``transforms/<index>-<stage>/``:

    {"format": "nnpipe-transforms/1",
     "chain": [{"index": 2, "stage": "normalize", "kind": "normalize", "input_shape": [784],
                "dir": ".", "files": ["normalizer.json", "normalizer.npz"]},
               ...]}

``load_chain`` reads it back through the stage registry (a kind that is not installed is an
error, never an import of a name read from the file) and ``replay`` applies it to raw inputs in
order, each on inputs of the sample shape its stage saw in training (recorded as ``input_shape``
when the stage read a ``Dataset``): raw inputs of another size are refused with the stage's name.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import DataError, RunError
from pipeline.files import write_json

CHAIN_NAME = "transforms.json"
CHAIN_FORMAT = "nnpipe-transforms/1"
CHAIN_DIR = "transforms"


@dataclass
class Fitted:
    """One transform of the chain: which stage fitted it, and the transform itself."""

    index: int
    stage: str
    kind: str
    transform: Any
    #: the shape of one sample the stage was fitted on and applied to, when known
    input_shape: tuple[int, ...] | None = None
    #: the folder its files were read from (set by ``load_chain``)
    directory: Path | None = None

    @property
    def label(self) -> str:
        return f"stages[{self.index}] ({self.stage})"


def sample_shape(inputs: dict[str, Any]) -> tuple[int, ...] | None:
    """The shape of one train sample of the first ``Dataset`` among a stage's inputs, if any."""
    from pipeline.artifacts import Dataset

    for value in inputs.values():
        if isinstance(value, Dataset) and "train" in value.splits:
            return tuple(int(d) for d in value.splits["train"].x.shape[1:])
    return None


def _folder_name(fitted: Fitted) -> str:
    """``2-normalize``: the stage's index and id, with anything but [A-Za-z0-9_.-] replaced."""
    return f"{fitted.index}-{re.sub(r'[^A-Za-z0-9_.-]', '_', fitted.stage).lstrip('.') or 'stage'}"


def write_chain(directory: Path, chain: list[Fitted], saved: dict[int, list[str]] | None = None
                ) -> list[str]:
    """Write ``transforms.json`` for ``chain``; a transform already saved in ``directory`` itself
    (``saved``: id of the object -> its files, the run's final artifacts) is recorded there
    (``"dir": "."``), any other (one a later stage's output of the same name replaced) is saved
    under ``directory/transforms/``. Return the files written, relative to ``directory``."""
    entries, files, saved = [], [], saved or {}
    for fitted in chain:
        if id(fitted.transform) in saved:
            entries.append(_entry(fitted, ".", saved[id(fitted.transform)]))
            continue
        save = getattr(fitted.transform, "save", None)
        if not callable(save) or not callable(getattr(fitted.transform, "apply", None)):
            raise RunError(f"stages[{fitted.index}] ({fitted.stage}): its transform "
                           f"{type(fitted.transform).__name__} has no save(directory) and "
                           "apply(x) methods")
        folder = f"{CHAIN_DIR}/{_folder_name(fitted)}"
        written = list(save(Path(directory) / folder))
        entries.append(_entry(fitted, folder, written))
        files.extend(f"{folder}/{name}" for name in written)
    if chain:
        write_json(Path(directory) / CHAIN_NAME, {"format": CHAIN_FORMAT, "chain": entries})
        files.append(CHAIN_NAME)
    return files


def _entry(fitted: Fitted, folder: str, files: list[str]) -> dict[str, Any]:
    shape = list(fitted.input_shape) if fitted.input_shape is not None else None
    return {"index": fitted.index, "stage": fitted.stage, "kind": fitted.kind,
            "input_shape": shape, "dir": folder, "files": list(files)}


def _entries(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / CHAIN_NAME
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        entries = document["chain"]
        if document.get("format") != CHAIN_FORMAT or not isinstance(entries, list):
            raise ValueError(f"format {document.get('format')!r}")
        return [{"kind": str(e["kind"]), "dir": str(e["dir"]), "stage": str(e.get("stage", "")),
                 "index": int(e.get("index", i)),
                 "input_shape": None if e.get("input_shape") is None
                 else tuple(int(d) for d in e["input_shape"])} for i, e in enumerate(entries)]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DataError(f"{path}: not a transform chain nnpipe wrote ({type(exc).__name__}: "
                        f"{exc})") from None


def load_chain(run_dir: Path | str, registry: Any = None) -> list[Fitted] | None:
    """The run's fitted transforms in order, or None for a run without ``transforms.json``
    (written before the chain was recorded: its caller falls back to the old files).

    Raises:
        DataError: a broken chain file, a folder outside the run, a transform that cannot be read.
        PluginError: a stage kind of the chain is not installed.
    """
    from pipeline.registry import default_registry

    run_dir = Path(run_dir)
    if not (run_dir / CHAIN_NAME).exists():
        return None
    registry = registry or default_registry()
    chain = []
    for entry in _entries(run_dir):
        folder = (run_dir / entry["dir"]).resolve()
        if not folder.is_relative_to(run_dir.resolve()) or not folder.is_dir():
            raise DataError(f"{run_dir / CHAIN_NAME}: {entry['dir']!r} is not a folder of this run")
        stage_class = registry.load("stages", entry["kind"])
        chain.append(Fitted(entry["index"], entry["stage"], entry["kind"],
                            stage_class.load_transform(run_dir / entry["dir"]),
                            entry["input_shape"], run_dir / entry["dir"]))
    return chain


def replay(chain: list[Fitted], x: np.ndarray, where: str = "input") -> np.ndarray:
    """Apply every transform of ``chain`` to raw inputs ``x`` (n, ...), in order, each on samples
    of the shape it saw in training.

    Raises:
        DataError: the samples are not the size a transform was fitted on (``where`` names them).
    """
    for fitted in chain:
        shape, values = fitted.input_shape, int(np.prod(x.shape[1:]))
        if shape is not None:
            if int(np.prod(shape)) != values:
                raise DataError(f"{where}: samples of shape {x.shape[1:]} ({values} values); the "
                                f"model expects {int(np.prod(shape))} values per sample (what "
                                f"{fitted.label} was fitted on)")
            x = x.reshape(x.shape[0], *shape)  # (n, *shape) as in training
        try:
            x = fitted.transform.apply(x)
        except (ValueError, TypeError) as exc:
            raise DataError(f"{where}: {fitted.label} cannot transform it: {exc}") from None
    return x
