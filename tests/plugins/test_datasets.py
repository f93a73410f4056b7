"""Registered datasets: where they are looked for, what they declare, and their checksums."""

from __future__ import annotations

import hashlib
import os
from importlib import metadata
from pathlib import Path

import pytest

from pipeline.errors import DataError
from plugins.datasets import FASHION_MNIST, MNIST_10K, DatasetSource

FILES = {"train": ("a-images", "a-labels"), "test": ("b-images", "b-labels")}
# Where the project's Makefile points NNPIPE_DATA; Fashion-MNIST is not vendored.
SHARED = Path(os.environ.get("NNPIPE_DATA", Path(__file__).resolve().parents[3] / "shared" / "datasets"))


def fill(folder: Path, names=("a-images", "a-labels", "b-images", "b-labels")) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"x")
    return folder


def source(tmp_path: Path) -> DatasetSource:
    return DatasetSource(name="toy", files=FILES, bundled_dir=tmp_path / "bundled",
                         system_dirs=(tmp_path / "sys1", tmp_path / "sys2"))


def test_looks_in_data_dir_then_bundled_then_system_dirs(tmp_path):
    toy = source(tmp_path)
    fill(tmp_path / "sys2")
    assert toy.locate(tmp_path / "data") == tmp_path / "sys2"
    fill(tmp_path / "sys1")
    assert toy.locate(tmp_path / "data") == tmp_path / "sys1"
    fill(tmp_path / "bundled")
    assert toy.locate(tmp_path / "data") == tmp_path / "bundled"
    assert toy.locate(None) == tmp_path / "bundled"
    fill(tmp_path / "data" / "toy")
    assert toy.locate(tmp_path / "data") == tmp_path / "data" / "toy"


def test_a_folder_missing_a_file_is_skipped(tmp_path):
    toy = source(tmp_path)
    fill(tmp_path / "data" / "toy", names=("a-images", "a-labels"))
    fill(tmp_path / "sys1")
    assert toy.locate(tmp_path / "data") == tmp_path / "sys1"


def test_not_found_lists_where_it_looked_and_names_the_setting(tmp_path):
    toy = source(tmp_path)
    fill(tmp_path / "bundled", names=("a-images",))
    with pytest.raises(DataError) as caught:
        toy.locate(tmp_path / "data")
    message = str(caught.value)
    assert "\n" not in message and "dataset 'toy' not found" in message
    for folder in ("data/toy", "bundled", "sys1", "sys2"):
        assert str(tmp_path / folder) in message
    assert "missing a-labels, b-images, b-labels" in message
    assert "NNPIPE_DATA" in message


def test_nowhere_to_look(tmp_path):
    with pytest.raises(DataError, match="NNPIPE_DATA"):
        DatasetSource(name="toy", files=FILES).locate(None)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_mnist_10k_is_bundled_with_its_checksums_and_provenance():
    folder = MNIST_10K.locate(None)
    assert folder == MNIST_10K.bundled_dir
    assert sorted(MNIST_10K.sha256) == sorted(MNIST_10K.file_names())
    for name, digest in MNIST_10K.sha256.items():
        assert sha256(folder / name) == digest, name
    MNIST_10K.verify(folder)
    readme = (folder / "README.md").read_text()
    assert "CC BY-SA 3.0" in readme and "MIT" in readme and "mnist` 1.1.0" in readme
    assert MNIST_10K.class_names == tuple(str(d) for d in range(10))


def test_verify_names_a_file_that_differs(tmp_path):
    toy = DatasetSource(name="toy", files=FILES, sha256={"a-images": "0" * 64})
    fill(tmp_path)
    with pytest.raises(DataError, match="a-images: sha256 .* does not match"):
        toy.verify(tmp_path)


def test_fashion_mnist_declaration():
    assert FASHION_MNIST.name == "fashion-mnist" and FASHION_MNIST.bundled_dir is None
    assert FASHION_MNIST.system_dirs == (Path("/usr/share/datasets/fashion-mnist"),)
    assert len(FASHION_MNIST.class_names) == 10 and FASHION_MNIST.class_names[9] == "Ankle boot"
    assert sorted(FASHION_MNIST.sha256) == sorted(FASHION_MNIST.file_names())


@pytest.mark.skipif(not (SHARED / "fashion-mnist").is_dir(), reason="Fashion-MNIST is not at hand")
def test_fashion_mnist_checksums_match_the_shared_copy():
    FASHION_MNIST.verify(FASHION_MNIST.locate(SHARED))


def test_installed_entry_points_name_these_objects():
    # What pyproject.toml registers, read straight from the installed distribution's metadata.
    found = {ep.name: ep for ep in metadata.entry_points(group="nnpipe.datasets")}
    assert found["mnist-10k"].load() is MNIST_10K
    assert found["fashion-mnist"].load() is FASHION_MNIST
