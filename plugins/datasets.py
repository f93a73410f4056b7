"""Registered datasets: where their IDX files are looked for, and what describes them.

A dataset plugin is a ``DatasetSource`` registered in the ``nnpipe.datasets`` entry-point group.
``idx_reader`` with ``dataset: NAME`` asks it to ``locate`` its files: first in the data directory
(``NNPIPE_DATA``, as ``<data_dir>/<name>/``), then in the folder bundled with the package, then in
system folders (where a Debian package installs them). When none holds the files and the dataset
has mirror URLs, they are downloaded into ``<data_dir>/<name>/`` (resumed, checksum-verified).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from pipeline.errors import DataError

_HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class DatasetSource:
    """A dataset made of IDX files, one images file and one labels file per split.

    Attributes:
        name: the registered name, also the folder name looked for under the data directory.
        files: split name -> (images file name, labels file name).
        bundled_dir: the folder shipped inside the package that holds the files, if any.
        system_dirs: further folders to look in (for example where an OS package installs them).
        class_names: a name per class index, if the classes have names.
        sha256: file name -> expected sha256 hex digest.
        urls: mirror base URLs the files can be downloaded from, tried in order.
    """

    name: str
    files: Mapping[str, tuple[str, str]]
    bundled_dir: Path | None = None
    system_dirs: tuple[Path, ...] = ()
    class_names: tuple[str, ...] | None = None
    sha256: Mapping[str, str] = field(default_factory=dict)
    urls: tuple[str, ...] = ()

    def file_names(self) -> list[str]:
        """Every file name of the dataset, images then labels, split by split."""
        return [name for pair in self.files.values() for name in pair]

    def candidates(self, data_dir: Path | None) -> list[Path]:
        """The folders ``locate`` looks in, in order."""
        folders = [Path(data_dir) / self.name] if data_dir is not None else []
        if self.bundled_dir is not None:
            folders.append(Path(self.bundled_dir))
        return folders + [Path(d) for d in self.system_dirs]

    def locate(self, data_dir: Path | None, progress=None) -> Path:
        """The first folder holding every file of the dataset, downloading them if need be.

        Looks in ``data_dir/<name>/``, then ``bundled_dir``, then ``system_dirs``; if none holds
        them all and the dataset has mirror URLs, downloads the missing files into
        ``data_dir/<name>/`` (``data_dir`` defaults to the per-user data folder).

        Raises:
            DataError: no folder holds them all and they cannot be downloaded; the message lists
                where it looked and why each folder did not do.
        """
        looked = []
        for folder in self.candidates(data_dir):
            missing = [f for f in self.file_names() if not (folder / f).is_file()]
            if not missing:
                return folder
            if not folder.is_dir():
                looked.append(f"{folder} (no such folder)")
            else:
                looked.append(f"{folder} (missing {', '.join(missing)})")
        if self.urls:
            return self.download(data_dir, progress)
        where = "; ".join(looked) or "nowhere (no data directory is set)"
        raise DataError(
            f"dataset {self.name!r} not found; looked in: {where}. Set NNPIPE_DATA to a folder "
            f"holding {self.name}/ with {', '.join(self.file_names())}"
        )

    def download(self, data_dir: Path | None, progress=None) -> Path:
        """Download the files missing from ``data_dir/<name>/`` from the mirrors; return it."""
        from pipeline.io.download import download
        from pipeline.io.settings import default_data_dir

        folder = Path(data_dir if data_dir is not None else default_data_dir()) / self.name
        for name in self.file_names():
            if not (folder / name).is_file():
                download(name, self.urls, self.sha256.get(name), folder, progress)
        return folder

    def verify(self, folder: Path) -> None:
        """Check the files in ``folder`` against ``sha256``.

        Raises:
            DataError: a file's digest differs from the registered one (naming the file).
        """
        for name in self.file_names():
            expected = self.sha256.get(name)
            if expected is None:
                continue
            digest = hashlib.sha256()
            with open(Path(folder) / name, "rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
            if digest.hexdigest() != expected:
                raise DataError(f"{Path(folder) / name}: sha256 {digest.hexdigest()} does not match "
                                f"the registered {expected} of dataset {self.name!r}")


#: The standard MNIST file names, used by both datasets below.
STANDARD_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

#: 10,000 real MNIST digits (8,000 train / 2,000 test) shipped with nnpipe: runs with no download.
MNIST_10K = DatasetSource(
    name="mnist-10k",
    files=STANDARD_FILES,
    bundled_dir=_HERE / "data" / "mnist-10k",
    class_names=tuple(str(digit) for digit in range(10)),
    sha256={
        "t10k-images-idx3-ubyte.gz": "06ee9f6b4324683146c0e229a8615fd88e01728aadd5a10eafee2db2c73f723a",
        "t10k-labels-idx1-ubyte.gz": "a52efbeb3f2fba94337a686e57a9f7ee85cd8b86dd3b7b366b68f4cb6b84fdf7",
        "train-images-idx3-ubyte.gz": "50524a705f9acef40986efae7b39d2b4db2a22f3d905837a0b0b4fe4fa9fb167",
        "train-labels-idx1-ubyte.gz": "8897aee74cd6310db29ad7533c2ac37b68b3b1138cdc79d0a2fc80d09de5500f",
    },
)

#: Zalando's Fashion-MNIST (60,000 train / 10,000 test); Debian's dataset-fashion-mnist installs it.
FASHION_MNIST = DatasetSource(
    name="fashion-mnist",
    files=STANDARD_FILES,
    system_dirs=(Path("/usr/share/datasets/fashion-mnist"),),
    class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    sha256={
        "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
        "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
        "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
        "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    },
    urls=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
)

#: The original MNIST (60,000 train / 10,000 test): its first host refuses downloads now, so it
#: comes from mirrors, checked against the original files' sha256.
MNIST = DatasetSource(
    name="mnist",
    files=STANDARD_FILES,
    class_names=tuple(str(digit) for digit in range(10)),
    sha256={
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    urls=("https://ossci-datasets.s3.amazonaws.com/mnist/",
          "https://storage.googleapis.com/cvdf-datasets/mnist/"),
)
