"""Check a pipeline's wiring, then run its stages in order and write the run directory.

Stages pass named artifacts: each stage reads the names in its ``inputs`` and returns the names in
its ``outputs``. The wiring is checked before anything runs, so a stage whose input nothing
produces is an error at once, not after an hour of training. The run directory is built in a
temporary folder beside its final place and renamed into place only when complete.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import yaml

from pipeline.artifacts import Saveable
from pipeline.engine.config import LoadedPipeline
from pipeline.errors import NnpipeError, RunError, Stopped, UserError
from pipeline.engine.chain import StageKey, key_chain
from pipeline.files import DiskFullError, disk_full, synced_together, write_json, write_text
from pipeline.engine.keys import FileHasher
from pipeline.io.leftovers import owner_tag, remove_abandoned, temp_prefix
from pipeline.io.names import slug
from pipeline.io.outputs import RUN_FORMAT, run_dir_problem
from pipeline.spec import StageContext
from pipeline.engine.transforms import Fitted, sample_shape, write_chain
from pipeline.engine.wiring import check_wiring


@dataclass
class StageReport:
    """What happened to one stage: ``ran`` or ``cached``, and how long it took."""

    index: int
    id: str
    kind: str
    status: str
    seconds: float
    key: str | None = None
    #: The files the stage read, with their sha256 (recorded in the manifest).
    inputs: dict[str, str] = field(default_factory=dict)


@dataclass
class RunResult:
    """The artifacts of a finished run, where its files are, and a report per stage."""

    artifacts: dict[str, Any]
    run_dir: Path | None
    stages: list[StageReport] = field(default_factory=list)


def default_run_dir(pipeline: LoadedPipeline, root: Path = Path("runs")) -> Path:
    """``runs/<name>-<date>-<time>``, with a counter if that exists already. The name is made a
    safe folder name (``pipeline.io.names.slug``), so the run always lands directly in ``root``."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    name = slug(pipeline.spec.name)
    candidate = root / f"{name}-{stamp}"
    counter = 1
    while candidate.exists():
        counter += 1
        candidate = root / f"{name}-{stamp}-{counter}"
    return candidate


