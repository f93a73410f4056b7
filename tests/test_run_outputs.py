"""What a run of the default pipeline shows and leaves behind: plain output in a pipe whose epoch
lines match history.json, the plots, an HTML report embedding them, and ``runs compare``.

The default pipeline (examples/mnist.yaml, as ``make demo`` runs it) is run once per module,
with fewer epochs, through a real subprocess whose stdout is a pipe.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import pytest  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from pipeline.cli import app  # noqa: E402

DEFAULT = Path(__file__).resolve().parent.parent / "examples" / "mnist.yaml"
# augmentations.png: the default pipeline has an augment stage
PLOTS = ("curves.png", "confusion.png", "misclassified.png", "weights.png", "augmentations.png")
EPOCH_LINE = re.compile(r"^  epoch (\d+)/(\d+)  train loss (\S+) acc (\S+)  val loss (\S+) acc (\S+)  ")


@pytest.fixture(scope="module")
def piped_run(tmp_path_factory):
    """Run ``nnpipe run examples/mnist.yaml`` (3 epochs) with stdout a pipe; (stdout, run dir)."""
    run_dir = tmp_path_factory.mktemp("default") / "run"
    # Colour forced on in the environment: plain mode must not depend on rich's own detection.
    env = {**os.environ, "FORCE_COLOR": "1", "TERM": "xterm-256color"}
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "run", str(DEFAULT), "--set", "mlp_train.epochs=3",
         "--out", str(run_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode(), run_dir


def test_piped_output_has_no_control_characters(piped_run):
    stdout, _ = piped_run
    assert stdout.strip(), "nothing printed"
    control = {c for c in stdout if (ord(c) < 32 and c != "\n") or ord(c) == 127}
    assert not control, f"control characters in piped output: {sorted(map(ord, control))}"
    assert re.search(r"ran  stages\[\d\] mlp_train", stdout)
    assert re.search(r"ran  stages\[\d\] plots", stdout)


def test_epoch_lines_carry_the_numbers_of_history_json(piped_run):
    stdout, run_dir = piped_run
    history = json.loads((run_dir / "history.json").read_text())
    printed = [EPOCH_LINE.match(line) for line in stdout.splitlines()]
    printed = [m for m in printed if m]
    assert len(printed) == len(history) == 3
    for match, epoch in zip(printed, history):
        assert int(match[1]) == epoch["epoch"] and int(match[2]) == 3
        numbers = [float(match[i]) for i in range(3, 7)]
        expected = [epoch[k] for k in ("train_loss", "train_accuracy", "val_loss", "val_accuracy")]
        # printed with 4 decimals: equal to the stored value rounded the same way
        assert numbers == [round(v, 4) for v in expected]


def test_the_plots_are_real_pictures(piped_run):
    _, run_dir = piped_run
    manifest = json.loads((run_dir / "manifest.json").read_text())
    for name in PLOTS:
        path = run_dir / "plots" / name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert f"plots/{name}" in manifest["files"]
        pixels = mpimg.imread(path)  # (h, w, 3 or 4) floats in [0, 1]
        assert pixels.ndim == 3 and pixels.shape[0] >= 300 and pixels.shape[1] >= 400, (name, pixels.shape)
        rgb = pixels[..., :3]
        assert rgb.std() > 0.05, f"{name} looks blank (pixel std {rgb.std():.3f})"
        assert (rgb.min(axis=2) < 0.5).mean() > 0.01, f"{name} has almost no dark or coloured pixels"


class _References(HTMLParser):
    """Every URL an HTML page would make a browser load or follow: attribute values that hold a
    URL, and CSS ``url(...)`` / ``@import`` in style blocks and attributes."""

    URL_ATTRIBUTES = {"src", "href", "srcset", "action", "formaction", "data", "poster",
                      "background", "cite", "manifest", "xlink:href", "ping"}

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name == "srcset" and value:  # "a.png 1x, b.png 2x"
                self.urls.extend(part.split()[0] for part in value.split(",") if part.strip())
            elif name in self.URL_ATTRIBUTES and value:
                self.urls.append(value.strip())
            if name == "style" and value:
                self.handle_data(value)

    def handle_data(self, data):
        self.urls.extend(m.strip("'\" ") for m in re.findall(r"url\(([^)]*)\)", data))
        self.urls.extend(re.findall(r"@import\s+['\"]([^'\"]+)", data))


def external_references(page: str) -> list[str]:
    """The URLs in ``page`` that load or point to anything outside the page itself: all but
    inline ``data:`` URIs and ``#fragment`` links (so ``//host``, any scheme, relative files)."""
    parser = _References()
    parser.feed(page)
    external = [url for url in parser.urls if not url.startswith(("data:", "#"))]
    if re.search(r"https?://", page):
        external.append("an http(s):// address in the text")
    return external


