"""The bad-input corpus (tests/data/bad/): every file gives exit status 2 and one line naming the
file (and line or field) and the problem, with no traceback; ``--debug`` shows the traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app

DATA = Path(__file__).resolve().parent / "data"
BAD, GOOD = DATA / "bad", DATA / "good"

#: Bad IDX files: (which file(s) of the tiny pipeline they replace, fragments the error must hold).
IDX_CASES = {
    "truncated-gzip.idx.gz": ("train_images", ["corrupt or truncated gzip"]),
    "wrong-magic.idx": ("train_images", ["not an IDX file", "magic number"]),
    "unknown-type-code.idx": ("train_images", ["unknown IDX type code 0x0A"]),
    "dims-larger-than-file.idx": ("train_images", ["truncated IDX file",
                                                   "header declares 47040000 bytes", "file has 16"]),
    "zero-items-images.idx": ("train_images+train_labels", ["holds no items"]),
    "zero-items-labels.idx": ("train_labels", ["holds 60 images but", "holds 0 labels"]),
    "fewer-labels.idx": ("train_labels", ["holds 60 images but", "holds 59 labels"]),
    "labels-out-of-range.idx": ("train_labels", ["label 12 out of range 0..9"]),
    "float-with-nan.idx": ("train_images", ["1 of 960 values are NaN or infinite"]),
    "directory.idx": ("test_images", ["is a directory"]),
    "255-dimensions.idx": ("train_images", ["IDX header declares 255 dimensions; at most 16"]),
    "trailing-garbage.idx": ("train_images", ["IDX file too long", "7 extra"]),
    "zero-sample-dim.idx": ("train_images", ["samples of shape (0, 4) hold no values"]),
    "claims-2-31-images.idx.gz": ("train_images", ["IDX header declares (2147483648, 28, 28)",
                                                   "of memory is available"]),
}

#: Bad pipeline files: (fragments the error must hold, beside the file's name).
PIPELINE_CASES = {
    "yaml-syntax-error.yaml": [":4:", "YAML syntax error"],
    "wrong-type.yaml": [":7:", "stages[2].epochs: must be a valid integer", "'many'"],
    "unknown-field.yaml": [":5:", "stages[1].methd: unknown field (did you mean 'method'?)"],
    "unknown-kind.yaml": [":4:", "unknown stage kind 'normalise'", "did you mean 'normalize'"],
    "negative-batch-size.yaml": [":8:", "stages[3].batch_size: must be greater than 0 (got -4)"],
    "input-nothing-produces.yaml": ["stages[1] (evaluate) needs 'model'",
                                    "no earlier stage produces"],
    "augment-bad-scale.yaml": [":6:", "stages[2].scale: a range [lo, hi] needs 0 < lo <= hi",
                               "[1.3, 0.7]"],
    "augment-fresh-validation.yaml": ["stages[2]", "split 'validation' cannot be fresh"],
    "augment-originals-not-fresh.yaml": ["stages[2]", "originals: false", "needs fresh: true"],
    "billion-laughs.yaml": [":1:1:", "expands to more than 50000 values"],
    "recursive-alias.yaml": [":1:9:", "an alias refers to a node that contains it"],
    "deep-nesting.yaml": [":1:108:", "nested more than 100 levels deep"],
    "duplicate-key.yaml": [":5:5:", "duplicate key 'method' (first given on line 4)"],
    "duplicate-key.json": [":3:", "duplicate key 'name'"],
}

TINY = """\
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
    batch_size: 16
  - kind: evaluate
"""


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()  # stdout may hold the stages that ran before
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def test_every_corpus_file_has_a_case():
    assert sorted(p.name for p in BAD.iterdir()) == sorted([*IDX_CASES, *PIPELINE_CASES])


def test_the_good_fixtures_run(tmp_path):
    result = invoke("run", str(GOOD / "pipeline.yaml"), "--out", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("name", sorted(IDX_CASES))
def test_bad_idx_file(name, tmp_path):
    replaced, fragments = IDX_CASES[name]
    files = {key: GOOD / f"{key.replace('_', '-')}.idx"
             for key in ("train_images", "train_labels", "test_images", "test_labels")}
    for key in replaced.split("+"):  # zero-items replaces images and labels at once
        files[key] = BAD / name.replace("-images", "-" + key.split("_")[1])
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(TINY.format(**files))
    result = invoke("run", str(pipeline), "--out", str(tmp_path / "run"))
    assert_one_line_error(result, name, *fragments)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("name", sorted(PIPELINE_CASES))
def test_bad_pipeline_file(name, tmp_path):
    result = invoke("run", str(BAD / name), "--out", str(tmp_path / "run"))
    assert_one_line_error(result, str(BAD / name), *PIPELINE_CASES[name])


def test_override_of_a_field_that_does_not_exist(tmp_path):
    result = invoke("run", str(GOOD / "pipeline.yaml"), "--set", "mlp_train.epochz=3")
    assert_one_line_error(result, "pipeline.yaml", "stages[3].epochz: unknown field",
                          "did you mean 'epochs'", "--set mlp_train.epochz=3")


def test_debug_shows_the_traceback(tmp_path):
    result = invoke("--debug", "run", str(BAD / "unknown-kind.yaml"))
    assert result.exit_code != 0
    assert result.exc_info is not None and result.exc_info[0].__name__ == "ConfigError"
