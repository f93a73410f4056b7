"""Predictions from a saved run: ``nnpipe predict RUN_DIR INPUT`` ends up here (through the
``nnpipe.predictors`` entry point ``mlp``, so the framework never imports the MLP).

    run directory   model.npz + model.json (the MLP), transforms.json + transforms/ (the fitted
                    transforms, replayed in order exactly as in training; an older run's
                    normalizer.json + normalizer.npz), metrics.json (class names)
    input           an IDX file of images (n, 28, 28), gzip or raw; a PNG image; or a folder of
                    PNG images (sorted by name). PNGs are read with matplotlib (values in [0, 1],
                    multiplied by 255 to match the raw IDX pixels; colour is averaged to grey).
                    MNIST-style data is light on dark: invert a dark-on-light drawing first.

Returns a ``Prediction``: the class probabilities of every sample and its top classes.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.errors import DataError, UserError
from pipeline.resources import require_memory
from pipeline.engine.transforms import CHAIN_NAME, Fitted, load_chain, replay
from pipeline.userfiles import load_json_file, read_bytes
from plugins.idx import read_idx
from plugins.mlp.model import MLP
from plugins.normalize import JSON_NAME, NPZ_NAME, Normalizer


@dataclass
class Prediction:
    """What ``predict`` found.

    Attributes:
        names: one name per sample (the PNG's file name, or ``INPUT[i]`` for IDX rows).
        probabilities: (n, k) the loss's link applied to the output (softmax for cross-entropy).
        top: (n, top) class indices, most probable first.
        class_names: a name per class, or None.
        accuracy: the share of top-1 classes equal to the given labels, or None without labels.
    """

    names: list[str]
    probabilities: np.ndarray
    top: np.ndarray
    class_names: list[str] | None
    accuracy: float | None = None

    @property
    def labels(self) -> np.ndarray:
        return self.top[:, 0]  # (n,)

    def class_name(self, index: int) -> str:
        if self.class_names and index < len(self.class_names) \
                and self.class_names[index] != str(index):
            return f"{index} ({self.class_names[index]})"
        return str(index)

    def lines(self, limit: int | None = None) -> list[str]:
        """One line per sample: its name, then class:probability for each top class."""
        rows = range(len(self.names)) if limit is None else range(min(limit, len(self.names)))
        return [f"{self.names[i]}  " + "  ".join(
            f"{self.class_name(int(c))}: {self.probabilities[i, c]:.4f}" for c in self.top[i])
            for i in rows]


def read_images(path: Path | np.ndarray) -> tuple[list[str], np.ndarray]:
    """Raw pixel arrays (n, h, w) in 0..255 and a name per sample, from IDX or PNG input, or
    from an array of raw pixels (n, h, w) or (n, d) as the Python API passes it."""
    if isinstance(path, np.ndarray):
        if path.ndim < 2 or not np.issubdtype(path.dtype, np.number):
            raise DataError(f"images: expected a numeric array (n, h, w) or (n, d); "
                            f"got {path.dtype} of shape {path.shape}")
        return [f"images[{i}]" for i in range(path.shape[0])], path
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".png")
        if not files:
            raise DataError(f"{path}: no .png files in this folder")
        images = [_read_png(p) for p in files]
        shapes = {image.shape for image in images}
        if len(shapes) > 1:
            raise DataError(f"{path}: the images differ in size ({sorted(shapes)})")
        require_memory(sum(image.nbytes for image in images),
                       f"{path}: stacking {len(images)} images", "predict fewer images at once")
        return [p.name for p in files], np.stack(images)  # (n, h, w)
    if path.suffix.lower() == ".png":
        return [path.name], _read_png(path)[None]  # (1, h, w)
    images = read_idx(path)  # (n, h, w) or (n, d)
    if images.ndim < 2:
        raise DataError(f"{path}: holds a 1-d IDX array (labels?), expected images")
    return [f"{path.name}[{i}]" for i in range(images.shape[0])], images


#: Most pixels a PNG given to ``predict`` may have (4096 x 4096); checked from the header.
MAX_PNG_PIXELS = 4096 * 4096
#: Largest PNG file read (a 4096 x 4096 RGBA PNG that does not compress is 64 MiB).
MAX_PNG_BYTES = 80 << 20
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes, path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk, which the format puts first; a DataError
    naming ``path`` when the bytes are not a PNG."""
    if data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR" or len(data) < 24:
        raise DataError(f"{path}: not a PNG image (no PNG signature and IHDR header)")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _read_png(path: Path) -> np.ndarray:
    """(h, w) grey pixels in 0..255 of the PNG at ``path``: its dimensions are read from the
    header and checked (``MAX_PNG_PIXELS``, and the memory decoding needs) before decoding."""
    from matplotlib.image import imread

    try:
        data = read_bytes(path, "PNG image", MAX_PNG_BYTES)
    except UserError as exc:
        raise DataError(str(exc)) from None
    width, height = png_size(data, path)
    if width * height > MAX_PNG_PIXELS or width == 0 or height == 0:
        raise DataError(f"{path}: PNG of {width}x{height} pixels; at most {MAX_PNG_PIXELS} pixels "
                        "(4096x4096) are accepted, and at least one")
    # Decoded as up to 4 float32 channels, then one float64 grey copy.
    require_memory(width * height * (4 * 4 + 8), f"{path}: decoding a {width}x{height} PNG",
                   "use a smaller image")
    try:
        image = imread(io.BytesIO(data), format="png")  # (h, w) or (h, w, 3|4) floats in [0, 1]
    except (OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"{path}: not a readable PNG image ({exc})") from None
    if image.ndim == 3:
        image = image[..., :3].mean(axis=2)  # (h, w) grey, alpha ignored
    return image.astype(np.float64) * 255.0  # (h, w) in 0..255 like IDX pixels


def predict(run_dir: Path | str, input_path: Path | str | np.ndarray, top: int = 3,
            labels: Path | str | np.ndarray | None = None) -> Prediction:
    """Classify ``input_path`` (a file, a folder or an array of raw pixels) with the model saved
    in ``run_dir``; with ``labels`` (an IDX file or an array of one label per sample) also
    measure the accuracy.

    Raises:
        DataError: a missing or broken run directory or input, or input of the wrong size.
    """
    run_dir = Path(run_dir)
    if not isinstance(input_path, np.ndarray):
        input_path = Path(input_path)
    if not run_dir.is_dir():
        raise DataError(f"{run_dir}: not a run directory (expected model.npz and model.json)")
    model = MLP.load(run_dir)
    names, images = read_images(input_path)  # (n, h, w) raw pixels
    where = "images" if isinstance(input_path, np.ndarray) else str(input_path)
    features = int(np.prod(images.shape[1:]))
    # Normalising makes float64 copies of every sample: check before the first one.
    require_memory(2 * images.shape[0] * features * 8, f"{where}: {images.shape[0]} samples "
                   f"of {features} values as float64", "predict fewer samples at once")
    probabilities = model.predict_proba(model_inputs(run_dir, model, images, where))  # (n, k)
    k = probabilities.shape[1]
    top_classes = np.argsort(-probabilities, axis=1, kind="stable")[:, :min(top, k)]  # (n, top)
    result = Prediction(names, probabilities, top_classes, _class_names(run_dir))
    if labels is not None:
        truth = (np.asarray(labels) if not isinstance(labels, (str, Path))
                 else read_idx(labels)).reshape(-1)  # (n,)
        if truth.shape[0] != len(names):
            where = labels if isinstance(labels, (str, Path)) else "labels"
            raise DataError(f"{where}: {truth.shape[0]} labels for {len(names)} samples")
        result.accuracy = float(np.mean(result.labels == truth))
    return result


def model_inputs(run_dir: Path, model: MLP, images: np.ndarray, where: str) -> np.ndarray:
    """Raw inputs (n, ...) -> what the model was trained on: the run's fitted-transform chain
    replayed in order (``pipeline.engine.transforms``).

    Raises:
        DataError: samples of another size than the run was trained on (``where`` names them).
    """
    x = replay(saved_chain(run_dir, model.sizes[0]), images, where)  # (n, ...) as in training
    raw, features = int(np.prod(images.shape[1:])), int(np.prod(x.shape[1:]))
    if features != model.sizes[0]:
        after = f" give {features} after the run's transforms" if features != raw else ""
        raise DataError(f"{where}: samples of shape {images.shape[1:]} ({raw} values){after}; "
                        f"the model expects {model.sizes[0]} values per sample")
    return x


def saved_chain(run_dir: Path, features: int) -> list[Fitted]:
    """The run's fitted transforms in order: its ``transforms.json``, or for a run written
    before the chain was recorded, its normaliser if it has one (checked against the model's
    ``features``). A chain file the manifest lists but that is gone is a DataError."""
    chain = load_chain(run_dir)
    if chain is not None:
        last = chain[-1].transform if chain else None  # what feeds the model
        if isinstance(last, Normalizer) and last.offset.shape \
                and int(np.prod(last.offset.shape)) != features:
            raise DataError(f"{chain[-1].directory / NPZ_NAME}: fitted on samples of shape "
                            f"{last.offset.shape}, but model.json expects {features} values per sample")
        return chain
    if CHAIN_NAME in _listed_files(run_dir):
        raise DataError(f"{run_dir / CHAIN_NAME}: missing, but the run's manifest lists it")
    normalizer = _saved_normalizer(run_dir, features)
    if normalizer is None:
        return []
    return [Fitted(0, "normalize", "normalize", normalizer, tuple(normalizer.offset.shape) or None)]


def _listed_files(run_dir: Path) -> set[str]:
    """The files the run's manifest lists (empty without a readable manifest)."""
    try:
        files = load_json_file(run_dir / "manifest.json").get("files")
        return {str(name) for name in files} if isinstance(files, list) else set()
    except (OSError, ValueError, AttributeError, TypeError):
        return set()  # no manifest: the files present decide


def _saved_normalizer(run_dir: Path, features: int) -> Normalizer | None:
    """The run's fitted input transform, checked against the model; None only when the run had
    none: neither file is there and the run's manifest lists neither. A transform that is
    missing, damaged or of another size than the model's input is a DataError naming the file,
    never silently skipped (predictions on unnormalised inputs would look plausible and be
    wrong)."""
    names, listed = (JSON_NAME, NPZ_NAME), _listed_files(run_dir)
    if not any((run_dir / name).exists() or name in listed for name in names):
        return None
    normalizer = Normalizer.load(run_dir)
    shape = normalizer.offset.shape
    if shape and int(np.prod(shape)) != features:
        raise DataError(f"{run_dir / NPZ_NAME}: fitted on samples of shape {shape}, but "
                        f"model.json expects {features} values per sample")
    return normalizer


def _class_names(run_dir: Path) -> list[str] | None:
    try:
        names = load_json_file(run_dir / "metrics.json").get("class_names")
    except (OSError, ValueError, AttributeError):
        return None
    return list(names) if isinstance(names, list) else None
