"""The Python API: run a pipeline file and use its results from a script or a notebook.

    import pipeline
    result = pipeline.run("examples/mnist.yaml", overrides={"mlp_train.epochs": 2})
    result.metrics["accuracy"]          # what metrics.json holds
    result.history[-1]["val_loss"]      # what history.json holds, one dict per epoch
    result.predict(images).labels       # (n,) classes of raw images (n, 28, 28)
    again = pipeline.load_run(result.path)

``run`` does what ``nnpipe run`` does (the same validation, cache and run directory); a ``Run``
reads only the files of its run directory, so ``load_run`` gives the same object for any run,
made by the API or the command line. In Jupyter a ``Run`` shows itself as its metrics and its
learning curves, and progress is a live bar; elsewhere progress is plain lines.
"""

from __future__ import annotations

import base64
import itertools
import json
from html import escape
from pathlib import Path
from typing import Any, Iterable, Mapping

from pipeline.io import settings
from pipeline.runs.rundirs import RunInfo, load_run as _read_run_dir, scalar_keys, show



class Run:
    """One run directory, read back: its metrics, history, settings and files.

    Attributes:
        path: the run directory.
        metrics: ``metrics.json`` as a dict (empty when the run has none).
        history: ``history.json``, one dict per epoch (empty when the run has none).
        spec: the resolved pipeline (``pipeline.yaml``) as a dict.
        manifest: ``manifest.json`` as a dict (versions, stages, timings, files).
        artifacts: the in-memory artifacts by name when the run was made by ``pipeline.run`` in
            this process (``{}`` after ``load_run``).
    """

    def __init__(self, info: RunInfo, artifacts: Mapping[str, Any] | None = None):
        self.path: Path = info.path
        self.metrics: dict[str, Any] = info.metrics
        self.history: list[dict[str, Any]] = info.history
        self.spec: dict[str, Any] = info.spec
        self.manifest: dict[str, Any] = info.manifest
        self.artifacts: dict[str, Any] = dict(artifacts or {})

    @property
    def name(self) -> str:
        """The run directory's name."""
        return self.path.name

    def predict(self, images: Any, top: int = 3, labels: Any = None,
                predictor: str | None = None) -> Any:
        """Classify ``images`` with this run's model, replaying the run's fitted transforms.

        Args:
            images: raw pixel values as an array (n, h, w) or (n, h*w) in 0..255, as the IDX files
                hold them; or the path of an IDX file, a PNG or a folder of PNGs.
            top: how many classes to rank per sample.
            labels: true labels (an array (n,) or an IDX file): the result's ``accuracy`` is set.
            predictor: the ``nnpipe.predictors`` entry point to use (by default the one
                installed; several installed need a name).

        Returns:
            The predictor's result; the built-in one has ``probabilities`` (n, k), ``labels`` (n,),
            ``top`` (n, top) and ``accuracy``.
        """
        from pipeline.registry import default_registry

        import numpy as np

        registry = default_registry()
        function = registry.load("predictors",
                                 predictor or registry.only("predictors", "predictor"))
        if not isinstance(images, (str, Path)):
            images = np.asarray(images)  # (n, h, w) or (n, d) raw pixels
        if labels is not None and not isinstance(labels, (str, Path)):
            labels = np.asarray(labels)  # (n,)
        return function(self.path, images, top=top, labels=labels)

    def report(self, out: Path | str | None = None) -> Path:
        """Write the self-contained HTML page of this run (``nnpipe report``); return its path."""
        from pipeline.runs.report import write_report

        return write_report(self.path, Path(out) if out is not None else None)

    def __repr__(self) -> str:
        figures = ", ".join(f"{key} {show(self.metrics[key])}"
                            for key in scalar_keys([self.metrics]))
        return f"Run({str(self.path)!r}{', ' if figures else ''}{figures})"

    def _repr_html_(self) -> str:
        """Jupyter's view: the headline metrics and the learning curves, all inline."""
        rows = "".join(f"<tr><th>{escape(key)}</th><td>{escape(show(self.metrics[key]))}</td></tr>"
                       for key in scalar_keys([self.metrics]))
        table = f"<table>{rows}</table>" if rows else "<p>No metrics.json.</p>"
        return (f"<div><strong>{escape(self.name)}</strong> "
                f"<code>{escape(str(self.path))}</code>{table}{self._curves_html()}</div>")

    def _curves_html(self) -> str:
        """The run's ``plots/curves.png`` as a data URI, else an SVG drawn from its history."""
        png = self.path / "plots" / "curves.png"
        if png.is_file():
            data = base64.b64encode(png.read_bytes()).decode("ascii")
            return f'<img alt="learning curves" src="data:image/png;base64,{data}">'
        return curves_svg(self.history)


#: Stroke colours of ``curves_svg``'s series, in turn (matplotlib's ten "tab10" colours).
CURVE_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                 "#7f7f7f", "#bcbd22", "#17becf")
#: Horizontal room of one legend entry and the height of one legend row, in pixels.
LEGEND_STEP, LEGEND_ROW = 110, 14
#: History entries that are bookkeeping, not a curve worth drawing.
NOT_CURVES = {"epoch", "lr", "lr_end", "seconds"}


