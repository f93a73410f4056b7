"""``mlp_train``'s checkpoint: what a run carries from epoch to epoch, saved after each one.

``checkpoint.npz`` in the stage's checkpoint folder holds the weights, the running statistics,
the optimiser's state arrays, the best weights so far (early stopping), ``ema``'s average of the
weights and statistics (its step count in the JSON) and one JSON string with
the epoch, the history, the early-stopping state and the random generator's state. Resuming
from it continues the exact random stream, so the result is bit-identical to an uninterrupted
run; a checkpoint of another spec or seed is ignored (and overwritten).
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipeline.errors import DataError
from pipeline.files import write_npz
from plugins.mlp.averaging import WeightAverage
from plugins.mlp.history import Epoch, History
from plugins.mlp.model import MLP

if TYPE_CHECKING:
    from plugins.mlp.trainer import EarlyStopping, MLPTrain


@dataclass
class RunState:
    """What a training run carries from epoch to epoch besides weights and optimiser state."""

    epoch: int = 0  # epochs completed
    history: History = field(default_factory=History)
    best: float | None = None  # early stopping: best monitored value, its epoch, its weights
    best_epoch: int = 0
    bad_epochs: int = 0
    stopped: bool = False
    best_params: np.ndarray | None = None
    best_stats: np.ndarray | None = None
    average: WeightAverage | None = None  # ema's running average of the weights

    def watch(self, rule: "EarlyStopping", record: Epoch, model: MLP) -> None:
        """Early stopping's look at ``record``: keep the best weights, count epochs without
        improvement, stop after ``rule.patience`` of them."""
        value = getattr(record, rule.monitor)
        if rule.improved(value, self.best):
            self.best, self.best_epoch, self.bad_epochs = value, record.epoch, 0
            self.best_params = model.params.copy()  # (P,)
            self.best_stats = model.stats.copy()  # (S,)
        else:
            self.bad_epochs += 1
            self.stopped = self.bad_epochs > rule.patience


class Checkpoint:
    """``checkpoint.npz`` in the stage's checkpoint folder, rewritten atomically after every
    epoch: the weights, the optimiser's state arrays, the best weights so far, and one JSON string
    with the epoch, history, early-stopping state and the random generator's state. Plain arrays,
    read with ``allow_pickle=False``. Resuming from it continues the exact random stream, so the
    result is bit-identical to an uninterrupted run."""

    def __init__(self, directory: Path):
        self.path = Path(directory) / "checkpoint.npz"

    def save(self, model: MLP, state: dict, rng: np.random.Generator, run: RunState,
             spec: "MLPTrain", seed: int) -> None:
        meta = {"format": "nnpipe-mlp-checkpoint/1", "spec": spec.model_dump(mode="json"),
                "seed": seed,
                "epoch": run.epoch, "history": run.history.to_json(),
                "best": run.best, "best_epoch": run.best_epoch, "bad_epochs": run.bad_epochs,
                "stopped": run.stopped, "rng": rng.bit_generator.state,
                "average_steps": run.average.steps if run.average is not None else None}
        arrays = {"params": model.params, "stats": model.stats, "meta": np.array(json.dumps(meta))}
        arrays.update({f"state.{name}": np.asarray(value) for name, value in state.items()
                       if not name.startswith("_")})  # "_name": a work buffer
        if run.best_params is not None:
            arrays["best_params"], arrays["best_stats"] = run.best_params, run.best_stats
        if run.average is not None:
            arrays["average_params"] = run.average.params
            arrays["average_stats"] = run.average.stats
        write_npz(self.path, arrays)

    def load(self, model: MLP, state: dict, rng: np.random.Generator, run: RunState,
             spec: "MLPTrain", seed: int) -> bool:
        """Fill everything from the checkpoint if there is a matching one; False if none."""
        if not self.path.is_file():
            return False
        try:
            with np.load(self.path, allow_pickle=False) as npz:
                meta = json.loads(str(npz["meta"]))
                if meta.get("spec") != spec.model_dump(mode="json") or meta.get("seed") != seed \
                        or npz["params"].shape != model.params.shape:
                    return False  # another configuration's: start afresh (it is overwritten)
                model.params[...] = npz["params"]
                model.stats[...] = npz["stats"]
                for name, value in state.items():
                    if not name.startswith("_"):
                        value[...] = npz[f"state.{name}"]
                if "best_params" in npz.files:
                    run.best_params = npz["best_params"].copy()
                    run.best_stats = npz["best_stats"].copy()
                if run.average is not None:
                    run.average.params[...] = npz["average_params"]
                    run.average.stats[...] = npz["average_stats"]
                    run.average.steps = int(meta["average_steps"])
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise DataError(f"{self.path}: unreadable checkpoint ({exc}); delete it to start "
                            f"afresh") from exc
        rng.bit_generator.state = meta["rng"]
        run.epoch, run.best, run.best_epoch = meta["epoch"], meta["best"], meta["best_epoch"]
        run.bad_epochs, run.stopped = meta["bad_epochs"], meta["stopped"]
        run.history = History([Epoch(**e) for e in meta["history"]])
        return True

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
