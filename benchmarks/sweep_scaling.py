"""How a sweep scales: the same 4-run sweep with ``--jobs 1`` and then ``--jobs 2``.

Runs ``nnpipe sweep examples/mnist.yaml`` on the bundled MNIST sample over four learning rates
(reader, split, normalize and one-hot are shared by all four runs), each run training long enough
(``--epochs``, default 60) to take at least 10 seconds, each sweep in a fresh cache folder so both
pay for the shared stages. Prints both wall times, their ratio, how long each run trained, and
how often the shared stages ran.

    .venv/bin/python benchmarks/sweep_scaling.py [--epochs N] [--hidden 256,128] [--threads N]

The acceptance target is ratio <= 0.65 on a 2-core machine. A busy machine makes the figure noisy.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipeline.sweep.shared import shared_line

ROOT = Path(__file__).resolve().parent.parent
LEARNING_RATES = "0.08,0.05,0.03,0.02"


def sweep(jobs: int, work: Path, epochs: int, hidden: str,
          threads: int | None) -> tuple[float, dict]:
    """Run the sweep with ``jobs`` workers; return its wall time and its sweep.json."""
    out = work / f"jobs{jobs}"
    command = [sys.executable, "-m", "pipeline.cli", "sweep", str(ROOT / "examples" / "mnist.yaml"),
               "--grid", f"mlp_train.optimizer.lr={LEARNING_RATES}",
               "--set", f"mlp_train.epochs={epochs}", "--set", f"mlp_train.hidden=[{hidden}]",
               "--jobs", str(jobs), "--backend", "loky", "--out", str(out),
               "--cache-dir", str(work / f"cache{jobs}"),
               *(["--threads", str(threads)] if threads else [])]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started, json.loads((out / "sweep.json").read_text())


def training_seconds(result: dict) -> list[float]:
    """How long each run's training stage took."""
    return [round(s["seconds"], 1) for run in result["runs"] for s in run["stages"]
            if s["kind"] == "mlp_train"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--hidden", default="256,128")
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS threads per run for both sweeps (default: the sweep's own, "
                             "cores / jobs)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nnpipe-sweep-bench-") as tmp:
        work = Path(tmp)
        figures = {}
        for jobs in (1, 2):
            seconds, result = sweep(jobs, work, args.epochs, args.hidden, args.threads)
            shared = result["shared"]
            figures[jobs] = seconds
            print(f"--jobs {jobs}: {seconds:6.1f} s wall  "
                  f"(training per run: {training_seconds(result)} s; "
                  f"{result['threads_per_job']} BLAS thread(s) per job)")
            print(f"          {shared_line(shared)}")
            failed = [r for r in result["runs"] if r["status"] != "ok"]
            if failed:
                print(f"          {len(failed)} failed runs: {failed[0]['error']}")
        print(f"ratio jobs 2 / jobs 1: {figures[2] / figures[1]:.2f} (target <= 0.65)")


if __name__ == "__main__":
    main()