def curves_svg(history: list[dict[str, Any]], width: int = 480, height: int = 160) -> str:
    """Every per-epoch series of a history as one small inline SVG (each scaled to its own
    range), or an empty string without at least two epochs. The legend wraps into as many rows
    below the plot as the series need (the picture grows by a row each, never past its width)."""
    if len(history) < 2:
        return ""
    curves = [key for key in scalar_keys(history) if key not in NOT_CURVES]
    per_row = max(1, (width - 8) // LEGEND_STEP)
    lines, legend = [], []
    for key, colour in zip(curves, itertools.cycle(CURVE_COLOURS)):
        values = [e.get(key) for e in history]
        points = [(i, float(v)) for i, v in enumerate(values) if isinstance(v, (int, float))]
        if len(points) < 2:
            continue
        low, high = min(v for _, v in points), max(v for _, v in points)
        span = (high - low) or 1.0
        coords = " ".join(f"{10 + i * (width - 20) / (len(history) - 1):.1f},"
                          f"{height - 25 - (v - low) / span * (height - 45):.1f}" for i, v in points)
        lines.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{coords}"/>')
        row, column = divmod(len(legend), per_row)
        legend.append(f'<text x="{8 + column * LEGEND_STEP}" y="{height - 6 + row * LEGEND_ROW}" '
                      f'fill="{colour}" font-size="11">{escape(key)}</text>')
    rows = max(1, -(-len(legend) // per_row))  # ceil
    return (f'<svg width="{width}" height="{height + (rows - 1) * LEGEND_ROW}">'
            f'{"".join(lines + legend)}</svg>')


def _override_strings(overrides: Mapping[str, Any] | Iterable[str] | None) -> list[str]:
    """``{"mlp_train.epochs": 2}`` or ``["mlp_train.epochs=2"]`` -> ``["mlp_train.epochs=2"]``
    (a mapping's values are written as JSON, which the override parser reads as YAML)."""
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        return [f"{path}={json.dumps(value)}" for path, value in overrides.items()]
    if isinstance(overrides, str):
        return [overrides]
    return [str(item) for item in overrides]


def default_progress(quiet: bool = False):
    """Live rich bars in Jupyter or on a terminal, plain lines elsewhere, nothing when quiet."""
    from rich.console import Console

    from pipeline.cli.console import PlainProgress
    from pipeline.cli.console_rich import RichProgress

    if quiet:
        return PlainProgress(quiet=True)
    console = Console()
    if console.is_jupyter:
        # each redraw is a widget message the notebook front end must handle: 2 a second is
        # live enough, and costs a few percent of an epoch instead of doubling it
        return RichProgress(console, refresh_per_second=2)
    if console.is_terminal:
        return RichProgress(console)
    return PlainProgress()


def run(path: Path | str, overrides: Mapping[str, Any] | Iterable[str] | None = None,
        out: Path | str | None = None, *, cache: bool = True, cache_dir: Path | str | None = None,
        data_dir: Path | str | None = None, from_stage: str | None = None, quiet: bool = False,
        progress: Any = None) -> Run:
    """Run a pipeline file as ``nnpipe run`` does and return its ``Run``.

    Args:
        path: the pipeline file (YAML, TOML or JSON).
        overrides: fields to change, ``{"mlp_train.epochs": 2}`` or ``["mlp_train.epochs=2"]``.
        out: the run directory (default ``runs/<name>-<time>`` under the working directory).
        cache: use the stage cache (False: run every stage, store nothing, like ``--no-cache``).
        cache_dir: the cache folder (default ``NNPIPE_CACHE``, else ``~/.cache/nnpipe``).
        data_dir: where registered datasets are looked for (default ``NNPIPE_DATA``).
        from_stage: rerun this stage (id, kind or index) and every one after it (``--from``).
        quiet: print nothing while running.
        progress: a ``pipeline.progress.Progress`` listener instead of the default one.

    Raises:
        UserError: bad input (the file, a field, data), with the one-line message the CLI prints.
        RunError: a failure while running (a stage failed, training diverged).
    """
    from pipeline.engine.caching import cache_options
    from pipeline.engine.config import load_pipeline
    from pipeline.engine.runner import Runner

    pipeline = load_pipeline(Path(path), _override_strings(overrides))
    listener = progress if progress is not None else default_progress(quiet)
    on_stage = getattr(listener, "stage", None)
    options = cache_options(pipeline, Path(cache_dir) if cache_dir is not None else None,
                            not cache, from_stage)
    runner = Runner(data_dir=settings.data_dir(Path(data_dir) if data_dir else None),
                    progress=listener, on_stage=on_stage if callable(on_stage) else None, **options)
    result = runner.run(pipeline, out=Path(out) if out is not None else None)
    return Run(_read_run_dir(result.run_dir), result.artifacts)


def load_run(run_dir: Path | str) -> Run:
    """The ``Run`` of an existing run directory (one with a ``manifest.json``).

    Raises:
        UserError: ``run_dir`` does not exist or is not a run directory.
    """
    return Run(_read_run_dir(run_dir))
