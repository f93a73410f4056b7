"""The ``pca`` stage: project every split onto the principal components of the train split.

Fitted on the train split only (measuring the components on all the data would leak validation
and test statistics into training):

    mean = mean of the train rows                                   (d,)
    centred train rows = U S Vt  (thin SVD)                          Vt (d', d) rows: components
    components = Vt[:k]                                             (k, d)
    variance = S[:k]^2 / (n - 1)                                    (k,) along each component
    transform(x) = (x - mean) @ components.T  [/ sqrt(variance + eps) with whiten]   (n, k)

The fitted ``PCA`` is a transform in nnpipe's sense (the stage names it as its
``transform_output``): the run directory keeps it as ``pca.json`` + ``pca.npz`` (no pickle), and
``nnpipe predict``, the Python API and ``nnpipe export --format onnx`` (through ``PCA.onnx``)
replay it before the model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping

import numpy as np
from pydantic import Field, PositiveInt

from pipeline.artifacts import Dataset, Split
from pipeline.errors import DataError, UserError
from pipeline.files import write_json, write_npz
from pipeline.spec import StageContext, StageSpec

JSON_NAME, NPZ_NAME = "pca.json", "pca.npz"


@dataclass(frozen=True, eq=False)
class PCA:
    """A fitted projection onto ``components`` (k, d) around ``mean`` (d,), whitened by
    ``scale`` (k,) = sqrt(variance + eps) when ``whiten`` (else ones); output in ``dtype``."""

    mean: np.ndarray
    components: np.ndarray
    scale: np.ndarray
    whiten: bool
    dtype: str = "float32"

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Rows x (n, d) -> their coordinates (n, k) along the components."""
        x = np.asarray(x).reshape(x.shape[0], -1)  # (n, d)
        if x.shape[1] != self.mean.shape[0]:
            raise DataError(f"pca fitted on {self.mean.shape[0]} features cannot apply to "
                            f"{x.shape[1]}")
        projected = (x - self.mean) @ self.components.T  # (n, k) in float64
        if self.whiten:
            projected /= self.scale
        return projected.astype(self.dtype)

    def onnx(self, graph: Any, x: str) -> str:
        """The same in ONNX nodes (for ``nnpipe export``): Sub, MatMul[, Div], on rows (N, d)."""
        dtype = np.dtype(self.dtype)
        centred = graph.node("Sub", [x, graph.constant(self.mean, "pca_mean", dtype)])
        y = graph.node("MatMul", [centred, graph.constant(self.components.T, "pca_components", dtype)])
        return graph.node("Div", [y, graph.constant(self.scale, "pca_scale", dtype)]) if self.whiten else y

    def save(self, directory: Path) -> list[str]:
        """Write ``pca.npz`` (arrays) and ``pca.json`` (description); return their names."""
        directory = Path(directory)
        write_npz(directory / NPZ_NAME, {"mean": self.mean, "components": self.components,
                                         "scale": self.scale})
        write_json(directory / JSON_NAME, {"components": int(self.components.shape[0]),
                                           "features": int(self.mean.shape[0]),
                                           "whiten": self.whiten, "dtype": self.dtype,
                                           "arrays": NPZ_NAME})
        return [JSON_NAME, NPZ_NAME]

    @classmethod
    def load(cls, directory: Path) -> "PCA":
        """Read what ``save`` wrote (``allow_pickle=False``); DataError when it is not there."""
        directory = Path(directory)
        try:
            meta = json.loads((directory / JSON_NAME).read_text(encoding="utf-8"))
            with np.load(directory / NPZ_NAME, allow_pickle=False) as arrays:
                mean, components, scale = arrays["mean"], arrays["components"], arrays["scale"]
            whiten, dtype = bool(meta["whiten"]), str(meta["dtype"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{directory}: not a saved pca ({type(exc).__name__}: {exc})") from None
        k, d = components.shape if components.ndim == 2 else (-1, -1)
        if mean.shape != (d,) or scale.shape != (k,) or dtype not in ("float32", "float64"):
            raise DataError(f"{directory}: not a saved pca (mean {mean.shape}, components "
                            f"{components.shape}, scale {scale.shape}, dtype {dtype!r})")
        return cls(mean, components, scale, whiten, dtype)


def fit_pca(x_train: np.ndarray, components: int, whiten: bool, dtype: str = "float32",
            eps: float = 1e-8) -> PCA:
    """Fit on the train rows ``x_train`` (n, d): the top ``components`` directions of variance."""
    x = np.asarray(x_train, dtype=np.float64).reshape(x_train.shape[0], -1)  # (n, d)
    n, d = x.shape
    if not 1 <= components <= min(n, d):
        raise UserError(f"pca: components must lie in 1..{min(n, d)} for {n} train rows of "
                        f"{d} features; got {components}")
    mean = x.mean(axis=0)  # (d,)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)  # s (r,), vt (r, d)
    variance = s[:components] ** 2 / max(n - 1, 1)  # (k,)
    scale = np.sqrt(variance + eps) if whiten else np.ones(components)
    return PCA(mean, vt[:components].copy(), scale, whiten, dtype)


class PCAStage(StageSpec):
    """Project every split onto the principal components of the train split."""

    kind: Literal["pca"] = "pca"
    uses_seed = False  # deterministic
    components: PositiveInt = Field(default=16, description="How many components to keep "
                                    "(at most the train split's rows and features).")
    whiten: bool = Field(default=False, description="Divide each component by its standard "
                                                    "deviation on the train split.")
    dtype: Literal["float32", "float64"] = Field(default="float32", description="Output dtype.")

    inputs = ("data",)
    outputs = ("data", "pca")
    transform_output = "pca"  # nnpipe saves it and replays it in predict and the exports

    @classmethod
    def load_transform(cls, directory: Path) -> PCA:
        """The ``PCA`` saved in ``directory``."""
        return PCA.load(directory)

    def run(self, inputs: Mapping[str, Any], context: StageContext) -> dict[str, Any]:
        """Fit on ``train``, apply to every split."""
        data: Dataset = inputs["data"]
        pca = fit_pca(data.split("train").x, self.components, self.whiten, self.dtype)
        splits = {name: Split(x=pca.apply(s.x), y=s.y) for name, s in data.splits.items()}
        return {"data": data.with_splits(splits), "pca": pca}
