"""``report.html`` of a tune directory: one self-contained page, like a run's (``nnpipe report``).

The study's settings, the best trial, the seed comparison, every trial and the plots embedded as
base64 PNGs. It loads nothing from elsewhere; all text from the study is escaped.
"""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path
from typing import Any

from pipeline.runs.report import STYLE
from pipeline.runs.rundirs import show
from pipeline.tables import html_table
from pipeline.tune.results import cells, headers


def _figures(paths: list[Path], notes: list[str]) -> str:
    figures = []
    for path in paths:
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        figures.append(f'<figure><img alt="{escape(path.stem)}" src="data:image/png;base64,'
                       f'{data}"><figcaption>{escape(path.name)}</figcaption></figure>')
    figures.extend(f"<p>{escape(note)}</p>" for note in notes)
    return "\n".join(figures) or "<p>No plots.</p>"


def render(info: dict[str, Any], rows: list[dict], params, best: dict | None,
           sentence: str | None, plots: list[Path], notes: list[str]) -> str:
    """The HTML page of a study as one string."""
    metric = info["metric"]
    overview = [[key, info[key]] for key in ("pipeline", "study", "storage", "metric", "mode",
                                              "sampler", "pruner", "pruner_warmup", "trials",
                                              "timeout", "deadline", "seeds", "backend",
                                              "jobs", "seconds") if info.get(key) is not None]
    best_html = ("<p>No trial completed.</p>" if best is None else html_table(
        ["best trial", metric, "parameters"],
        [[best["number"], best["value"], " ".join(best["overrides"])]], cell=show))
    trials = html_table(headers(params, metric), [cells(r, params) for r in rows], cell=show)
    title = f"nnpipe tune {info.get('study', '')}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>{STYLE}</style></head><body>
<h1>{escape(title)}</h1>
{html_table(["", ""], overview, cell=show)}
<h2>Best</h2>
{best_html}
{f"<p>{escape(sentence)}</p>" if sentence else ""}
<h2>Plots</h2>
{_figures(plots, notes)}
<h2>Trials</h2>
{trials}
</body></html>
"""
