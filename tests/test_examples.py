"""Every pipeline file in examples/ is run by the suite (a fast variant where the full one is slow)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

#: example file -> (overrides that keep it fast in the suite, lowest and highest test accuracy
#: accepted). Every file in examples/ must be listed here.
EXAMPLES_RUN = {
    # The full recipe (augmented MNIST sample): the acceptance bound itself.
    "mnist.yaml": ([], 0.97, 1.0),
    # The best MNIST-sample recipe (fresh elastic distortions), two epochs of a narrow network:
    # proves the fresh distortions train (the full recipe's figures are in the README).
    "mnist-best.yaml": (["mlp_train.hidden=[64]", "mlp_train.epochs=2"], 0.90, 1.0),
    # One epoch of a small network on the full Fashion-MNIST: proves the data, the recipe's
    # stages and learning (the full recipe reaches >= 0.90; see benchmarks/README.md).
    "fashion-mnist.yaml": (["mlp_train.layers=[{kind: dense, units: 64}, {kind: batch_norm}, relu]",
                           "mlp_train.epochs=1"], 0.78, 1.0),
    # The notebook's uniform(-0.005, 0.005) init on 7,200 digits stays near chance after 2 epochs
    # (see the example's comments).
    "seed-notebook.yaml": ([], 0.0, 0.3),
    # A layer stack with batch norm, dropout and layer norm (0.9745 after its 10 epochs).
    "layers.yaml": (["mlp_train.epochs=2"], 0.95, 1.0),
    # swish, focal loss and shift_augment from examples/plugins/nnpipe-extras (installed by make).
    "with-plugin.yaml": (["mlp_train.epochs=2", "mlp_train.hidden=[64]"], 0.85, 1.0),
    # the pca stage of nnpipe-extras (a fitted transform) after the normaliser; 10 epochs: 0.94
    "pca.yaml": (["mlp_train.epochs=3"], 0.88, 1.0),
}


def run_example(name: str, tmp_path: Path, *overrides: str) -> dict:
    """Run an example through the CLI; return its metrics.json."""
    out = tmp_path / "run"
    args = ["run", str(EXAMPLES / name), "--out", str(out), "--quiet"]
    for override in overrides:
        args += ["--set", override]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads((out / "metrics.json").read_text())


def test_every_example_is_listed():
    assert sorted(p.name for p in EXAMPLES.glob("*.yaml")) == sorted(EXAMPLES_RUN)


def needs_data(name: str) -> None:
    """Skip an example whose dataset is not installed (Fashion-MNIST needs NNPIPE_DATA, which
    ``make test`` sets)."""
    if "fashion" in name:
        places = [Path(os.environ.get("NNPIPE_DATA", "/nonexistent")) / "fashion-mnist",
                  Path("/usr/share/datasets/fashion-mnist")]
        if not any(place.is_dir() for place in places):
            pytest.skip("Fashion-MNIST not found (set NNPIPE_DATA)")


@pytest.mark.parametrize("name", sorted(EXAMPLES_RUN))
def test_example_runs(name, tmp_path):
    needs_data(name)
    overrides, lowest, highest = EXAMPLES_RUN[name]
    accuracy = run_example(name, tmp_path, *overrides)["accuracy"]
    assert lowest <= accuracy <= highest


def test_seed_notebook_learns_with_he_init(tmp_path):
    he = run_example("seed-notebook.yaml", tmp_path, "mlp_train.init=he_normal")
    assert he["accuracy"] >= 0.90
