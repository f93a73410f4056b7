"""Cached reruns on the full Fashion-MNIST pipeline: cold run, unchanged rerun, four changes.

Times whole ``nnpipe run`` processes (Python start-up and imports included) with a fresh cache
folder, on a private copy of the data (so the script can touch and rewrite an input file):

    .venv/bin/python benchmarks/cache_rerun.py [--data ../shared/datasets/fashion-mnist] [--epochs 3]

Prints each run's wall time and which stages ran, and the unchanged rerun's share of the cold
run's time (the issue asks for at most 5 %). Then what checking the cache entries' content costs
an unchanged rerun (the issue asks for under 10 % of it): the seconds spent in
``StageCache.verify`` inside the process, for the first rerun after the cold run (entries whose
stamp was taken within a timestamp tick of their write are hashed once), for later reruns (the
stamps vouch), and with ``NNPIPE_CACHE_VERIFY=always`` (every entry hashed on every load), each
the fastest and the median of ``--repeats`` interleaved runs, with the CPU and BLAS kernel.
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


#: Runs ``nnpipe`` with ``StageCache.verify`` timed; prints ``verify-seconds S`` on stderr at exit.
TIMED = """
import atexit, sys, time
from pipeline.engine import cache
spent = [0.0]
verify = cache.StageCache.verify
def timed(self, key):
    started = time.perf_counter()
    try:
        return verify(self, key)
    finally:
        spent[0] += time.perf_counter() - started
cache.StageCache.verify = timed
atexit.register(lambda: print(f"verify-seconds {spent[0]:.4f}", file=sys.stderr))
from pipeline.cli import app
sys.argv = ["nnpipe", *sys.argv[1:]]
app()
"""


def timed_rerun(pipeline: Path, cache: Path, out: Path, always: bool,
                overrides: tuple[str, ...] = ()) -> tuple[float, float]:
    """(wall seconds of an unchanged rerun, seconds of it spent checking cache entries)."""
    env = dict(os.environ)
    env.pop("NNPIPE_CACHE_VERIFY", None)
    if always:
        env["NNPIPE_CACHE_VERIFY"] = "always"
    args = [sys.executable, "-c", TIMED, "run", str(pipeline), "--cache-dir", str(cache),
            "--out", str(out), *(a for o in overrides for a in ("--set", o))]
    started = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    recomputed = [line for line in done.stdout.splitlines()
                  if line.strip().startswith("ran ") and "stages[" in line]
    if done.returncode != 0 or recomputed:
        sys.exit(f"timed rerun failed or recomputed ({done.returncode}):\n{done.stderr}")
    spent = float(done.stderr.rsplit("verify-seconds ", 1)[1].split()[0])
    return seconds, spent


def machine() -> str:
    """The CPU model and the BLAS kernel numpy uses, for the figures' conditions."""
    import numpy  # noqa: F401  (loads the BLAS library threadpoolctl reports)
    from threadpoolctl import threadpool_info

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text()
                .splitlines() if line.startswith("model name")), "unknown CPU")
    blas = [f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} "
            f"({i.get('num_threads')} threads)" for i in threadpool_info()
            if i.get("user_api") == "blas"]
    return f"{cpu}, {os.cpu_count()} cores; BLAS: {', '.join(blas) or 'none found'}"


def check_cost(pipeline: Path, cache: Path, out: Path, repeats: int,
               overrides: tuple[str, ...] = ()) -> None:
    """Print what content checking costs unchanged reruns, right after a cold run."""
    import statistics

    first = timed_rerun(pipeline, cache, out, False, overrides)
    steady: list[tuple[float, float]] = []
    always: list[tuple[float, float]] = []
    for _ in range(repeats):  # interleaved: the machine's speed drifts between repeats
        steady.append(timed_rerun(pipeline, cache, out, False, overrides))
        always.append(timed_rerun(pipeline, cache, out, True, overrides))
    entries = sum(p.stat().st_size for p in (cache / "joblib").rglob("output.pkl"))
    print(f"content checks on unchanged reruns ({entries / 2**20:.0f} MiB of entries; "
          f"{machine()}):")
    for label, rows in (("first rerun after the cold run", [first]),
                        ("later reruns (stamps vouch)", steady),
                        ("NNPIPE_CACHE_VERIFY=always", always)):
        walls, checks = [w for w, _ in rows], [c for _, c in rows]
        best = min(rows)
        print(f"  {label:<32} wall {best[0]:6.2f}s (median {statistics.median(walls):5.2f}s)  "
              f"checking {best[1] * 1000:7.1f} ms (median {statistics.median(checks) * 1000:6.1f}"
              f" ms) = {best[1] / best[0]:5.1%} of the rerun")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = Path(os.environ.get("NNPIPE_DATA", "../shared/datasets")) / "fashion-mnist"
    parser.add_argument("--data", type=Path, default=default_data)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5, help="interleaved timed reruns")
    parser.add_argument("--checks-of", type=Path, metavar="PIPELINE",
                        help="only measure the content checks, on this pipeline file "
                             "(e.g. examples/fashion-mnist.yaml), after one cold run")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="with --checks-of: an override, e.g. mlp_train.epochs=2")
    options = parser.parse_args()
    if options.checks_of is not None:
        with tempfile.TemporaryDirectory(prefix="nnpipe-check-bench-") as tmp:
            cache, out = Path(tmp) / "cache", Path(tmp) / "run"
            run(options.checks_of, cache, out, *options.overrides)
            check_cost(options.checks_of, cache, out, options.repeats, tuple(options.overrides))
        return

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
        check_cost(pipeline, cache, out, options.repeats)
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
