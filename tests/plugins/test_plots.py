"""The plots stage: image mosaics, labelled confusion matrices, and pictures only where samples are images."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import numpy as np  # noqa: E402

from pipeline.artifacts import Dataset, Split  # noqa: E402
from pipeline.progress import ListProgress  # noqa: E402
from plugins.evaluate import evaluate  # noqa: E402
from plugins.mlp.model import MLP  # noqa: E402
from plugins.mlp.trainer import Epoch, History  # noqa: E402
from plugins.plots import PlotsStage, image_shape, mosaic, plot_confusion  # noqa: E402

FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def picture(png: bytes) -> np.ndarray:
    return mpimg.imread(io.BytesIO(png), format="png")


def test_mosaic_lays_tiles_out_row_by_row_each_scaled_on_its_own():
    tiles = np.stack([np.full((2, 3), 5.0), np.arange(6.0).reshape(2, 3), -np.arange(6.0).reshape(2, 3)])
    image = mosaic(tiles, columns=2, gap=1)  # 2 rows of 2 cells of (3, 4) minus the last gap
    assert image.shape == (5, 7)
    np.testing.assert_allclose(image[:2, :3], 0.0)  # a constant tile does not divide by zero
    np.testing.assert_allclose(image[:2, 4:7], np.arange(6.0).reshape(2, 3) / 5)
    assert np.isnan(image[2]).all() and np.isnan(image[:, 3]).all()  # the gaps
    assert np.isnan(image[3:, 4:]).all()  # the missing fourth tile
    sym = mosaic(np.array([[[-2.0, 1.0]]]), columns=1, symmetric=True)
    np.testing.assert_allclose(sym, [[0.0, 0.75]])  # zero at 0.5 whatever the range


def test_image_shape_from_the_dataset_else_a_square():
    data = Dataset({"test": Split(np.zeros((1, 6)), np.zeros(1))}, sample_shape=(2, 3))
    assert image_shape(data, 6) == (2, 3)
    assert image_shape(Dataset({}), 16) == (4, 4)
    assert image_shape(Dataset({}), 10) is None


def test_confusion_heatmap_renders_long_class_names():
    confusion = np.diag(np.arange(10, 20))
    png = plot_confusion(confusion, list(FASHION), "fashion")
    pixels = picture(png)
    assert pixels.shape[0] > 400 and pixels[..., :3].std() > 0.05


def _run_stage(x: np.ndarray, y: np.ndarray, sample_shape=None, **extra):
    data = Dataset({"test": Split(x, y), "train": Split(x, y)}, sample_shape=sample_shape)
    model = MLP([x.shape[1], 5, 3], rng=np.random.default_rng(0))
    history = History([Epoch(1, 1.0, 0.5, 1.1, 0.4, 0.1, 0.2), Epoch(2, 0.8, 0.6, 0.9, 0.5, 0.1, 0.2)])
    metrics = evaluate(model, x, y)
    progress = ListProgress()

    class Context:
        pass

    context = Context()
    context.progress = progress
    out = PlotsStage().run({"data": data, "model": model, "history": history, "metrics": metrics,
                            **extra}, context)
    return out["plots"], progress


def test_stage_draws_four_plots_for_images_and_saves_them(tmp_path):
    rng = np.random.default_rng(0)
    plots, _ = _run_stage(rng.random((40, 16)), rng.integers(0, 3, 40), sample_shape=(4, 4))
    assert sorted(plots.images) == ["confusion.png", "curves.png", "misclassified.png", "weights.png"]
    assert sorted(plots.save(tmp_path)) == sorted(f"plots/{n}" for n in plots.images)
    for name in plots.images:
        assert picture((tmp_path / "plots" / name).read_bytes())[..., :3].std() > 0.02, name


def test_stage_skips_image_plots_when_samples_are_not_images():
    rng = np.random.default_rng(0)
    plots, progress = _run_stage(rng.random((40, 7)), rng.integers(0, 3, 40))
    assert sorted(plots.images) == ["confusion.png", "curves.png"]
    assert any("not images" in line for line in progress.lines)


def test_an_augment_recipe_adds_a_picture_of_originals_and_distortions(tmp_path):
    from plugins.augment import Augmentation, Distortion
    from plugins.normalize import fit_normalizer
    from plugins.plots import augmentation_examples

    rng = np.random.default_rng(0)
    raw = np.zeros((40, 8, 8), dtype=np.uint8)
    raw[:, 2:6, 3:5] = rng.integers(100, 256, size=(40, 4, 2))  # a bar of ink in the middle
    raw = raw.reshape(40, 64)
    normalizer = fit_normalizer(raw, "standardize", "float32")
    recipe = Augmentation(Distortion(max_shift=1, rotate=20, elastic=(5.0, 2.0)), 2, True, 0,
                          (8, 8))
    x = normalizer.apply(raw)
    originals, distorted = augmentation_examples(recipe, x, normalizer, count=3, draws=4)
    # shown in pixel space: the normaliser undone
    np.testing.assert_allclose(originals, raw[:3].reshape(3, 8, 8), atol=1e-3)
    assert distorted.shape == (3, 4, 8, 8) and distorted.min() >= -1e-3
    assert not np.allclose(distorted[:, 0], distorted[:, 1])  # each draw its own distortion
    plots, _ = _run_stage(x, rng.integers(0, 3, 40), (8, 8), augmentation=recipe,
                          normalizer=normalizer)
    assert "augmentations.png" in plots.images
    pixels = picture(plots.images["augmentations.png"])
    assert pixels.shape[0] > 200 and pixels[..., :3].std() > 0.05
