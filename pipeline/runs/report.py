"""``nnpipe report RUN``: one self-contained HTML page of a run directory.

The runner also writes it (``report.html``) into every run directory that has plots, so a run of
a pipeline with the ``plots`` stage leaves one without an extra command.

The page holds the run's settings (the resolved ``pipeline.yaml``), its metrics (overall and per
class), its per-epoch history and every ``plots/*.png`` embedded as a base64 data URI. It needs
no server and loads nothing from elsewhere: a browser opens the file as it is. All text from the
run is escaped.
"""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path
from typing import Any

from pipeline.files import write_text
from pipeline.io.leftovers import remove_abandoned
from pipeline.io.outputs import REPORT, REPORT_SIGNATURE, checked_out
from pipeline.runs.rundirs import RunInfo, load_run, scalar_keys, show
from pipeline.tables import html_table
from pipeline.userfiles import MAX_RUN_FILE_BYTES, read_text

#: What the runner writes into a run directory that has plots (``plots/*.png``).
REPORT_NAME = "report.html"

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { padding: .25em .8em; border-bottom: 1px solid #eee; text-align: right; }
th:first-child, td:first-child { text-align: left; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; }
figure { margin: 1em 0; } img { max-width: 100%; border: 1px solid #eee; }
"""


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    return html_table(headers, rows, cell=show)


def _plots(run: RunInfo) -> str:
    figures = []
    for path in sorted((run.path / "plots").glob("*.png")):
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        figures.append(f'<figure><img alt="{escape(path.stem)}" src="data:image/png;base64,{data}">'
                       f"<figcaption>{escape(path.name)}</figcaption></figure>")
    return "\n".join(figures) or "<p>No plots in this run.</p>"


def render(run: RunInfo, name: str | None = None) -> str:
    """The HTML page of ``run`` as one string, titled with ``name`` (default: the folder's)."""
    m = run.metrics
    overview = [["created", run.created], ["pipeline", run.manifest.get("pipeline")],
                ["command", run.manifest.get("command")], ["time", f"{run.seconds:.1f}s"],
                *([name, version] for name, version in run.manifest.get("versions", {}).items())]
    stages = [[f"stages[{s.get('index')}] {s.get('id')}", s.get("kind"), s.get("status"),
               f"{s.get('seconds', 0.0):.2f}s"] for s in run.manifest.get("stages", [])]
    metrics = _table(["metric", "value"], [[k, m[k]] for k in scalar_keys([m])]) \
        if m else "<p>No metrics.json.</p>"
    per_class = _table(["class", "precision", "recall", "F1", "support"],
                       [[c.get("name"), c.get("precision"), c.get("recall"), c.get("f1"),
                         c.get("support")] for c in m.get("per_class", [])]) if m else ""
    columns = scalar_keys(run.history)  # epoch, the stage's per-epoch values, lr, seconds
    history = _table([c.replace("_", " ") for c in columns],
                     [[e.get(c) for c in columns] for e in run.history]) \
        if run.history else "<p>No history.json.</p>"
    settings = (run.path / "pipeline.yaml")
    settings_text = (read_text(settings, "run directory file", MAX_RUN_FILE_BYTES)
                     if settings.is_file() else "(no pipeline.yaml)")
    title = f"nnpipe run {name or run.name}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">{REPORT_SIGNATURE.decode()}<title>{escape(title)}</title>
<style>{STYLE}</style></head><body>
<h1>{escape(title)}</h1>
{_table(["", ""], overview)}
<h2>Metrics</h2>
{metrics}
{per_class}
<h2>Plots</h2>
{_plots(run)}
<h2>Training history</h2>
{history}
<h2>Stages</h2>
{_table(["stage", "kind", "status", "time"], stages)}
<h2>Settings</h2>
<pre>{escape(settings_text)}</pre>
</body></html>
"""


def write_report(run_dir: Path, out: Path | None = None, name: str | None = None,
                 checked: bool = True, spec: dict | None = None) -> Path:
    """Write the page of the run directory ``run_dir`` to ``out`` (default ``run_dir/report.html``)
    atomically; return where. With ``checked`` the target goes through the output checks (never
    a file nnpipe did not write); the runner passes False for the page it writes into a run
    directory it is still building (a temporary folder), with ``name`` its final name, and the
    resolved pipeline it just wrote as ``spec`` (``load_run``)."""
    info = load_run(run_dir, spec)
    if not checked:
        target = Path(run_dir) / REPORT_NAME
    else:
        target = checked_out(out, REPORT, lambda: info.path / REPORT_NAME)
        remove_abandoned(target.parent)  # what a killed report left beside it
    write_text(target, render(info, name))
    return target

