"""The Python API (``pipeline.run``, ``pipeline.load_run``, ``Run``): every README example of it
runs as written, its predictions agree with the evaluator, and it shows itself in Jupyter."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pipeline
from pipeline.api import curves_svg, default_progress
from pipeline.cli.console import PlainProgress
from pipeline.errors import UserError
from plugins.idx import read_idx

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
MNIST = ROOT / "plugins" / "data" / "mnist-10k"
FAST = {"mlp_train.epochs": 1, "mlp_train.hidden": [32], "augment.copies": 1}


def readme_api_blocks() -> list[str]:
    """The ```python blocks of the README's "The Python API" section."""
    section = README.read_text().split("## The Python API", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_every_readme_example_of_the_api_runs_as_written(tmp_path, monkeypatch, capsys):
    # The examples use paths relative to the repository: run them in a folder that links to
    # its examples/ and plugins/, so their runs/ lands in tmp_path, not in the checkout.
    for name in ("examples", "plugins"):
        (tmp_path / name).symlink_to(ROOT / name)
    monkeypatch.chdir(tmp_path)
    blocks = readme_api_blocks()
    assert blocks, "the README has no Python API example"
    for block in blocks:
        namespace: dict = {}
        exec(compile(block, str(README), "exec"), namespace)
    result, prediction = namespace["result"], namespace["prediction"]
    assert (tmp_path / "runs" / "api-demo" / "metrics.json").is_file()
    assert len(result.history) == 2 and 0.5 < result.metrics["accuracy"] <= 1
    assert prediction.probabilities.shape == (5, 10)
    assert capsys.readouterr().out.strip().splitlines()[-1] == "True"


@pytest.fixture(scope="module")
def fast_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("api") / "run"
    return pipeline.run(ROOT / "examples" / "mnist.yaml", overrides=FAST, out=out, cache=False,
                        quiet=True)


def test_predict_on_arrays_reproduces_the_evaluators_accuracy(fast_run):
    images = read_idx(MNIST / "t10k-images-idx3-ubyte.gz")  # (2000, 28, 28) raw pixels
    labels = read_idx(MNIST / "t10k-labels-idx1-ubyte.gz")  # (2000,)
    prediction = fast_run.predict(images, labels=labels)
    assert prediction.accuracy == pytest.approx(fast_run.metrics["accuracy"], abs=1e-12)
    np.testing.assert_allclose(prediction.probabilities.sum(axis=1), 1.0, atol=1e-5)
    # flat rows (n, 784) and a path give the same probabilities as (n, 28, 28)
    flat = fast_run.predict(images.reshape(len(images), -1)[:50])
    by_path = fast_run.predict(MNIST / "t10k-images-idx3-ubyte.gz")
    np.testing.assert_array_equal(flat.probabilities, prediction.probabilities[:50])
    np.testing.assert_array_equal(by_path.probabilities, prediction.probabilities)


def test_load_run_reads_back_what_the_run_wrote(fast_run):
    again = pipeline.load_run(fast_run.path)
    assert again.metrics == json.loads((fast_run.path / "metrics.json").read_text())
    assert again.history == fast_run.history and len(again.history) == 1
    assert again.spec["name"] == "mnist-mlp" and again.artifacts == {}
    assert "model" in fast_run.artifacts


def test_overrides_as_a_mapping_or_as_strings_are_the_same(fast_run, tmp_path):
    as_strings = [f"{key}={json.dumps(value)}" for key, value in FAST.items()]
    other = pipeline.run(ROOT / "examples" / "mnist.yaml", overrides=as_strings,
                         out=tmp_path / "run", quiet=True)
    assert other.spec == fast_run.spec
    assert other.metrics["accuracy"] == fast_run.metrics["accuracy"]


def test_the_jupyter_view_shows_metrics_and_inline_curves(fast_run):
    page = fast_run._repr_html_()
    assert f"{fast_run.metrics['accuracy']:.4f}" in page
    assert 'src="data:image/png;base64,' in page
    assert "http://" not in page and "https://" not in page
    assert "accuracy" in repr(fast_run)
    page = fast_run.report().read_text()  # RUN/report.html, as nnpipe report writes it
    assert f"nnpipe run {fast_run.name}" in page and "data:image/png;base64," in page


def test_curves_svg_draws_one_line_per_series_scaled_to_the_box():
    history = [{"train_loss": 2.0, "val_loss": 1.0, "train_accuracy": 0.5, "val_accuracy": None},
               {"train_loss": 1.0, "val_loss": 0.5, "train_accuracy": 0.9, "val_accuracy": None}]
    svg = curves_svg(history, width=120, height=100)
    lines = re.findall(r'points="([^"]+)"', svg)
    assert len(lines) == 3  # val_accuracy has no values
    # each series spans its own range: first point at the bottom or top of the plot area
    first = [tuple(map(float, p.split(","))) for p in lines[0].split()]
    assert first == [(10.0, 20.0), (110.0, 75.0)]  # loss falls from the top (y=20) to y=75
    assert curves_svg(history[:1]) == ""


def test_bad_input_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        pipeline.load_run(tmp_path / "nowhere")
    with pytest.raises(UserError, match="mlp_train.epochs"):
        pipeline.run(ROOT / "examples" / "mnist.yaml", overrides={"mlp_train.epochs": -1},
                     out=tmp_path / "run", quiet=True)


def test_predict_refuses_images_of_the_wrong_size(fast_run):
    with pytest.raises(UserError, match="expects 784 values"):
        fast_run.predict(np.zeros((3, 10, 10)))


def test_progress_is_plain_lines_outside_a_terminal_or_notebook():
    assert isinstance(default_progress(), PlainProgress)  # pytest captures stdout: no terminal
    assert default_progress(quiet=True).quiet


def test_import_pipeline_stays_cheap():
    code = ("import sys, pipeline; print(sorted(m for m in ('pipeline.api', 'numpy', 'pydantic')"
            " if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    assert callable(pipeline.run) and pipeline.Run.__name__ == "Run"


def test_curves_svg_legend_wraps_inside_the_width_with_a_colour_per_series():
    keys = [f"series_{i}" for i in range(7)]
    history = [{k: float(e + i) for i, k in enumerate(keys)} for e in range(3)]
    svg = curves_svg(history, width=240, height=100)  # room for 2 legend entries a row
    legend = re.findall(r'<text x="([\d.]+)" y="([\d.]+)" fill="([^"]+)"', svg)
    assert len(legend) == 7
    assert all(float(x) + 110 <= 240 for x, _, _ in legend)  # no entry starts past the edge
    assert sorted({float(y) for _, y, _ in legend}) == [94.0, 108.0, 122.0, 136.0]  # 4 rows
    assert 'height="142"' in svg  # 100 + 3 extra rows of 14
    assert len({colour for _, _, colour in legend}) == 7