def versions() -> dict[str, str]:
    """Versions of what shapes a run's numbers: Python, numpy and the installed nnpipe."""
    found = {"python": platform.python_version()}
    for name in ("nnpipe", "numpy", "pydantic", "joblib"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


#: Called after each stage with its report (the CLI prints a line per stage).
StageListener = Callable[[StageReport], None]


class Runner:
    """Runs a validated pipeline.

    Args:
        data_dir: where registered datasets are looked for (``NNPIPE_DATA``).
        progress: the progress listener handed to each stage.
        on_stage: called with each stage's report as soon as it is done.
        cache: a ``pipeline.engine.cache.StageCache`` (or an object with its ``lookup``, ``store`` and
            ``remember`` methods); None runs everything and stores nothing.
        state_dir: where stages keep state between runs (checkpoints), by stage key.
        force_from: the index of the first stage to run even when cached (``--from``); its
            entry and those of the stages after it are overwritten.
        monitor: ``monitor(stage_id, step, values) -> bool``, called when a stage reports an
            intermediate value (``StageContext.report``); True stops that stage. A stopped
            stage's result is not cached and the run ends with ``Stopped`` (nothing written).
    """

    def __init__(self, data_dir: Path | None = None, progress=None,
                 on_stage: StageListener | None = None, cache=None,
                 state_dir: Path | None = None, force_from: int | None = None,
                 monitor: Callable[[str, int, Any], bool] | None = None):
        self.force_from = force_from
        self.monitor = monitor
        self.data_dir = data_dir
        self.progress = progress
        self.on_stage = on_stage or (lambda report: None)
        self.cache = cache
        # Where stages keep state between runs (checkpoints), by stage key; None keeps none.
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.hasher = FileHasher(self.state_dir / "file-hashes.json" if self.state_dir else None)

    def run(self, pipeline: LoadedPipeline, out: Path | None = None,
            write: bool = True) -> RunResult:
        """Check the wiring, run every stage, and (unless ``write`` is False) write the run
        directory ``out`` (default ``runs/<name>-<timestamp>``)."""
        check_wiring(pipeline)
        if callable(getattr(self.cache, "remove_abandoned", None)):
            self.cache.remove_abandoned()  # what killed runs left in the cache folder
        artifacts: dict[str, Any] = {}
        reports: list[StageReport] = []
        started = time.perf_counter()
        chain = key_chain(pipeline, self.data_dir, self.hasher, self.progress)
        fitted: list[Fitted] = []  # the fitted transforms, in pipeline order
        for stage, link in zip(pipeline.stages, chain):
            context = StageContext(seed=pipeline.spec.seed, data_dir=self.data_dir,
                                   progress=self.progress, stage_index=link.index,
                                   monitor=self._stage_monitor(link.id))
            if self.state_dir is not None:
                context.checkpoint_dir = self.state_dir / "checkpoints" / link.key
            forced = self.force_from is not None and link.index >= self.force_from
            outputs, status = self._run_stage(stage, link, artifacts, context, forced)
            if context.stop_requested:  # a partial result: not cached, nothing after it runs
                raise Stopped(f"stages[{link.index}] ({link.id}) was stopped by its monitor",
                              link.id)
            if self.cache is not None:
                self.cache.remember(pipeline.spec.name, link.id, link.key)
            if stage.transform_output is not None:
                seen = sample_shape({name: artifacts[name] for name in stage.inputs})
                fitted.append(Fitted(link.index, link.id, stage.kind,
                                     outputs[stage.transform_output], seen))
            artifacts.update(outputs)
            # the first stage's time includes hashing the chain's input files
            report = StageReport(link.index, link.id, stage.kind, status,
                                 time.perf_counter() - started, link.key, dict(link.inputs))
            started = time.perf_counter()
            reports.append(report)
            self.on_stage(report)
        self.hasher.flush()
        run_dir = None
        if write:
            run_dir = Path(out) if out is not None else default_run_dir(pipeline)
            write_run_dir(run_dir, pipeline, artifacts, reports, fitted)
        return RunResult(artifacts, run_dir, reports)

    def _run_stage(self, stage, link: StageKey, artifacts, context, forced):
        index, stage_id = link.index, link.id
        if self.cache is not None and not forced:
            cached = self.cache.lookup(link.key, link.label, stage.outputs)
            if cached is not None and set(cached) == set(stage.outputs):
                return cached, "cached"
        inputs = {name: artifacts[name] for name in (*stage.inputs, *stage.optional_inputs)
                  if name in artifacts}  # check_wiring made sure every required one is there
        try:
            outputs = stage.run(inputs, context)
        except NnpipeError:
            raise
        except (KeyboardInterrupt, MemoryError):
            raise
        except Exception as exc:
            raise RunError(f"stage stages[{index}] ({stage_id}) failed: "
                           f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(outputs, dict) or set(outputs) != set(stage.outputs):
            got = sorted(outputs) if isinstance(outputs, dict) else type(outputs).__name__
            raise RunError(f"stage stages[{index}] ({stage_id}, {type(stage).__module__}) returned "
                           f"{got}, but declares outputs {sorted(stage.outputs)}")
        if self.cache is not None and not context.stop_requested:
            self.cache.store(link.key, outputs, link)
        return outputs, "ran"

    def _stage_monitor(self, stage_id: str):
        """The ``StageContext.monitor`` of one stage: the runner's monitor with the stage's id."""
        if self.monitor is None:
            return None
        return lambda step, values: self.monitor(stage_id, step, values)


def write_run_dir(run_dir: Path, pipeline: LoadedPipeline, artifacts: dict[str, Any],
                  reports: list[StageReport], chain: list[Fitted] | None = None) -> None:
    """Write every saveable artifact, the fitted-transform ``chain`` (``transforms.json`` and
    ``transforms/``), the resolved pipeline and the manifest into ``run_dir``.

    The files are written into a temporary folder beside ``run_dir`` that is renamed into place
    at the end, so an interrupted run never leaves a half-written run directory. An existing
    ``run_dir`` is replaced only once the new one is complete.
    """
    run_dir = Path(run_dir)
    if run_dir.exists() or run_dir.is_symlink():
        problem = "is a symbolic link" if run_dir.is_symlink() else run_dir_problem(run_dir)
        if problem:  # the command line refused this before the run; the Python API does here
            raise UserError(f"{run_dir}: {problem}; it was not replaced")
    try:
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        remove_abandoned(run_dir.parent)  # what a killed run left here
        staging = Path(tempfile.mkdtemp(prefix=temp_prefix(run_dir.name), suffix=".partial",
                                        dir=run_dir.parent))
    except OSError as exc:
        if disk_full(exc):
            raise DiskFullError(run_dir.parent, f"the run directory {run_dir}") from None
        raise
    try:
        with synced_together():  # every file on disk before the folder takes its name
            _fill_run_dir(staging, pipeline, artifacts, reports, chain or [], run_dir.name)
        if run_dir.exists():
            # Replace an old run only now that the new one is complete.
            old = run_dir.with_name(f".{run_dir.name}.old-{owner_tag()}")
            os.replace(run_dir, old)
            os.replace(staging, run_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, run_dir)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, DiskFullError) or disk_full(exc):
            raise DiskFullError(run_dir.parent, f"the run directory {run_dir}") from None
        raise


def _fill_run_dir(staging: Path, pipeline: LoadedPipeline, artifacts: dict[str, Any],
                  reports: list[StageReport], chain: list[Fitted], name: str) -> None:
    """Write the artifacts, the fitted-transform chain, the resolved pipeline, the manifest and,
    for a run with plots, its HTML page into ``staging`` (the run directory ``name`` to be)."""
    from pipeline.runs.report import REPORT_NAME, write_report

    files, saved = [], {}  # saved: id of an artifact -> the files it wrote
    for value in artifacts.values():
        if isinstance(value, Saveable):
            saved[id(value)] = list(value.save(staging))
            files.extend(saved[id(value)])
    files.extend(write_chain(staging, chain, saved))
    plotted = any(file.startswith("plots/") for file in files)
    if plotted:  # its HTML page too, written last: it reads the manifest
        files.append(REPORT_NAME)
    header = f"# resolved from {pipeline.path}" + (
        f" with --set {' --set '.join(pipeline.overrides)}" if pipeline.overrides else "") + "\n"
    resolved = pipeline.resolved()
    write_text(staging / "pipeline.yaml", header + yaml.safe_dump(resolved, sort_keys=False))
    manifest = {
        "format": RUN_FORMAT,
        "pipeline": str(pipeline.path),
        "name": pipeline.spec.name,
        "created": _dt.datetime.now().isoformat(timespec="seconds"),
        "overrides": list(pipeline.overrides),
        "versions": versions(),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "stages": [report.__dict__ for report in reports],
        "files": sorted(files + ["pipeline.yaml", "manifest.json"]),
    }
    write_json(staging / "manifest.json", manifest)
    if plotted:
        write_report(staging, name=name, checked=False, spec=resolved)
