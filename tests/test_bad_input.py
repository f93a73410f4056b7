"""Bad input through the real command line: exit status 2, one line naming the file, no traceback."""

from __future__ import annotations

import gzip
import textwrap
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from plugins.idx import write_idx

PIPELINE = """\
stages:
  - kind: idx_reader
    train: {{images: {train_images}, labels: {train_labels}}}
    test: {{images: {test_images}, labels: {test_labels}}}
  - kind: normalize
  - kind: one_hot
    classes: 10
  - kind: mlp_train
    hidden: [8]
    epochs: 1
    batch_size: {batch_size}
  - kind: evaluate
"""


def make_files(folder: Path, n_train=40, n_test=20) -> dict[str, Path]:
    """Four small valid IDX files (random 4x4 images, labels 0-9)."""
    rng = np.random.default_rng(0)
    files = {}
    for split, n in (("train", n_train), ("test", n_test)):
        files[f"{split}_images"] = folder / f"{split}-images.idx"
        files[f"{split}_labels"] = folder / f"{split}-labels.idx"
        write_idx(files[f"{split}_images"], rng.integers(0, 256, (n, 4, 4), dtype=np.uint8))
        write_idx(files[f"{split}_labels"], rng.integers(0, 10, n, dtype=np.uint8))
    return files


def run_cli(folder: Path, files: dict[str, Path], batch_size=8, text=None):
    path = folder / "pipeline.yaml"
    path.write_text(text if text is not None else
                    PIPELINE.format(batch_size=batch_size, **{k: v.name for k, v in files.items()}))
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(folder / "run")])
    return path, result


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def test_valid_files_run(tmp_path):
    _, result = run_cli(tmp_path, make_files(tmp_path))
    assert result.exit_code == 0, result.output


def test_truncated_idx_file(tmp_path):
    files = make_files(tmp_path)
    data = files["train_images"].read_bytes()
    files["train_images"].write_bytes(data[:-7])
    _, result = run_cli(tmp_path, files)
    assert_one_line_error(result, "train-images.idx", "truncated")


def test_wrong_magic_number(tmp_path):
    files = make_files(tmp_path)
    data = bytearray(files["test_labels"].read_bytes())
    data[0] = 0x12
    files["test_labels"].write_bytes(bytes(data))
    _, result = run_cli(tmp_path, files)
    assert_one_line_error(result, "test-labels.idx", "magic")


def test_images_and_labels_of_different_counts(tmp_path):
    files = make_files(tmp_path)
    write_idx(files["train_labels"], np.zeros(39, dtype=np.uint8))
    _, result = run_cli(tmp_path, files)
    assert_one_line_error(result, "train-images.idx", "train-labels.idx", "40", "39")


def test_yaml_syntax_error(tmp_path):
    path, result = run_cli(tmp_path, {}, text="stages:\n  - kind: idx_reader\n   dataset: [x\n")
    assert_one_line_error(result, str(path), "YAML syntax error")


def test_unknown_stage_kind(tmp_path):
    path, result = run_cli(tmp_path, {}, text="stages:\n  - kind: mlp_trian\n")
    assert_one_line_error(result, f"{path}:2", "unknown stage kind 'mlp_trian'",
                          "did you mean 'mlp_train'", "idx_reader")


def test_misspelled_field(tmp_path):
    text = "stages:\n  - kind: idx_reader\n    dataset: mnist-10k\n    flaten: true\n"
    path, result = run_cli(tmp_path, {}, text=text)
    assert_one_line_error(result, f"{path}:4", "stages[0].flaten", "did you mean 'flatten'")


def test_negative_batch_size(tmp_path):
    files = make_files(tmp_path)
    path, result = run_cli(tmp_path, files, batch_size=-4)
    assert_one_line_error(result, f"{path}:11", "stages[3].batch_size: must be greater than 0")
