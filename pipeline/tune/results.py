"""The study's results: one row per trial, the table, ``tune.csv``, ``best.yaml``, seed statistics.

Everything is read back from the storage, so a resumed study's results hold every trial of every
invocation. Rows are ordered by nnpipe's trial number; a failed attempt keeps the number it held
(the trial that later took the number over is the one counted).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from pipeline.runs.seedstats import Comparison, compare_best, mean_std
from pipeline.sweep.results import write_best
from pipeline.tables import text_table
from pipeline.tune.study import NUMBER


def trial_rows(study, params) -> list[dict[str, Any]]:
    """One plain row per trial in the storage: nnpipe and Optuna numbers, state, parameter
    values, value (mean over seeds), std, seed values, epochs run, seconds, run directory."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        attrs = trial.user_attrs
        values = attrs.get("nnpipe_values") or []
        value = trial.value if trial.state.name == "COMPLETE" else (
            trial.intermediate_values[trial.last_step] if trial.state.name == "PRUNED"
            and trial.last_step is not None else None)
        rows.append({
            "number": attrs.get(NUMBER), "optuna": trial.number, "state": trial.state.name,
            "params": {p.path: trial.params.get(p.path) for p in params},
            "overrides": [p.override(trial.params[p.path]) for p in params
                          if p.path in trial.params],
            "value": value, "std": mean_std(values)[1], "values": values,
            "epochs": attrs.get("nnpipe_epochs"), "seconds": attrs.get("nnpipe_seconds"),
            "run_dir": (attrs.get("nnpipe_run_dirs") or [None])[0],
            "error": attrs.get("nnpipe_error"), "stopped": attrs.get("nnpipe_stopped")})
    return sorted(rows, key=lambda r: (r["number"] is None, r["number"] or 0, r["optuna"]))


def best_rows(rows: list[dict], mode: str) -> list[dict]:
    """The COMPLETE rows, best value first."""
    sign = -1 if mode == "max" else 1
    done = [r for r in rows if r["state"] == "COMPLETE" and r["value"] is not None]
    return sorted(done, key=lambda r: (sign * r["value"], r["number"]))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def cells(row: dict, params) -> list[str]:
    """A trial's row as table cells, in the order of ``headers``."""
    return [_cell(row["number"]), str(row["optuna"]), row["state"].lower(),
            *[_cell(row["params"][p.path]) for p in params], _cell(row["value"]),
            _cell(row["std"]), _cell(row["epochs"]), _cell(row["seconds"])]


def headers(params, metric: str) -> list[str]:
    """The trials table's column names: one per parameter between state and value."""
    return ["trial", "optuna", "state", *[p.path for p in params], metric, "±", "epochs",
            "seconds"]


def table(rows: list[dict], params, metric: str, best: dict | None = None) -> str:
    """Every trial as a plain-text table; the best one marked with ``*`` in a last column."""
    body = [cells(r, params) + (["*"] if best is not None and r is best else [])
            for r in rows]
    return text_table(headers(params, metric), body)


def to_csv(rows: list[dict], params, metric: str) -> str:
    """``tune.csv``: number, Optuna number, state, one column per parameter, value, std,
    epochs run, seconds, run directory, error, and what stopped a pruned trial (``pruner`` or
    ``deadline``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["number", "optuna_number", "state", *[p.path for p in params], metric,
                     f"{metric}_std", "epochs", "seconds", "run_dir", "error", "stopped"])
    for r in rows:
        writer.writerow([_cell(r["number"]), r["optuna"], r["state"],
                         *["" if r["params"][p.path] is None else r["params"][p.path]
                           for p in params],
                         "" if r["value"] is None else repr(r["value"]),
                         "" if r["std"] is None else repr(r["std"]),
                         _cell(r["epochs"]), _cell(r["seconds"]), r["run_dir"] or "",
                         r["error"] or "", r.get("stopped") or ""])
    return buffer.getvalue()


def write_best_file(path: Path, file: Path, row: dict, metric: str, fixed) -> None:
    """``best.yaml``: the pipeline with the best trial's parameters applied."""
    runs = max(1, len(row["values"]))
    write_best(path, file, {"overrides": row["overrides"], "mean": row["value"],
                            "std": row["std"] or 0.0, "runs": runs}, metric, fixed,
               what=f"trial {row['number']} of a tune study")


def seed_comparison(ranked: list[dict]) -> Comparison | None:
    """Welch's test between the two best trials, when they ran over several seeds."""
    return compare_best([(f"trial {r['number']}", r["values"]) for r in ranked[:2]
                         if len(r["values"]) > 1])
