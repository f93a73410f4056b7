"""The pca stage: fitted on the train split only, against numpy's eigendecomposition of the
train covariance; whitening; files read back; the stage contract."""

from __future__ import annotations

import numpy as np
import pytest

from nnpipe_extras.pca import PCA, PCAStage, fit_pca
from pipeline.errors import DataError, UserError
from pipeline.testing import check_stage, tiny_dataset


def correlated_rows(n=400, d=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) + 3.0  # (n, d) correlated, off 0


def test_components_and_variances_are_the_train_covariances_eigenpairs():
    x = correlated_rows()
    pca = fit_pca(x, components=3, whiten=True, dtype="float64", eps=0.0)
    values, vectors = np.linalg.eigh(np.cov(x, rowvar=False))  # ascending
    top = vectors[:, ::-1][:, :3].T  # (3, d) largest first
    np.testing.assert_allclose(np.abs(pca.components @ top.T), np.eye(3), atol=1e-10)  # same up to sign
    np.testing.assert_allclose(pca.scale ** 2, values[::-1][:3], rtol=1e-10)
    z = pca.apply(x)  # (n, 3) whitened train coordinates
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-10)
    np.testing.assert_allclose(np.cov(z, rowvar=False), np.eye(3), atol=1e-10)


def test_without_whitening_it_is_the_centred_projection():
    x = correlated_rows()
    pca = fit_pca(x, components=2, whiten=False, dtype="float64")
    np.testing.assert_allclose(pca.apply(x[:5]), (x[:5] - x.mean(axis=0)) @ pca.components.T)
    assert pca.apply(x).dtype == np.float64 and fit_pca(x, 2, False).apply(x).dtype == np.float32


def test_the_stage_fits_on_train_only_and_transforms_every_split():
    data = tiny_dataset()
    out = check_stage(PCAStage(components=4))
    train = data.split("train").x.reshape(len(data.split("train")), -1).astype(np.float64)
    np.testing.assert_allclose(out["pca"].mean, train.mean(axis=0))
    for name, split in out["data"].splits.items():
        assert split.x.shape == (len(data.split(name)), 4)


def test_save_and_load_round_trip_without_pickles(tmp_path):
    pca = fit_pca(correlated_rows(), components=3, whiten=True)
    assert sorted(pca.save(tmp_path)) == ["pca.json", "pca.npz"]
    again = PCAStage.load_transform(tmp_path)
    x = correlated_rows(seed=1)[:7]
    np.testing.assert_array_equal(again.apply(x), pca.apply(x))
    (tmp_path / "pca.json").write_text("{")
    with pytest.raises(DataError, match="not a saved pca"):
        PCA.load(tmp_path)


def test_bad_sizes_are_user_errors():
    with pytest.raises(UserError, match="components must lie in 1..6"):
        fit_pca(correlated_rows(), components=7, whiten=False)
    with pytest.raises(DataError, match="fitted on 6 features"):
        fit_pca(correlated_rows(), components=2, whiten=False).apply(np.zeros((2, 5)))
