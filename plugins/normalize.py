"""The ``normalize`` stage and the ``Normalizer`` it fits.

``scale`` divides by 255, as the seed notebook did. ``standardize`` subtracts each feature's mean
and divides by its standard deviation, both measured on the train split only (measuring them on
all the data would leak validation and test statistics into training). A feature that is constant
on the train split is divided by 1, not by 0.

The fitted ``Normalizer`` is an artifact of its own, saved in the run directory, so that
``nnpipe predict`` can apply the very same transform to new inputs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping

import numpy as np
from pydantic import Field

from pipeline.artifacts import Dataset, Split
from pipeline.resources import require_memory
from pipeline.errors import DataError
from pipeline.files import write_json, write_npz
from pipeline.spec import StageContext, StageSpec

JSON_NAME = "normalizer.json"
NPZ_NAME = "normalizer.npz"


@dataclass(frozen=True, eq=False)
class Normalizer:
    """A fitted transform ``(x - offset) / scale``, cast to ``dtype``.

    Attributes:
        method: "scale" or "standardize", for the record.
        dtype: the float dtype of the output ("float32" or "float64").
        offset: float64, shape () for "scale", else the feature shape (for example (784,)).
        scale: float64, same shape as ``offset``; never 0.
    """

    method: str
    dtype: str
    offset: np.ndarray
    scale: np.ndarray

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Transform raw inputs ``x`` (n, *features) into normalised ``dtype`` values."""
        features = self.offset.shape
        if features and x.shape[1:] != features:
            raise DataError(f"normalizer fitted on samples of shape {features} cannot apply to "
                            f"inputs of shape {x.shape[1:]}")
        dtype = np.dtype(self.dtype)
        out = x.astype(dtype)  # (n, *features)
        out -= self.offset.astype(dtype)
        out /= self.scale.astype(dtype)
        return out

    def save(self, directory: Path) -> list[str]:
        """Write ``normalizer.json`` (description) and ``normalizer.npz`` (arrays); return their names."""
        directory = Path(directory)
        write_npz(directory / NPZ_NAME, {"offset": self.offset, "scale": self.scale})
        write_json(directory / JSON_NAME, {
            "method": self.method,
            "dtype": self.dtype,
            "feature_shape": list(self.offset.shape),
            "arrays": NPZ_NAME,
        })
        return [JSON_NAME, NPZ_NAME]

    @classmethod
    def load(cls, directory: Path) -> "Normalizer":
        """Read a normalizer written by ``save`` (no pickles are loaded).

        Raises:
            DataError: a file is missing or does not hold a normalizer.
        """
        directory = Path(directory)
        json_path, npz_path = directory / JSON_NAME, directory / NPZ_NAME
        try:
            meta = json.loads(json_path.read_text(encoding="utf-8"))
            with np.load(npz_path, allow_pickle=False) as arrays:
                offset, scale = arrays["offset"], arrays["scale"]
            method, dtype = meta["method"], meta["dtype"]
        except FileNotFoundError as exc:
            raise DataError(f"{exc.filename}: no such file (expected a saved normalizer)") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{directory}: not a saved normalizer ({type(exc).__name__}: {exc})") from None
        if dtype not in ("float32", "float64") or offset.shape != scale.shape:
            raise DataError(f"{directory}: not a saved normalizer (dtype {dtype!r}, "
                            f"offset {offset.shape}, scale {scale.shape})")
        return cls(method=method, dtype=dtype, offset=offset, scale=scale)


def fit_normalizer(x_train: np.ndarray, method: str, dtype: str, epsilon: float = 1e-8) -> Normalizer:
    """Fit a ``Normalizer`` on the train inputs ``x_train`` (n, *features)."""
    if method == "scale":
        return Normalizer(method, dtype, offset=np.array(0.0), scale=np.array(255.0))
    mean = x_train.mean(axis=0, dtype=np.float64)  # (*features,)
    std = x_train.std(axis=0, dtype=np.float64)  # (*features,)
    scale = np.where(std > epsilon, std, 1.0)  # constant features: divide by 1, not by 0
    return Normalizer(method, dtype, offset=mean, scale=scale)


class Normalize(StageSpec):
    """Normalise the inputs of every split with a transform fitted on the train split."""

    kind: Literal["normalize"] = "normalize"
    uses_seed = False  # deterministic: the pipeline seed is not part of its key
    method: Literal["scale", "standardize"] = Field(
        default="scale", description="scale: x / 255; standardize: (x - mean) / std of the train split."
    )
    dtype: Literal["float32", "float64"] = Field(default="float32", description="Output dtype.")
    epsilon: float = Field(
        default=1e-8, ge=0, description="standardize: a feature whose std is at most this is divided by 1."
    )

    inputs = ("data",)
    outputs = ("data", "normalizer")
    transform_output = "normalizer"  # fitted on train, replayed by predict and the exports

    @classmethod
    def load_transform(cls, directory: Path) -> Normalizer:
        """The ``Normalizer`` saved in ``directory``."""
        return Normalizer.load(directory)

    def run(self, inputs: Mapping[str, Any], context: StageContext) -> dict[str, Any]:
        """Fit on ``train``, apply to every split."""
        data: Dataset = inputs["data"]
        itemsize = np.dtype(self.dtype).itemsize
        require_memory(sum(s.x.size for s in data.splits.values()) * itemsize,
                       f"normalize: dataset {data.name} as {self.dtype}")
        normalizer = fit_normalizer(data.split("train").x, self.method, self.dtype, self.epsilon)
        splits = {name: Split(x=normalizer.apply(s.x), y=s.y) for name, s in data.splits.items()}
        return {"data": data.with_splits(splits), "normalizer": normalizer}
