"""The ``plots`` stage: pictures of a finished run, saved as ``plots/*.png`` in the run directory.

    curves.png        train and validation loss and accuracy per epoch       (from ``history``)
    confusion.png     the confusion matrix as a heatmap, class names on axes (from ``metrics``)
    misclassified.png a grid of wrongly predicted images, "true -> predicted" (``data``, ``model``)
    weights.png       the first dense layer's weights, one image per unit    (from ``model``)
    diagnostics.png   per layer and epoch: gradient and weight norms, update-to-weight ratios,
                      dead or saturated units                                (from ``history``)
    augmentations.png a few training images and distortions drawn by the pipeline's augment
                      recipe, one original per row                  (``data``, ``augmentation``)

The figures are rendered once, after training, as bare ``matplotlib.figure.Figure`` objects
(never pyplot, so no window opens and the backend of whoever imports this, a notebook's inline one
say, is left alone), and
kept as PNG bytes, so the artifact is cheap to cache and to write. Image grids are one mosaic
array drawn by a single ``imshow``, not one axes per tile, which keeps all four plots well under
a second or two.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

import numpy as np
from pydantic import Field, PositiveInt

from pipeline.artifacts import Dataset
from pipeline.files import atomic_open
from pipeline.spec import StageContext, StageSpec

PLOTS_DIR = "plots"


def _figure(**options):
    """A matplotlib ``Figure`` of its own, imported on first use: matplotlib takes a third of a
    second to import, and validating, planning or a cached rerun never draws. No pyplot: its
    global state and backend belong to the user (a notebook keeps its inline backend), and a
    ``Figure`` renders to PNG with the Agg canvas without any backend being chosen."""
    from matplotlib.figure import Figure

    return Figure(**options)


def _subplots(*grid, figsize, **options):
    """``(figure, axes)`` like ``pyplot.subplots``, on a ``_figure``."""
    figure = _figure(figsize=figsize)
    return figure, figure.subplots(*grid, **options)


@dataclass
class Plots:
    """Rendered figures by file name (``"curves.png"`` -> PNG bytes); saved under ``plots/``."""

    images: dict[str, bytes] = field(default_factory=dict)

    def save(self, directory: Path) -> list[str]:
        """Write every PNG into ``directory/plots``; return their paths relative to ``directory``."""
        written = []
        for name, png in self.images.items():
            with atomic_open(Path(directory) / PLOTS_DIR / name, "wb") as handle:
                handle.write(png)
            written.append(f"{PLOTS_DIR}/{name}")
        return written


def _png(figure) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


#: history's per-layer measures drawn by ``plot_diagnostics``, with their axis titles.
DIAGNOSTICS = (("grad_norm", "gradient norm (mean over steps)"), ("weight_norm", "weight norm"),
               ("update_ratio", "update / weight norm"), ("dead", "dead units (fraction)"),
               ("saturated", "saturated units (fraction)"))


def plot_diagnostics(history: list[dict[str, Any]]) -> bytes | None:
    """One panel per measure in the epochs' ``layers`` entries, one line per layer ("2 dense");
    None when the history has no per-layer entries."""
    series: dict[str, dict[str, tuple[list, list]]] = {}  # measure -> layer -> (epochs, values)
    for epoch in history:
        for entry in epoch.get("layers") or []:
            for measure, _ in DIAGNOSTICS:
                if entry.get(measure) is not None:
                    line = series.setdefault(measure, {}).setdefault(
                        f"{entry['layer']} {entry['kind']}", ([], []))
                    line[0].append(epoch["epoch"])
                    line[1].append(entry[measure])
    if not series:
        return None
    shown = [(m, title) for m, title in DIAGNOSTICS if m in series]
    figure, axes = _subplots(1, len(shown), figsize=(4.2 * len(shown), 3.8), squeeze=False)
    from matplotlib.ticker import MaxNLocator

    figure.subplots_adjust(left=0.06, right=0.98, bottom=0.14, top=0.9, wspace=0.3)
    for ax, (measure, title) in zip(axes[0], shown):
        for label, (epochs, values) in series[measure].items():
            ax.plot(epochs, values, "o-", markersize=3, label=label)
        if measure in ("grad_norm", "weight_norm", "update_ratio") and \
                all(v > 0 for _, values in series[measure].values() for v in values):
            ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, title="layer", title_fontsize=7)
    return _png(figure)


def plot_curves(history: list[dict[str, Any]]) -> bytes:
    """Loss and accuracy per epoch, train and validation (when there is one), side by side."""
    epochs = [e["epoch"] for e in history]
    figure, (loss_ax, acc_ax) = _subplots(1, 2, figsize=(10, 4))
    from matplotlib.ticker import MaxNLocator

    figure.subplots_adjust(left=0.07, right=0.98, bottom=0.13, top=0.92, wspace=0.2)
    for ax, what in ((loss_ax, "loss"), (acc_ax, "accuracy")):
        ax.plot(epochs, [e[f"train_{what}"] for e in history], "o-", label="train")
        val = [e[f"val_{what}"] for e in history]
        if any(v is not None for v in val):
            ax.plot(epochs, [np.nan if v is None else v for v in val], "s-", label="validation")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(what)
        ax.set_title(what)
        ax.grid(alpha=0.3)
        ax.legend()
    loss_ax.set_yscale("log")  # losses fall by orders of magnitude; the tail stays visible
    return _png(figure)


def plot_confusion(confusion: np.ndarray, names: list[str], title: str) -> bytes:
    """The (k, k) confusion matrix as a heatmap: rows true class, columns predicted, counts shown."""
    k = confusion.shape[0]
    size = max(5.0, 0.55 * k + 2)
    long = max(map(len, names)) > 2  # long names: rotated ticks and wider margins
    figure, ax = _subplots(figsize=(size + 1, size))
    figure.subplots_adjust(left=0.17 if long else 0.09, bottom=0.17 if long else 0.09,
                           right=0.95, top=0.94)
    image = ax.imshow(confusion, cmap="Blues")
    figure.colorbar(image, ax=ax, shrink=0.8)
    ax.set_xticks(range(k), names, rotation=45 if long else 0, ha="right" if long else "center")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if k <= 20:  # counts in the cells, white on dark cells
        threshold = confusion.max() / 2
        for (t, p), count in np.ndenumerate(confusion):
            ax.text(p, t, str(count), ha="center", va="center", fontsize=8,
                    color="white" if count > threshold else "black")
    return _png(figure)


def mosaic(tiles: np.ndarray, columns: int, gap: int = 1, symmetric: bool = False) -> np.ndarray:
    """Tiles (n, h, w) -> one image (rows*(h+gap)-gap, columns*(w+gap)-gap); gaps and missing
    tiles are NaN (drawn as background).

    Each tile is scaled to [0, 1] on its own: min to 0 and max to 1, or with ``symmetric`` (for
    weights) -max|tile| to 0, zero to 0.5 and max|tile| to 1, so that zero has one colour.
    """
    n, h, w = tiles.shape
    rows = math.ceil(n / columns)
    if symmetric:
        reach = np.abs(tiles).max(axis=(1, 2), keepdims=True)  # (n, 1, 1)
        scaled = 0.5 + 0.5 * tiles / np.where(reach > 0, reach, 1)  # (n, h, w) in [0, 1]
    else:
        low = tiles.min(axis=(1, 2), keepdims=True)  # (n, 1, 1)
        span = tiles.max(axis=(1, 2), keepdims=True) - low  # (n, 1, 1)
        scaled = (tiles - low) / np.where(span > 0, span, 1)  # (n, h, w) in [0, 1]
    canvas = np.full((rows * columns, h + gap, w + gap), np.nan)  # (cells, h+gap, w+gap)
    canvas[:n, :h, :w] = scaled
    canvas = canvas.reshape(rows, columns, h + gap, w + gap).transpose(0, 2, 1, 3)
    return canvas.reshape(rows * (h + gap), columns * (w + gap))[:-gap or None, :-gap or None]


def plot_misclassified(images: np.ndarray, true: list[str], predicted: list[str],
                       columns: int = 8) -> bytes:
    """Images (n, h, w) in a grid, each titled ``true -> predicted``."""
    n, h, w = images.shape
    rows = max(1, math.ceil(n / columns))
    gap = max(2, h // 4)  # room under each tile for its label
    width = 1.3 * columns  # inches; the height follows the mosaic's aspect, plus the title
    height = width * rows * (h + gap) / (columns * (w + gap)) + 0.45
    figure = _figure(figsize=(width, height))
    ax = figure.add_axes((0.01, 0.01, 0.98, 0.98 - 0.45 / height))
    if n:
        ax.imshow(mosaic(images, columns, gap), cmap="gray_r", interpolation="nearest")
        for i in range(n):  # one label per shown tile (a few dozen), not per sample
            r, c = divmod(i, columns)
            ax.text(c * (w + gap) + w / 2, r * (h + gap) + h + 0.3, f"{true[i]} -> {predicted[i]}",
                    ha="center", va="top", fontsize=8, color="firebrick")
    else:
        ax.text(0.5, 0.5, "no misclassified samples", ha="center", va="center")
    ax.set_axis_off()
    ax.set_title(f"misclassified (true -> predicted), first {n}")
    return _png(figure)


def plot_weights(weights: np.ndarray, shape: tuple[int, int], columns: int = 8) -> bytes:
    """First-layer weights (d, units) as one (h, w) image per unit (at most 64 units)."""
    units = min(weights.shape[1], 64)
    tiles = weights[:, :units].T.reshape(units, *shape)  # (units, h, w)
    rows = math.ceil(units / columns)
    figure = _figure(figsize=(1.2 * columns, 1.2 * rows + 0.5))
    ax = figure.add_axes((0.01, 0.01, 0.98, 0.98 - 0.4 / (1.2 * rows + 0.5)))
    ax.imshow(mosaic(tiles, columns, symmetric=True), cmap="coolwarm", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(f"first-layer weights, {units} of {weights.shape[1]} units "
                 f"(red +, blue -, each scaled on its own)")
    return _png(figure)


def plot_augmentations(originals: np.ndarray, distorted: np.ndarray, title: str) -> bytes:
    """Originals (m, h, w) in the first column, their distortions (m, c, h, w) beside them."""
    m, c, h, w = distorted.shape
    tiles = np.concatenate([originals[:, None], distorted], axis=1)  # (m, 1 + c, h, w)
    figure = _figure(figsize=(1.0 * (1 + c), 1.0 * m + 0.6))
    ax = figure.add_axes((0.01, 0.01, 0.98, 0.98 - 0.6 / (1.0 * m + 0.6)))
    ax.imshow(mosaic(tiles.reshape(-1, h, w), 1 + c), cmap="gray_r", interpolation="nearest")
    ax.axvline(w + 0.5, color="firebrick", linewidth=1)  # originals | distortions
    ax.set_axis_off()
    ax.set_title(title, fontsize=9)
    return _png(figure)


def augmentation_examples(augmentation, x: np.ndarray, normalizer=None, count: int = 8,
                          draws: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """The first ``count`` samples of ``x`` (n, d) as pixel images (m, h, w), and ``draws``
    distortions of each (m, draws, h, w), drawn in one batch from the recipe's generator for
    draw 0 (the normaliser undone, so that they look as the augment stage saw them)."""
    originals = augmentation.pixels(x[:count], normalizer)  # (m, h, w)
    m, h, w = originals.shape
    stacked = np.concatenate([originals] * draws)  # (draws * m, h, w), copy-major
    distorted = augmentation.distortion.apply(stacked, augmentation.rng(0))
    distorted = distorted.reshape(draws, m, h, w).transpose(1, 0, 2, 3)  # (m, draws, h, w)
    return originals.astype(np.float64), distorted.astype(np.float64)


def image_shape(data: Dataset, features: int) -> tuple[int, int] | None:
    """(h, w) of one sample as an image: the dataset's sample shape, else a square, else None."""
    shape = data.sample_shape
    if shape is not None and len(shape) == 2 and shape[0] * shape[1] == features:
        return int(shape[0]), int(shape[1])
    side = math.isqrt(features)
    return (side, side) if side * side == features else None


