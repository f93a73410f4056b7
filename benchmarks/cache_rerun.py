"""Cached reruns on the full Fashion-MNIST pipeline: cold run, unchanged rerun, four changes.

Times whole ``nnpipe run`` processes (Python start-up and imports included) with a fresh cache
folder, on a private copy of the data (so the script can touch and rewrite an input file):

    .venv/bin/python benchmarks/cache_rerun.py [--data ../shared/datasets/fashion-mnist] [--epochs 3]

Prints each run's wall time and which stages ran, and the unchanged rerun's share of the cold
run's time (the issue asks for at most 5 %).
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")

PIPELINE = """\
name: fashion-cache-bench
seed: 0
stages:
  - kind: idx_reader
    train: {{images: data/train-images-idx3-ubyte.gz, labels: data/train-labels-idx1-ubyte.gz}}
    test: {{images: data/t10k-images-idx3-ubyte.gz, labels: data/t10k-labels-idx1-ubyte.gz}}
    class_names: [T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot]
  - kind: split
    validation_fraction: 0.1
    stratify: true
  - kind: normalize
    method: scale
  - kind: one_hot
    classes: 10
  - kind: mlp_train
    hidden: [256, 128]
    activation: relu
    loss: cross_entropy
    init: he_normal
    optimizer: {{kind: adam, lr: 0.001}}
    batch_size: 128
    epochs: {epochs}
  - kind: evaluate
    split: test
"""


def nnpipe_command() -> list[str]:
    script = Path(sys.executable).with_name("nnpipe")
    return [str(script)] if script.exists() else [sys.executable, "-m", "pipeline.cli"]


def run(pipeline: Path, cache: Path, out: Path, *overrides: str) -> tuple[float, list[str], str]:
    """Run ``nnpipe run`` once; return wall seconds, the ids of the stages that ran, stdout."""
    args = [*nnpipe_command(), "run", str(pipeline), "--cache-dir", str(cache), "--out", str(out)]
    for override in overrides:
        args += ["--set", override]
    started = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"nnpipe run failed ({done.returncode}):\n{done.stderr}")
    ran = [line.split()[2] for line in done.stdout.splitlines()
           if line.strip().startswith("ran ") and "stages[" in line]
    return seconds, ran, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = Path(os.environ.get("NNPIPE_DATA", "../shared/datasets")) / "fashion-mnist"
    parser.add_argument("--data", type=Path, default=default_data)
    parser.add_argument("--epochs", type=int, default=3)
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="nnpipe-cache-bench-") as tmp:
        root = Path(tmp)
        (root / "data").mkdir()
        for name in FILES:
            shutil.copyfile(options.data / name, root / "data" / name)
        pipeline = root / "fashion.yaml"
        pipeline.write_text(PIPELINE.format(epochs=options.epochs))
        cache, out = root / "cache", root / "run"

        rows = []
        cold, ran, _ = run(pipeline, cache, out)
        rows.append(("cold run (empty cache)", cold, ran))
        warm, ran, stdout = run(pipeline, cache, out)
        rows.append(("unchanged rerun", warm, ran))
        rows.append(("evaluate.split=validation", *run(pipeline, cache, out,
                                                        "evaluate.split=validation")[:2]))
        rows.append((f"mlp_train.epochs={options.epochs + 1}",
                     *run(pipeline, cache, out, f"mlp_train.epochs={options.epochs + 1}")[:2]))
        images = root / "data" / FILES[0]
        os.utime(images, (time.time() + 60, time.time() + 60))  # touched: same content
        rows.append(("input file touched", *run(pipeline, cache, out)[:2]))
        raw = gzip.decompress(images.read_bytes())
        images.write_bytes(gzip.compress(raw, compresslevel=1, mtime=0))  # other bytes
        rows.append(("input file content changed", *run(pipeline, cache, out)[:2]))

        print(f"Fashion-MNIST, {options.epochs} epochs, whole `nnpipe run` processes")
        for label, seconds, ran in rows:
            print(f"  {label:<28} {seconds:7.2f}s  ran: {', '.join(ran) or 'nothing'}")
        print(f"unchanged rerun / cold run = {warm:.2f}s / {cold:.2f}s = {warm / cold:.1%}")
        print("unchanged rerun output:")
        print("\n".join(f"    {line}" for line in stdout.splitlines()))


if __name__ == "__main__":
    main()
