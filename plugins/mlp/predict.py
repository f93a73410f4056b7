"""Predictions from a saved run: ``nnpipe predict RUN_DIR INPUT`` ends up here (through the
``nnpipe.predictors`` entry point ``mlp``, so the framework never imports the MLP).

    run directory   model.npz + model.json (the MLP), normalizer.json + normalizer.npz (the fitted
                    input transform, applied exactly as in training), metrics.json (class names)
    input           an IDX file of images (n, 28, 28), gzip or raw; a PNG image; or a folder of
                    PNG images (sorted by name). PNGs are read with matplotlib (values in [0, 1],
                    multiplied by 255 to match the raw IDX pixels; colour is averaged to grey).
                    MNIST-style data is light on dark: invert a dark-on-light drawing first.

Returns a ``Prediction``: the class probabilities of every sample and its top classes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.errors import DataError
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


def read_images(path: Path) -> tuple[list[str], np.ndarray]:
    """Raw pixel arrays (n, h, w) in 0..255 and a name per sample, from IDX or PNG input."""
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
        return [p.name for p in files], np.stack(images)  # (n, h, w)
    if path.suffix.lower() == ".png":
        return [path.name], _read_png(path)[None]  # (1, h, w)
    images = read_idx(path)  # (n, h, w) or (n, d)
    if images.ndim < 2:
        raise DataError(f"{path}: holds a 1-d IDX array (labels?), expected images")
    return [f"{path.name}[{i}]" for i in range(images.shape[0])], images


def _read_png(path: Path) -> np.ndarray:
    from matplotlib.image import imread

    try:
        image = imread(path)  # (h, w) or (h, w, 3|4), floats in [0, 1] for PNG
    except (OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"{path}: not a readable PNG image ({exc})") from None
    if image.ndim == 3:
        image = image[..., :3].mean(axis=2)  # (h, w) grey, alpha ignored
    return image.astype(np.float64) * 255.0  # (h, w) in 0..255 like IDX pixels


def predict(run_dir: Path | str, input_path: Path | str, top: int = 3,
            labels: Path | str | None = None) -> Prediction:
    """Classify ``input_path`` with the model saved in ``run_dir``; with ``labels`` (an IDX file
    of one label per sample) also measure the accuracy.

    Raises:
        DataError: a missing or broken run directory or input, or input of the wrong size.
    """
    run_dir, input_path = Path(run_dir), Path(input_path)
    if not run_dir.is_dir():
        raise DataError(f"{run_dir}: not a run directory (expected model.npz and model.json)")
    model = MLP.load(run_dir)
    normalizer = _saved_normalizer(run_dir, model.sizes[0])
    names, images = read_images(input_path)  # (n, h, w) raw pixels
    features = int(np.prod(images.shape[1:]))
    if features != model.sizes[0]:
        raise DataError(f"{input_path}: samples of shape {images.shape[1:]} ({features} values); "
                        f"the model expects {model.sizes[0]} values per sample")
    if normalizer is not None:
        shape = normalizer.offset.shape  # () for scale, the training samples' shape otherwise
        if shape:
            images = images.reshape(images.shape[0], *shape)  # (n, *shape), e.g. (n, 784)
        images = normalizer.apply(images)  # as in training
    probabilities = model.predict_proba(images)  # (n, k)
    k = probabilities.shape[1]
    top_classes = np.argsort(-probabilities, axis=1, kind="stable")[:, :min(top, k)]  # (n, top)
    result = Prediction(names, probabilities, top_classes, _class_names(run_dir))
    if labels is not None:
        truth = read_idx(labels).reshape(-1)  # (n,)
        if truth.shape[0] != len(names):
            raise DataError(f"{labels}: {truth.shape[0]} labels for {len(names)} samples")
        result.accuracy = float(np.mean(result.labels == truth))
    return result


def _saved_normalizer(run_dir: Path, features: int) -> Normalizer | None:
    """The run's fitted input transform, checked against the model; None only when the run had
    none: neither file is there and the run's manifest lists neither. A transform that is
    missing, damaged or of another size than the model's input is a DataError naming the file,
    never silently skipped (predictions on unnormalised inputs would look plausible and be
    wrong)."""
    names = (JSON_NAME, NPZ_NAME)
    listed = set()
    try:
        files = json.loads((run_dir / "manifest.json").read_text()).get("files")
        listed = {str(name) for name in files} if isinstance(files, list) else set()
    except (OSError, ValueError, AttributeError, TypeError):
        pass  # no manifest: the files present decide
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
        names = json.loads((run_dir / "metrics.json").read_text()).get("class_names")
    except (OSError, ValueError, AttributeError):
        return None
    return list(names) if isinstance(names, list) else None
