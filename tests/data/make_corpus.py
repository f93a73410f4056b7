"""Write the small IDX fixtures under tests/data/ (good/ and bad/): run it to regenerate them.

    python tests/data/make_corpus.py

Every file is deterministic; the bad ones each break one rule the reader or a stage enforces.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def idx(code: int, shape: tuple[int, ...], payload: bytes) -> bytes:
    """IDX bytes written by hand: magic, dims, payload."""
    return bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape) + payload


def main() -> None:
    rng = np.random.default_rng(0)
    good, bad = HERE / "good", HERE / "bad"
    good.mkdir(exist_ok=True)
    bad.mkdir(exist_ok=True)
    for split, n in (("train", 60), ("test", 20)):
        images = rng.integers(0, 256, (n, 4, 4), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        (good / f"{split}-images.idx").write_bytes(idx(0x08, (n, 4, 4), images.tobytes()))
        (good / f"{split}-labels.idx").write_bytes(idx(0x08, (n,), labels.tobytes()))

    train_images = (good / "train-images.idx").read_bytes()
    whole_gzip = gzip.compress(train_images, mtime=0)
    (bad / "truncated-gzip.idx.gz").write_bytes(whole_gzip[: len(whole_gzip) // 2])
    (bad / "wrong-magic.idx").write_bytes(b"\x08\x03" + train_images[2:])
    (bad / "unknown-type-code.idx").write_bytes(train_images[:2] + b"\x0a" + train_images[3:])
    # Declares 60,000 images of 28x28 (47 MB) but holds 16 bytes of data.
    (bad / "dims-larger-than-file.idx").write_bytes(idx(0x08, (60000, 28, 28), bytes(16)))
    (bad / "zero-items-images.idx").write_bytes(idx(0x08, (0, 4, 4), b""))
    (bad / "zero-items-labels.idx").write_bytes(idx(0x08, (0,), b""))
    (bad / "fewer-labels.idx").write_bytes(idx(0x08, (59,), bytes(59)))
    (bad / "labels-out-of-range.idx").write_bytes(idx(0x08, (60,), bytes([3] * 59 + [12])))
    floats = np.full((60, 4, 4), 0.5, dtype=">f4")
    floats[7, 1, 2] = np.nan
    (bad / "float-with-nan.idx").write_bytes(idx(0x0D, (60, 4, 4), floats.tobytes()))
    # Headers that claim what the file does not hold.
    (bad / "255-dimensions.idx").write_bytes(idx(0x08, (1,) * 255, b"\x00"))
    (bad / "trailing-garbage.idx").write_bytes(train_images + b"garbage")
    (bad / "zero-sample-dim.idx").write_bytes(idx(0x08, (60, 0, 4), b""))
    (bad / "claims-2-31-images.idx.gz").write_bytes(
        gzip.compress(idx(0x08, (2**31, 28, 28), bytes(4096)), mtime=0))
    pipeline_bombs(bad)
    folder = bad / "directory.idx"
    folder.mkdir(exist_ok=True)
    (folder / "README").write_text("A directory where an IDX file is expected.\n")


def pipeline_bombs(bad: Path) -> None:
    """Small pipeline files that expand, recurse, nest or repeat a key."""
    levels = [f'a0: &a0 [{", ".join(["lol"] * 9)}]']
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    (bad / "billion-laughs.yaml").write_text("\n".join(levels) + "\nstages: *a9\n")
    (bad / "recursive-alias.yaml").write_text("stages: &s\n  - *s\n")
    (bad / "deep-nesting.yaml").write_text("stages: " + "[" * 5000 + "]" * 5000 + "\n")
    (bad / "duplicate-key.yaml").write_text(
        "name: dup\nstages:\n  - kind: normalize\n    method: scale\n    method: standardize\n")
    (bad / "duplicate-key.json").write_text(
        '{"name": "dup",\n "stages": [{"kind": "normalize"}],\n "name": "again"}\n')


if __name__ == "__main__":
    main()
