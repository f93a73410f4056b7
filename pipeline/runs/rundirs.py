"""Reading run directories back: ``nnpipe runs list`` and ``nnpipe runs compare``.

Everything here reads only the files a run leaves behind (``manifest.json``, ``pipeline.yaml``,
``metrics.json``, ``history.json``), so it works for any pipeline, whatever its stages.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from pipeline.engine.addressing import stage_names
from pipeline.errors import UserError
from pipeline.tables import text_table
from pipeline.userfiles import (MAX_RUN_FILE_BYTES, MissingFile, load_yaml, read_json,
                                read_text)

def scalar_keys(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """The keys with a scalar value (text, a number, a bool or None) in any of ``records``, in
    the order they first appear: the columns of metrics and histories, whatever stage wrote them
    (lists and tables inside them, such as per-class scores, are left out)."""
    keys: dict[str, None] = {}
    for record in records:
        for key, value in record.items():
            if value is None or isinstance(value, (str, int, float, bool)):
                keys.setdefault(key, None)
    return list(keys)


@dataclass
class RunInfo:
    """What one run directory holds, read from its files (missing files give empty values)."""

    path: Path
    manifest: dict[str, Any]
    spec: dict[str, Any]
    metrics: dict[str, Any]
    history: list[dict[str, Any]]

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def created(self) -> str:
        """``YYYY-MM-DD HH:MM`` from the manifest, or empty."""
        text = self.manifest.get("created", "")
        try:
            return _dt.datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M")
        except (TypeError, ValueError):
            return str(text)

    @property
    def seconds(self) -> float:
        """The run's time: the sum of its stages' seconds."""
        return float(sum(stage.get("seconds", 0.0) for stage in self.manifest.get("stages", [])))

    def settings(self) -> dict[str, Any]:
        """The resolved pipeline as dotted paths (see ``flatten``)."""
        return flatten(self.spec)


def _read_json(path: Path, shape: type) -> Any:
    """A run directory's JSON file (within ``userfiles``' caps), or None when it is missing; a
    file of the wrong top-level shape is a one-line UserError."""
    try:
        value = read_json(path, "run directory file", MAX_RUN_FILE_BYTES)
    except MissingFile:
        return None
    if not isinstance(value, shape):
        raise UserError(f"{path}: expected a JSON {'object' if shape is dict else 'list'}, "
                        f"found {type(value).__name__}")
    return value


def load_run(path: Path | str, spec: dict[str, Any] | None = None) -> RunInfo:
    """Read a run directory; a path that is not one is a one-line UserError. ``spec``: the
    resolved pipeline its ``pipeline.yaml`` was written from, when the caller holds it (the
    runner, filling the folder), instead of parsing the file back."""
    path = Path(path)
    if not (path / "manifest.json").is_file():
        what = "does not exist" if not path.exists() else "is not a run directory (no manifest.json)"
        raise UserError(f"{path}: {what}")
    try:
        if spec is None:
            spec, _ = load_yaml(read_text(path / "pipeline.yaml", "run directory file",
                                          MAX_RUN_FILE_BYTES), str(path / "pipeline.yaml"))
    except MissingFile:
        spec = {}
    if not isinstance(spec or {}, dict):
        raise UserError(f"{path / 'pipeline.yaml'}: expected a mapping, found "
                        f"{type(spec).__name__}")
    return RunInfo(path, _read_json(path / "manifest.json", dict) or {}, spec or {},
                   _read_json(path / "metrics.json", dict) or {},
                   _read_json(path / "history.json", list) or [])


def find_runs(root: Path | str) -> list[RunInfo]:
    """Every run directory directly under ``root`` (or ``root`` itself), oldest first."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: no such folder")
    if (root / "manifest.json").is_file():
        return [load_run(root)]
    runs = [load_run(p) for p in sorted(root.iterdir())
            if p.is_dir() and not p.name.startswith(".") and (p / "manifest.json").is_file()]
    return sorted(runs, key=lambda run: (run.manifest.get("created", ""), run.name))


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings and lists -> ``{"mlp_train.optimizer.lr": 0.05, ...}``.

    Stages are named as every command prints and accepts them (``pipeline.engine.addressing``:
    id, else kind when unique, else ``stages[i]``),
    so two pipelines whose stages line up differently still compare field by field; other lists
    are leaves (``hidden: [256, 128]`` is one setting).
    """
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            if prefix == "" and key == "stages" and isinstance(item, list):
                for name, stage in zip(stage_names(item), item):
                    flat.update(flatten(stage, name))
            else:
                flat.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value}


def differences(runs: list[RunInfo], ignore: Iterable[str] = ("name",)) -> dict[str, list[Any]]:
    """Dotted settings whose value is not the same in every run -> the value in each run
    (``None`` where a run does not have it)."""
    flats = [run.settings() for run in runs]
    keys = [key for key in dict.fromkeys(k for flat in flats for k in flat) if key not in ignore]

    def canonical(flat: dict[str, Any], key: str) -> str:
        return json.dumps(flat[key], sort_keys=True, default=str) if key in flat else "<missing>"

    return {key: [flat.get(key) for flat in flats] for key in keys
            if len({canonical(flat, key) for flat in flats}) > 1}


def show(value: Any) -> str:
    """A value as a table cell: floats to 4 decimals, lists compact, missing as ``-``; a
    ``{kind: ...}`` mapping as ``kind(field=value)`` (unset fields left out), so a list of
    them (a layer stack) reads ``dense(units=256) relu dropout(p=0.2)``."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, list) and value and all(_has_kind(v) for v in value):
        return " ".join(_kind_cell(v) for v in value)
    if _has_kind(value):
        return _kind_cell(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _has_kind(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("kind"), str)


def _kind_cell(value: dict[str, Any]) -> str:
    fields = ",".join(f"{key}={show(item)}" for key, item in value.items()
                      if key != "kind" and item is not None)
    return f"{value['kind']}({fields})" if fields else value["kind"]


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain text table (``pipeline.tables``) with a dashed rule under the header."""
    return text_table(headers, rows, rule=True)


def list_table(runs: list[RunInfo], max_settings: int = 4) -> str:
    """The ``runs list`` table: name, date, key settings, test accuracy, time.

    The key settings are the ones that differ between the listed runs (what tells them apart),
    at most ``max_settings`` of them; a lone run shows its ``--set`` overrides.
    """
    varying = list(differences(runs)) if len(runs) > 1 else []
    rows = []
    for run in runs:
        if varying:
            flat = run.settings()
            settings = " ".join(f"{key.rpartition('.')[2]}={show(flat.get(key))}"
                                for key in varying[:max_settings])
            if len(varying) > max_settings:
                settings += " ..."
        else:
            settings = " ".join(run.manifest.get("overrides", [])) or "-"
        accuracy = run.metrics.get("accuracy")
        rows.append([run.name, run.created, settings, show(accuracy), f"{run.seconds:.1f}s"])
    split = next((r.metrics.get("split") for r in runs if r.metrics.get("split")), "test")
    return table(["run", "date", "settings", f"{split} accuracy", "time"], rows)


def compare_text(runs: list[RunInfo]) -> str:
    """The ``runs compare`` output: the settings that differ, then the metrics side by side."""
    names = [run.name for run in runs]
    diff = differences(runs)
    if diff:
        settings = table(["setting", *names], [[key, *map(show, values)]
                                               for key, values in diff.items()])
    else:
        settings = "no setting differs"
    metric_rows = [[key, *(show(run.metrics.get(key)) for run in runs)]
                   for key in scalar_keys(run.metrics for run in runs)]
    metric_rows.append(["epochs", *(str(len(run.history)) if run.history else "-" for run in runs)])
    metric_rows.append(["time", *(f"{run.seconds:.1f}s" for run in runs)])
    return f"{settings}\n\n{table(['metric', *names], metric_rows)}"


#: Settings that only pick the random stream: runs differing in these alone are one configuration.
SEED_KEYS = ("seed",)


def _is_seed(key: str) -> bool:
    return key in SEED_KEYS or key.rpartition(".")[2] in SEED_KEYS


def seed_groups(runs: list[RunInfo], metric: str = "accuracy") -> str | None:
    """Runs that differ only in their seeds, grouped: per group the mean and standard deviation
    of ``metric`` over its seeds, best first, and Welch's t-test between the two best groups.
    None when no two runs differ only in seed."""
    from pipeline.runs.seedstats import compare_best, mean_std

    varying = [key for key in differences(runs) if not _is_seed(key)]
    groups: dict[str, list[RunInfo]] = {}
    for run in runs:
        flat = run.settings()
        label = " ".join(f"{k}={show(flat.get(k))}" for k in varying) or "same settings"
        groups.setdefault(label, []).append(run)
    if all(len(members) < 2 for members in groups.values()):
        return None
    values = {label: [float(r.metrics[metric]) for r in members
                      if isinstance(r.metrics.get(metric), (int, float))]
              for label, members in groups.items()}
    ranked = sorted(values, key=lambda label: -(mean_std(values[label])[0] or float("-inf")))
    rows = [[label, str(len(groups[label])), show(mean_std(values[label])[0]),
             show(mean_std(values[label])[1])] for label in ranked]
    text = table(["configuration", "seeds", f"{metric} mean", "std"], rows)
    comparison = compare_best([(label, values[label]) for label in ranked])
    return text + (f"\n{comparison.sentence()}" if comparison else "")

