"""The ``normalize`` stage and the ``Normalizer`` it fits.

``scale`` divides by 255, as the seed notebook did. ``standardize`` subtracts each feature's mean
and divides by its standard deviation, both measured on the train split only (measuring them on
all the data would leak validation and test statistics into training). A feature that is constant
on the train split is divided by 1, not by 0.

The fitted ``Normalizer`` is an artifact of its own, saved in the run directory, so that
``nnpipe predict`` can apply the very same transform to new inputs.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping

import numpy as np
from pydantic import Field

from pipeline.artifacts import Dataset, Split
from pipeline.resources import require_memory
from pipeline.userfiles import load_json_file
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

    def apply(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Transform raw inputs ``x`` (n, *features) into normalised ``dtype`` values, in a new
        array or in ``out`` (x's shape, a float dtype; may be ``x`` itself), which is returned."""
        features = self.offset.shape
        if features and x.shape[1:] != features:
            raise DataError(f"normalizer fitted on samples of shape {features} cannot apply to "
                            f"inputs of shape {x.shape[1:]}")
        dtype = np.dtype(self.dtype) if out is None else out.dtype
        out = _copy_into(x, out, dtype)  # (n, *features)
        out -= self.offset.astype(dtype)
        out /= self.scale.astype(dtype)
        return out

    def invert(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Normalised values ``x`` (n, *features) back to raw inputs ``x * scale + offset``, in
        ``x``'s float dtype (the inverse of ``apply``, up to rounding): a new array, or
        ``out`` (as in ``apply``)."""
        dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.dtype(self.dtype)
        dtype = dtype if out is None else out.dtype
        out = _copy_into(x, out, dtype)  # (n, *features)
        out *= self.scale.astype(dtype)
        out += self.offset.astype(dtype)
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
        """Read a normalizer written by ``save`` (no pickles are loaded), checked whole: a
        transform that would silently give wrong inputs is refused.

        Raises:
            DataError: naming the file, when one is missing, is not what ``save`` writes, or
                holds values no fit produces (NaN or infinite, a scale of 0 or below, shapes that
                differ from each other or from ``feature_shape``).
        """
        directory = Path(directory)
        json_path, npz_path = directory / JSON_NAME, directory / NPZ_NAME
        method, dtype, feature_shape = _read_description(json_path)
        try:
            with np.load(npz_path, allow_pickle=False) as arrays:
                missing = [name for name in ("offset", "scale") if name not in arrays.files]
                if missing:
                    raise DataError(f"{npz_path}: no array {missing[0]} (not a saved normalizer)")
                offset, scale = arrays["offset"], arrays["scale"]
        except FileNotFoundError:
            raise DataError(f"{npz_path}: no such file (the arrays of {JSON_NAME})") from None
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise DataError(f"{npz_path}: not a saved normalizer ({exc})") from None
        _check_arrays(npz_path, offset, scale, feature_shape)
        return cls(method=method, dtype=dtype, offset=offset.astype(np.float64),
                   scale=scale.astype(np.float64))


def _copy_into(x: np.ndarray, out: np.ndarray | None, dtype: np.dtype) -> np.ndarray:
    """``x`` as ``dtype``: a new array, or copied into ``out`` (x's shape; a no-op when it is
    ``x``), so a caller that transforms the same rows every epoch reuses one buffer."""
    if out is None:
        return x.astype(dtype)
    if out.shape != x.shape or not np.issubdtype(out.dtype, np.floating):
        raise ValueError(f"out must be a float array of shape {x.shape}, not {out.dtype} "
                         f"{out.shape}")
    if out is not x:
        np.copyto(out, x, casting="unsafe")
    return out


def _read_description(path: Path) -> tuple[str, str, tuple[int, ...]]:
    """(method, dtype, feature shape) from ``normalizer.json``, or a DataError naming it."""
    try:
        meta = load_json_file(path)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file (expected a saved normalizer)") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a saved normalizer ({exc})") from None
    if not isinstance(meta, dict):
        raise DataError(f"{path}: not a saved normalizer (expected an object, got "
                        f"{type(meta).__name__})")
    method, dtype, shape = meta.get("method"), meta.get("dtype"), meta.get("feature_shape")
    if method not in ("scale", "standardize") or dtype not in ("float32", "float64"):
        raise DataError(f"{path}: not a saved normalizer (method {method!r}, dtype {dtype!r})")
    if not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape):
        raise DataError(f"{path}: feature_shape must be a list of sizes, got {shape!r}")
    return method, dtype, tuple(shape)


def _check_arrays(path: Path, offset: np.ndarray, scale: np.ndarray,
                  feature_shape: tuple[int, ...]) -> None:
    """Refuse arrays no fit produces: shapes that disagree, non-real, NaN or infinite values,
    or a scale of 0 or below (dividing by it would give infinities or flip signs)."""
    if offset.shape != feature_shape or scale.shape != feature_shape:
        raise DataError(f"{path}: offset {offset.shape} and scale {scale.shape} do not match "
                        f"feature_shape {feature_shape} of {JSON_NAME}")
    for name, array in (("offset", offset), ("scale", scale)):
        if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
            raise DataError(f"{path}: {name} holds {array.dtype} values, not real numbers")
        bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        if bad:
            raise DataError(f"{path}: {name} has {bad} NaN or infinite value(s)")
    if np.any(scale <= 0):
        raise DataError(f"{path}: scale has {int(np.count_nonzero(scale <= 0))} value(s) of 0 or "
                        f"below (a standard deviation of 0 would divide by zero)")


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
