"""A sweep's results as text: the terminal table, ``sweep.csv`` and ``best.yaml``."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Iterable

import yaml

from pipeline.engine.config import load_pipeline
from pipeline.files import write_text
from pipeline.sweep.grid import Axis
from pipeline.tables import text_table


def _axis_values(row: dict, axes: list[Axis]) -> list[str]:
    """The row's value of each grid path (blank where it has none)."""
    values = {o.partition("=")[0]: o.partition("=")[2] for o in row["overrides"]}
    return [values.get(axis.path, "") for axis in axes]


def _number(value: float | None, text=lambda v: f"{v:.4f}") -> str:
    return "" if value is None else text(value)


def table(rows: list[dict], metric: str, axes: list[Axis]) -> str:
    """The results as a plain-text table (what the terminal shows), best first."""
    headers = ["#", *[a.path for a in axes], "runs", metric, "±", "status"]
    body = [[str(rank), *_axis_values(row, axes), f"{row['ok']}/{row['runs']}",
             _number(row["mean"]), _number(row["std"]),
             row["status"] + (f": {row['error']}" if row["error"] else "")]
            for rank, row in enumerate(rows, 1)]
    return text_table(headers, body)


def to_csv(rows: list[dict], metric: str, axes: list[Axis]) -> str:
    """The rows as CSV: rank, one column per grid path, runs, ok, mean, std, status, error."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["rank", *[a.path for a in axes], "runs", "ok", f"{metric}_mean",
                     f"{metric}_std", "status", "error"])
    for rank, row in enumerate(rows, 1):
        writer.writerow([rank, *_axis_values(row, axes), row["runs"], row["ok"],
                         _number(row["mean"], repr), _number(row["std"], repr),
                         row["status"], row["error"] or ""])
    return buffer.getvalue()


def write_best(path: Path, file: Path, row: dict, metric: str, fixed: Iterable[str] = (),
               what: str = "a sweep") -> None:
    """The pipeline file with the best configuration's overrides applied, every default resolved;
    ``what`` names the search in the header (``a sweep``, ``a tune study``)."""
    pipeline = load_pipeline(file, [*fixed, *row["overrides"]])
    mean = f"{row['mean']:.4f}" + (f" ± {row['std']:.4f}" if row["runs"] > 1 else "")
    header = (f"# best of {what} of {file}: {metric} {mean}\n"
              f"# overrides: {' '.join([*fixed, *row['overrides']]) or '(none)'}\n")
    write_text(path, header + yaml.safe_dump(pipeline.resolved(), sort_keys=False))
