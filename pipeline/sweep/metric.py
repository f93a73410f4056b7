"""What a search ranks by: a value its runs leave behind, and whether higher or lower is better.

Stages declare the values they leave in a run directory that a search may rank by, with their
direction (``StageSpec.metric_directions``, ``{"name": "max" | "min"}``): the framework knows no
metric itself. Without ``--metric`` a search ranks by the first value declared in the pipeline;
``--mode`` overrides the declared direction, and an undeclared metric without ``--mode`` is
ranked highest first. A pipeline declaring none is ranked by
``FALLBACK_METRIC``.

A run's value is read from its run directory: the last epoch of ``history.json`` that has it,
else the top level of ``metrics.json``.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Callable, Iterable

from pipeline.errors import UserError
from pipeline.userfiles import MAX_RUN_FILE_BYTES, read_json

MODES = ("min", "max")
#: Ranked by when neither ``--metric`` nor any stage names a metric: the name searches ranked by
#: before stages declared theirs (a run without it is a failed run, saying so).
FALLBACK_METRIC = "val_accuracy"


def declared(stages: Iterable) -> dict[str, str]:
    """Every metric the ``stages`` declare, in pipeline order, with its direction."""
    found: dict[str, str] = {}
    for stage in stages:
        for name, direction in getattr(type(stage), "metric_directions", {}).items():
            found.setdefault(name, direction)
    return found


def choose(stages: Iterable, metric: str | None, mode: str | None,
           warn: Callable[[str], None] | None = None) -> tuple[str, str]:
    """``(metric, mode)`` a search ranks by: the given ones, else what the stages declare.

    A ``metric`` that no stage of a pipeline declaring some declares is most often a typo
    (``val_acc``): ``warn`` (when given) says so before anything runs, naming the closest declared
    one, since otherwise the first run to finish is what reveals it. It is still used (a plugin
    stage may leave values it does not declare), ranked as the docstring of this module says.

    Raises:
        UserError: a ``mode`` not min or max.
    """
    if mode not in (None, *MODES):
        raise UserError(f"--mode {mode}: choose min or max")
    known = declared(stages)
    if warn is not None and metric and known and metric not in known:
        close = difflib.get_close_matches(metric, list(known), n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        warn(f"--metric {metric}: no stage of the pipeline declares it ({hint}declared: "
             f"{', '.join(known)}); a run that leaves no {metric} cannot be ranked")
    metric = metric or next(iter(known), FALLBACK_METRIC)
    return metric, mode or known.get(metric, "max")


def read_metric(run_dir: Path, metric: str) -> float | None:
    """``metric`` from a run directory: the last epoch of ``history.json`` that has it, else the
    top level of ``metrics.json``; None when neither holds it."""
    history = run_dir / "history.json"
    if history.is_file():
        epochs = read_json(history, "run directory file", MAX_RUN_FILE_BYTES)
        for epoch in reversed(epochs if isinstance(epochs, list) else []):
            if isinstance(epoch, dict) and isinstance(epoch.get(metric), (int, float)):
                return float(epoch[metric])
    metrics = run_dir / "metrics.json"
    if metrics.is_file():
        found = read_json(metrics, "run directory file", MAX_RUN_FILE_BYTES)
        value = found.get(metric) if isinstance(found, dict) else None
        if isinstance(value, (int, float)):
            return float(value)
    return None