def test_external_references_finds_what_a_browser_would_load():
    assert external_references('<img src="data:image/png;base64,AAAA"><a href="#top">x</a>') == []
    for page in ('<img src="//cdn.example/x.png">', '<img srcset="a.png 1x, //x/b.png 2x">', '<script src="HTTPS://x/y.js"></script>',
                 "<style>body{background:url('ftp://x/y.png')}</style>",
                 '<link rel="stylesheet" href="file:///etc/passwd">', '<img src="plots/a.png">',
                 '<div style="background: url(//x/y)"></div>', "<p>see http://x</p>"):
        assert external_references(page), page


def test_the_run_writes_its_report_loading_nothing_from_elsewhere(piped_run):
    _, run_dir = piped_run
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert "report.html" in manifest["files"]
    page = (run_dir / "report.html").read_text()  # written by the run itself, no extra command
    assert f"nnpipe run {run_dir.name}" in page  # titled with the final name, not the staging one
    assert external_references(page) == []
    for name in PLOTS:
        data = base64.b64encode((run_dir / "plots" / name).read_bytes()).decode()
        assert f"data:image/png;base64,{data}" in page


def test_the_runs_own_page_is_the_one_nnpipe_report_writes_from_its_files(piped_run):
    # The runner hands the page the settings it just wrote instead of parsing pipeline.yaml
    # back: the page must be the one rendered from the run directory's files.
    from pipeline.runs.report import render
    from pipeline.runs.rundirs import load_run

    _, run_dir = piped_run
    assert (run_dir / "report.html").read_text() == render(load_run(run_dir), run_dir.name)


def test_a_run_without_plots_writes_no_report(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", str(DEFAULT), "--set", "mlp_train.epochs=1",
                                      "--set", "mlp_train.hidden=[16]", "--set", "augment.copies=1",
                                      "--set", "stages.7.kind=evaluate", "--out", str(out),
                                      "--quiet", "--no-cache"])
    assert result.exit_code == 0, result.output
    assert not (out / "report.html").exists()


def test_report_embeds_every_plot(piped_run):
    _, run_dir = piped_run
    result = CliRunner().invoke(app, ["report", str(run_dir)])
    assert result.exit_code == 0, result.output
    page = (run_dir / "report.html").read_text()
    for name in PLOTS:
        data = base64.b64encode((run_dir / "plots" / name).read_bytes()).decode()
        assert f"data:image/png;base64,{data}" in page
    assert "http://" not in page and "https://" not in page  # nothing loaded from elsewhere
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert f"{metrics['accuracy']:.4f}" in page


def test_runs_compare_shows_exactly_the_setting_that_differs(piped_run, tmp_path):
    _, first = piped_run
    second = tmp_path / "two-epochs"
    result = CliRunner().invoke(app, ["run", str(DEFAULT), "--set", "mlp_train.epochs=2",
                                      "--out", str(second), "--quiet"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(app, ["runs", "compare", str(first), str(second)])
    assert result.exit_code == 0, result.output
    settings, _, metrics = result.output.partition("\n\n")
    rows = settings.strip().splitlines()[2:]  # under the header and its rule
    assert [row.split() for row in rows] == [["mlp_train.epochs", "3", "2"]]
    accuracy = next(line.split() for line in metrics.splitlines() if line.startswith("accuracy"))
    for run in (first, second):
        value = json.loads((run / "metrics.json").read_text())["accuracy"]
        assert f"{value:.4f}" in accuracy
