"""The fused kernels (numba, the ``fast`` extra): bit for bit what the NumPy chains compute, on
one thread and on lanes, for every dtype and layout; the ``NNPIPE_KERNELS`` setting chooses
them, and a bad value is one line, exit 2, before any training."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numba  # noqa: F401  (the test extra installs it: these tests run the compiled kernels)
import numpy as np
import pytest

from pipeline.errors import RunError
from pipeline.spec import StageContext
from plugins.mlp import fused
from plugins.mlp.optim import SGD, Adagrad, Adam, AdamW, NAdam, RMSprop, _adam_chain
from plugins.mlp.parallel import CHUNK, MIN_BLOCK, Lanes
from plugins.mlp.trainer import MLPTrain
from support import blobs

P = 2 * CHUNK + 2 * MIN_BLOCK + 7  # two lanes of several pieces each


@pytest.fixture(autouse=True)
def _fresh_setting(monkeypatch):
    """Each test reads NNPIPE_KERNELS afresh (the choice is cached per value)."""
    monkeypatch.delenv(fused.SETTING, raising=False)
    fused._resolve.cache_clear()
    yield
    fused._resolve.cache_clear()


def gradients(rng: np.random.Generator, size: int, dtype) -> np.ndarray:
    """Gradients over 15 orders of magnitude, signs mixed, some exactly 0 (the rounding of every
    range is exercised, tiny and large)."""
    g = rng.standard_normal(size) * 10.0 ** rng.integers(-12, 3, size)
    g[rng.random(size) < 0.05] = 0.0
    return g.astype(dtype)


OPTIMIZERS = {
    "adam": Adam(), "adamw": AdamW(weight_decay=0.01), "nadam": NAdam(),
    "sgd-momentum": SGD(lr=0.1, momentum=0.9), "sgd-nesterov": SGD(lr=0.1, momentum=0.9,
                                                                  nesterov=True),
    "rmsprop": RMSprop(), "rmsprop-centered-momentum": RMSprop(centered=True, momentum=0.9),
    "adagrad": Adagrad(lr_decay=0.01, initial_accumulator_value=0.1)}


def descend(monkeypatch, kernels: str, optimizer, dtype, size: int = 20_011, steps: int = 30,
            lanes: Lanes | None = None) -> list[np.ndarray]:
    """The parameters and every state vector after ``steps`` steps of ``optimizer`` with the
    ``kernels`` chosen, from the same start and gradients."""
    monkeypatch.setenv(fused.SETTING, kernels)
    rng = np.random.default_rng(7)
    params = rng.standard_normal(size).astype(dtype)
    state = optimizer.init_state(params)
    if lanes is not None:
        state["_lanes"] = lanes
    for _ in range(steps):
        optimizer.step(params, gradients(rng, size, dtype), state, optimizer.lr)
    return [params] + [v for k, v in sorted(state.items()) if not k.startswith("_")]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_each_fused_update_is_the_numpy_chain_bit_for_bit(monkeypatch, name, dtype):
    optimizer = OPTIMIZERS[name]
    calls, real = [], fused._fused
    monkeypatch.setattr(fused, "_fused", lambda *a: (calls.append(a[0]), real(*a)))
    numpy_result = descend(monkeypatch, "numpy", optimizer, dtype)
    assert not calls  # the NumPy chains ran
    fused_result = descend(monkeypatch, "numba", optimizer, dtype)
    assert calls  # the compiled kernel ran
    assert numpy_result[0].dtype == dtype and len(numpy_result) == len(fused_result)
    for expected, got in zip(numpy_result, fused_result):
        assert expected.tobytes() == got.tobytes()  # bit for bit: zeros' signs, NaN payloads
    start = descend(monkeypatch, "numpy", optimizer, dtype, steps=0)[0]
    assert not np.array_equal(numpy_result[0], start)  # the steps moved the weights


@pytest.mark.parametrize("name", ["adam", "rmsprop-centered-momentum"])
def test_fused_updates_on_two_lanes_equal_the_numpy_chain_on_one(monkeypatch, name):
    one = descend(monkeypatch, "numpy", OPTIMIZERS[name], np.float32, size=P, steps=4)
    two = descend(monkeypatch, "numba", OPTIMIZERS[name], np.float32, size=P, steps=4,
                  lanes=Lanes(2, adapt=False))
    assert all(a.tobytes() == b.tobytes() for a, b in zip(one, two))


def test_an_unusual_layout_gets_the_numpy_chain():
    """A strided view, or a dtype the kernels were not built for, goes through NumPy."""
    rng = np.random.default_rng(1)
    base = rng.standard_normal(2 * 1000).astype(np.float32)
    strided, copy, before = base[::2], base[::2].copy(), base[::2].copy()
    g = rng.standard_normal(1000).astype(np.float32)
    state = [np.zeros(1000, np.float32) for _ in range(4)]
    update = fused.chain("adam", _adam_chain)
    assert update is not _adam_chain
    update(strided, g, state[0], state[1], np.empty(1000, np.float32), 0.9, 0.999, 1e-8, 1e-3)
    _adam_chain(copy, g, state[2], state[3], np.empty(1000, np.float32), 0.9, 0.999, 1e-8, 1e-3)
    assert strided.tobytes() == copy.tobytes() and not np.array_equal(copy, before)
    half = np.ones(8, np.float16)
    update(half, half.copy(), np.zeros(8, np.float16), np.zeros(8, np.float16),
           np.empty(8, np.float16), 0.9, 0.999, 1e-8, 0.5)
    assert np.all(half == np.float16(0.5))


def test_the_setting_chooses_the_kernels(monkeypatch):
    assert fused.chosen() == "numba"  # unset, numba installed
    assert fused.chain("adam", _adam_chain) is not _adam_chain
    for value, expected in [("numpy", "numpy"), ("NumPy ", "numpy"), ("numba", "numba")]:
        monkeypatch.setenv(fused.SETTING, value)
        assert fused.chosen() == expected
    monkeypatch.setenv(fused.SETTING, "numpy")
    assert fused.chain("adam", _adam_chain) is _adam_chain
    monkeypatch.setenv(fused.SETTING, "fast")
    with pytest.raises(fused.KernelsSettingError, match="NNPIPE_KERNELS='fast': must be one of"):
        fused.chosen()


@pytest.mark.parametrize("broken", [None, "numpy.core.multiarray failed to import"],
                         ids=["not-installed", "built-for-another-numpy"])
def test_without_numba_unset_means_numpy_and_asking_for_it_is_an_error(monkeypatch, broken):
    if broken is None:
        monkeypatch.setitem(sys.modules, "numba", None)  # import numba: ImportError
    else:
        real_import = __import__

        def failing(name, *args, **kwargs):
            if name == "numba":
                raise ImportError(broken + "\nmore lines")
            return real_import(name, *args, **kwargs)

        monkeypatch.setattr("builtins.__import__", failing)
    assert fused.chosen() == "numpy"
    assert fused.chain("adam", _adam_chain) is _adam_chain
    monkeypatch.setenv(fused.SETTING, "numba")
    with pytest.raises(fused.KernelsSettingError) as caught:
        fused.chosen()
    message = str(caught.value)
    assert message.startswith("NNPIPE_KERNELS=numba: numba cannot be imported (")
    assert "pip install 'nnpipe[fast]'" in message and "\n" not in message
    if broken:
        assert broken in message


def test_a_kernel_numba_cannot_build_is_one_line_naming_the_way_around(monkeypatch):
    def cannot_build(*args):
        raise TypeError("Failed in nopython mode pipeline (step: lowering)\nmany more lines")

    monkeypatch.setattr(fused, "_compiled", lambda: {"adam": cannot_build})
    params = np.zeros(8, np.float32)
    with pytest.raises(RunError) as caught:
        fused.chain("adam", _adam_chain)(params, params.copy(), params.copy(), params.copy(),
                                          params.copy(), 0.9, 0.999, 1e-8, 1e-3)
    assert str(caught.value) == (
        "numba could not build the adam update (TypeError: Failed in nopython mode pipeline "
        "(step: lowering)); set NNPIPE_KERNELS=numpy to update with NumPy")


@pytest.mark.parametrize("optimizer", [{"kind": "adam", "lr": 0.01},
                                       {"kind": "adamw", "lr": 0.01, "weight_decay": 0.1}])
def test_a_training_run_is_the_same_bit_for_bit_either_way(monkeypatch, optimizer):
    data = blobs(400)
    spec = MLPTrain(hidden=[16, 8], epochs=3, batch_size=16, optimizer=optimizer, seed=3)
    calls, real = [], fused._fused
    monkeypatch.setattr(fused, "_fused", lambda *a: (calls.append(a[0]), real(*a)))
    models = {}
    for kernels in ("numpy", "numba"):
        monkeypatch.setenv(fused.SETTING, kernels)
        models[kernels] = spec.run({"data": data}, StageContext(seed=0))["model"]
        assert bool(calls) == (kernels == "numba")  # the setting chose the kernel
    assert models["numpy"].params.tobytes() == models["numba"].params.tobytes()


GOOD = Path(__file__).resolve().parents[2] / "data" / "good" / "pipeline.yaml"


def test_a_bad_setting_is_one_line_exit_2_before_training(tmp_path):
    env = {**os.environ, fused.SETTING: "fastest"}
    program = "from pipeline.cli.main import app; app(prog_name='nnpipe')"
    result = subprocess.run([sys.executable, "-c", program, "run", str(GOOD), "--out",
                             str(tmp_path / "run")], capture_output=True, text=True, timeout=120,
                            env=env, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == ["error: NNPIPE_KERNELS='fastest': must be one of numpy, numba (or unset)"]
    assert not (tmp_path / "run").exists()