class PlotsStage(StageSpec):
    """Draw the run's pictures: learning curves, per-layer diagnostics, confusion matrix,
    misclassified images, first-layer weights."""

    kind: Literal["plots"] = "plots"
    uses_seed = False  # deterministic: the first misclassified samples in split order
    split: str = Field(default="test", description="The split whose mistakes are shown.")
    misclassified: PositiveInt = Field(default=32, description="How many mistakes to show.")

    inputs = ("data", "model", "history", "metrics")
    optional_inputs = ("augmentation", "normalizer")  # augmentations.png, in pixel space
    outputs = ("plots",)

    def run(self, inputs: Mapping[str, Any], context: StageContext) -> dict[str, Any]:
        """Return ``{"plots": Plots}`` with the four figures (the image ones when the samples
        have an image shape)."""
        data: Dataset = inputs["data"]
        model, metrics = inputs["model"], inputs["metrics"]
        names = [metrics.name_of(k) for k in range(metrics.confusion.shape[0])]
        history = inputs["history"].to_json()
        images = {
            "curves.png": plot_curves(history),
            "confusion.png": plot_confusion(
                metrics.confusion, names,
                f"confusion matrix, {metrics.split} (accuracy {metrics.accuracy:.4f})"),
        }
        diagnostics = plot_diagnostics(history)
        if diagnostics is not None:
            images["diagnostics.png"] = diagnostics
        part = data.split(self.split)
        x = part.x.reshape(len(part), -1)  # (n, d)
        shape = image_shape(data, x.shape[1])
        if shape is None:
            context.progress.log(f"plots: samples of {x.shape[1]} features are not images; "
                                 "no image plots")
            return {"plots": Plots(images)}
        y = part.y.argmax(axis=1) if part.y.ndim == 2 else part.y.astype(np.int64)  # (n,)
        predicted = model.predict(x)  # (n,) one batched pass
        wrong = np.flatnonzero(predicted != y)[:self.misclassified]  # (m,) first mistakes
        images["misclassified.png"] = plot_misclassified(
            x[wrong].reshape(-1, *shape).astype(np.float64),
            [names[t] for t in y[wrong]], [names[p] for p in predicted[wrong]])
        weights = getattr(model, "W", [None])[0]  # the first dense layer's (fan_in, units)
        if weights is not None and weights.shape[0] == x.shape[1]:
            images["weights.png"] = plot_weights(np.asarray(weights, dtype=np.float64), shape)
        else:
            context.progress.log("plots: the first dense layer does not read the pixels; "
                                 "no weights plot")
        augmentation = inputs.get("augmentation")
        if augmentation is not None:  # the train split's first rows are originals
            train = data.split("train")
            originals, distorted = augmentation_examples(
                augmentation, train.x.reshape(len(train), -1), inputs.get("normalizer"))
            mode = "fresh every epoch" if augmentation.fresh else "made once"
            images["augmentations.png"] = plot_augmentations(
                originals, distorted, f"training images (left) and distortions "
                                      f"({augmentation.copies} per image, {mode})")
        return {"plots": Plots(images)}
