"""The runs summarised per configuration: mean and spread over seeds, best first, and Welch's
t-test between the two best (``pipeline.runs.seedstats``)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from pipeline.runs.seedstats import compare_best, mean_std


def _row(number: int, overrides: tuple[str, ...], runs: list[dict]) -> dict[str, Any]:
    """One configuration's row from its runs (one per seed)."""
    values = [r["metric"] for r in runs if r["status"] == "ok"]
    failed = [r for r in runs if r["status"] != "ok"]
    mean, std = mean_std(values)  # std: the sample standard deviation over seeds
    status = "ok" if not failed else ("failed" if not values else "partial")
    error = None
    if failed:
        seeds = ", ".join(str(r["seed"]) for r in failed if r["seed"] is not None)
        error = (f"seed {seeds}: " if seeds and len(runs) > 1 else "") + failed[0]["error"]
    return {"config": number, "overrides": list(overrides), "runs": len(runs),
            "ok": len(values), "mean": mean, "std": std, "status": status, "error": error,
            "values": values, "run_dirs": [r["run_dir"] for r in runs]}


def summarise(configs: list[tuple[str, ...]], outcomes: list[dict], mode: str) -> list[dict]:
    """One row per configuration: mean and spread of the metric over its seeds, best first;
    configurations with a failed run keep it in ``error`` and go below the complete ones."""
    by_config: dict[int, list[dict]] = defaultdict(list)
    for outcome in outcomes:
        by_config[outcome["config"]].append(outcome)
    rows = [_row(number, overrides, by_config.get(number, []))
            for number, overrides in enumerate(configs)]
    sign = -1 if mode == "max" else 1
    rows.sort(key=lambda r: (r["status"] != "ok", r["mean"] is None,
                             sign * r["mean"] if r["mean"] is not None else 0, r["config"]))
    return rows


def seed_sentence(rows: list[dict], seeds: int | None) -> str | None:
    """Welch's t-test between the two best complete configurations, as a sentence; None
    without several seeds."""
    if not seeds or seeds < 2:
        return None
    comparison = compare_best([(" ".join(r["overrides"]) or "base", r["values"]) for r in rows
                               if r["status"] == "ok"])
    return comparison.sentence() if comparison else None
