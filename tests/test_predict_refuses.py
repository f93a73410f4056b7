"""``nnpipe predict`` is never silently wrong: a run directory whose normaliser is missing or
inconsistent, whose weights are not finite, or whose model.json does not match model.npz, is
refused with exit status 2 and one line naming the file; a sound copy still predicts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from pipeline.cli import app

GOOD = Path(__file__).resolve().parent / "data" / "good"
IMAGES = GOOD / "test-images.idx"


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    """A run of the tiny pipeline with a standardising normaliser (per-feature arrays)."""
    root = tmp_path_factory.mktemp("predict-refuses")
    document = yaml.safe_load((GOOD / "pipeline.yaml").read_text())
    document["stages"][1]["method"] = "standardize"
    (root / "p.yaml").write_text(yaml.safe_dump(document))
    for name in GOOD.glob("*.idx"):
        shutil.copy(name, root)
    result = CliRunner().invoke(app, ["run", str(root / "p.yaml"), "--out", str(root / "run")])
    assert result.exit_code == 0, result.output
    return root / "run"


def _npz(path: Path, **changes) -> None:
    """Rewrite ``path`` with some arrays changed (None removes one)."""
    with np.load(path) as npz:
        arrays = {name: npz[name] for name in npz.files}
    for name, value in changes.items():
        if value is None:
            arrays.pop(name)
        else:
            arrays[name] = value(arrays.get(name)) if callable(value) else value
    np.savez(path, **arrays)


def _json(path: Path, change) -> None:
    value = json.loads(path.read_text())
    path.write_text(json.dumps(change(value)))


def _write(file: str, text: str):
    """A damage: ``file`` replaced by ``text``."""
    return lambda d: (d / file).write_text(text)


def _set(file: str, **fields):
    """A damage: ``fields`` set in the JSON object in ``file``."""
    return lambda d: _json(d / file, lambda m: {**m, **fields})


def _drop(file: str, field: str):
    """A damage: ``field`` removed from the JSON object in ``file``."""
    return lambda d: _json(d / file, lambda m: {k: v for k, v in m.items() if k != field})


def _with(array, index, value):
    array = np.array(array, dtype=np.float64)
    array.flat[index] = value
    return array


#: How a run directory is damaged -> (the file the message must name, a fragment of it).
DAMAGE = {
    "normalizer-json-missing": (lambda d: (d / "normalizer.json").unlink(),
                                "normalizer.json", "no such file"),
    "normalizer-npz-missing": (lambda d: (d / "normalizer.npz").unlink(),
                               "normalizer.npz", "no such file"),
    "both-normalizer-files-missing": (
        lambda d: [(d / n).unlink() for n in ("normalizer.json", "normalizer.npz")],
        "normalizer.json", "no such file"),
    "normalizer-json-not-json": (_write("normalizer.json", "{oops"),
                                 "normalizer.json", "not a saved normalizer"),
    "normalizer-json-a-list": (_write("normalizer.json", "[1, 2]"),
                               "normalizer.json", "expected an object, got list"),
    "normalizer-field-missing": (_drop("normalizer.json", "method"),
                                 "normalizer.json", "method None"),
    "normalizer-feature-shape-wrong": (_set("normalizer.json", feature_shape=[4]),
                                       "normalizer.npz", "do not match feature_shape (4,)"),
    "normalizer-feature-shape-not-a-list": (
        _set("normalizer.json", feature_shape="4x4"),
        "normalizer.json", "feature_shape must be a list"),
    "std-zero": (lambda d: _npz(d / "normalizer.npz", scale=lambda s: _with(s, 5, 0.0)),
                 "normalizer.npz", "scale has 1 value(s) of 0 or below"),
    "scale-negative": (lambda d: _npz(d / "normalizer.npz", scale=lambda s: -s),
                       "normalizer.npz", "of 0 or below"),
    "offset-nan": (lambda d: _npz(d / "normalizer.npz", offset=lambda o: _with(o, 0, np.nan)),
                   "normalizer.npz", "offset has 1 NaN or infinite value(s)"),
    "scale-inf": (lambda d: _npz(d / "normalizer.npz", scale=lambda s: _with(s, 3, np.inf)),
                  "normalizer.npz", "scale has 1 NaN or infinite"),
    "normalizer-array-missing": (lambda d: _npz(d / "normalizer.npz", scale=None),
                                 "normalizer.npz", "no array scale"),
    "normalizer-arrays-wrong-shape": (
        lambda d: _npz(d / "normalizer.npz", offset=np.zeros((3, 3)), scale=np.ones((3, 3))),
        "normalizer.npz", "offset (3, 3) and scale (3, 3) do not match"),
    "normalizer-of-another-model": (
        lambda d: (_npz(d / "normalizer.npz", offset=np.zeros(9), scale=np.ones(9)),
                   _json(d / "normalizer.json", lambda m: {**m, "feature_shape": [9]})),
        "normalizer.npz", "model.json expects 16 values"),
    "weights-nan": (lambda d: _npz(d / "model.npz", W0=lambda w: _with(w, 7, np.nan)),
                    "model.npz", "W0 has 1 NaN or infinite weight(s)"),
    "bias-inf": (lambda d: _npz(d / "model.npz", b1=lambda b: _with(b, 0, -np.inf)),
                 "model.npz", "b1 has 1 NaN or infinite"),
    "weights-missing": (lambda d: _npz(d / "model.npz", W1=None), "model.npz", "no array W1"),
    "weights-extra": (lambda d: _npz(d / "model.npz", W2=np.zeros((10, 10))),
                      "model.npz", "arrays W2 that model.json (16-8-10) has no layer for"),
    "weights-wrong-shape": (lambda d: _npz(d / "model.npz", W0=np.zeros((16, 9))),
                            "model.npz", "W0 has shape (16, 9); model.json implies (16, 8)"),
    "weights-not-numbers": (lambda d: _npz(d / "model.npz", W0=np.full((16, 8), "x")),
                            "model.npz", "W0 holds <U1 values"),
    "model-json-sizes-differ": (_set("model.json", sizes=[16, 9, 10]),
                                "model.npz", "W0 has shape (16, 8); model.json implies (16, 9)"),
    "model-json-a-list": (_write("model.json", "[16, 8, 10]"),
                          "model.json", "expected an object with sizes"),
    "model-json-field-missing": (_drop("model.json", "loss"),
                                 "model.json", "expected an object with"),
    "model-json-sizes-not-ints": (_set("model.json", sizes=[16, "8", 10]),
                                  "model.json", "sizes must be a list of layer widths"),
    "model-json-bad-dtype": (_set("model.json", dtype="int8"),
                             "model.json", "dtype must be one of"),
    "model-npz-missing": (lambda d: (d / "model.npz").unlink(), "model.npz", "no such file"),
    "model-npz-not-a-zip": (lambda d: (d / "model.npz").write_bytes(b"PK\x03\x04garbage"),
                            "model.npz", "cannot read"),
    "normalizer-npz-not-a-zip": (lambda d: (d / "normalizer.npz").write_bytes(b"PK\x03\x04"),
                                 "normalizer.npz", "not a saved normalizer"),
    "model-json-missing": (lambda d: (d / "model.json").unlink(), "model.json", "no such file"),
}


def test_the_sound_run_predicts(saved_run):
    result = CliRunner().invoke(app, ["predict", str(saved_run), str(IMAGES),
                                      "--labels", str(GOOD / "test-labels.idx")])
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.stdout


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_a_damaged_run_directory_is_refused(saved_run, tmp_path, case):
    damage, file, fragment = DAMAGE[case]
    run = tmp_path / "run"
    shutil.copytree(saved_run, run)
    damage(run)
    result = CliRunner().invoke(app, ["predict", str(run), str(IMAGES)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {run / file}"), result.output
    assert fragment in lines[0], (fragment, lines[0])
    assert result.stdout == ""  # not a single probability printed
