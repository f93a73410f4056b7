"""Command latency: ``nnpipe validate`` and a fully cached rerun against a bare import.

Times whole processes, interleaved, in one run of this script:

    bare      python -c "import numpy, pydantic, typer, yaml"
    validate  nnpipe validate examples/mnist.yaml
    cached    nnpipe run examples/mnist.yaml   (every stage loaded from the cache, run dir written)

    .venv/bin/python benchmarks/cli_latency.py [--repeats 5] [--cache DIR] [--baseline DIR]

Without ``--cache`` a fresh cache folder is filled by one cold run first (untimed; about 15 s on a
quiet machine). The commands run with Python's bytecode cache as a user's install has it:
``pipeline/`` and ``plugins/`` are compiled once (``compileall``, untimed) and
``PYTHONDONTWRITEBYTECODE`` is dropped from the timed commands' environment (the installed
packages the bare import reads were compiled by pip). ``--as-is`` keeps the environment as it is:
with ``PYTHONDONTWRITEBYTECODE`` set, every nnpipe process compiles its ~70 modules from source,
which the bare import never does. ``--baseline DIR`` also times DIR's ``pipeline/`` and
``plugins/`` (a checkout of the code before a change, e.g. ``git archive main | tar -x -C DIR``)
in the same interleaved loop, through ``PYTHONPATH`` (the installed entry points name the same
modules) and with a cache of its own: before and after, at the same moment. Prints the median and the fastest of the repeats for each, the ratios to the bare
import (the goals: validate at most 1.6x, cached rerun at most 2.5x, medians), the load average
while measuring, the CPU, Python and the BLAS kernel. Run it on a quiet machine: other processes
move every figure.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "mnist.yaml"
GOALS = {"validate": 1.6, "cached": 2.5}


def baseline_env(env: dict[str, str], code: Path, scratch: Path) -> dict[str, str]:
    """The environment that imports ``code``'s pipeline/ and plugins/, with its own cache."""
    if not (code / "pipeline" / "__init__.py").is_file():
        sys.exit(f"--baseline {code}: no pipeline/ package there")
    return {**env, "PYTHONPATH": str(code.resolve()), "NNPIPE_CACHE": str(scratch / "cache-baseline")}


def nnpipe() -> list[str]:
    script = Path(sys.executable).with_name("nnpipe")
    return [str(script)] if script.exists() else [sys.executable, "-m", "pipeline.cli"]


def commands(out: Path, env: dict[str, str], baseline: dict[str, str] | None = None
             ) -> dict[str, tuple[list[str], dict[str, str]]]:
    """Each timed command with its environment; ``baseline`` (the environment importing the
    code before) adds its validate and cached rerun."""
    found = {
        "bare": ([sys.executable, "-c", "import numpy, pydantic, typer, yaml"], env),
        "validate": ([*nnpipe(), "validate", str(EXAMPLE)], env),
        "cached": ([*nnpipe(), "run", str(EXAMPLE), "--quiet", "--out", str(out)], env),
    }
    if baseline is not None:
        found["validate (baseline)"] = (found["validate"][0], baseline)
        found["cached (baseline)"] = ([*nnpipe(), "run", str(EXAMPLE), "--quiet", "--out",
                                       str(out.with_name("run-baseline"))], baseline)
    return found


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system) of one process; it must succeed. On a busy
    machine the CPU time moves less than the wall time: both are reported."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stderr}")
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def blas_kernel() -> str:
    from threadpoolctl import threadpool_info

    import numpy  # noqa: F401 (loads its BLAS so threadpoolctl sees it)

    found = [f"{i.get('internal_api')} {i.get('version')} {i.get('architecture', '')}".strip()
             for i in threadpool_info() if i.get("user_api") == "blas"]
    return ", ".join(found) or "none found"


def compile_sources(root: Path = ROOT) -> None:
    """Write the bytecode cache of nnpipe's own modules, as their first import would."""
    import compileall

    for folder in ("pipeline", "plugins"):
        compileall.compile_dir(root / folder, quiet=1)


def check_cached(env: dict[str, str]) -> None:
    """The rerun really loads every stage (else the figure measures training)."""
    result = subprocess.run([*nnpipe(), "plan", str(EXAMPLE)], capture_output=True, text=True,
                            env=env)
    if result.returncode != 0 or "will run" in result.stdout:
        sys.exit(f"the cache is not warm:\n{result.stdout}{result.stderr}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cache", type=Path, help="a cache already warm for examples/mnist.yaml")
    parser.add_argument("--baseline", type=Path,
                        help="a checkout of the code before, timed in the same loop")
    parser.add_argument("--as-is", action="store_true",
                        help="keep PYTHONDONTWRITEBYTECODE and compile nothing beforehand")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nnpipe-latency-") as scratch:
        cache = options.cache or Path(scratch) / "cache"
        env = {**os.environ, "NNPIPE_CACHE": str(cache)}
        env.pop("PYTHONPATH", None)
        if not options.as_is:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            compile_sources()
        baseline = (baseline_env(env, options.baseline, Path(scratch))
                    if options.baseline else None)
        if baseline is not None and not options.as_is:
            compile_sources(options.baseline)
        timed_commands = commands(Path(scratch) / "run", env, baseline)
        fill = [env] if options.cache is None else []
        for fill_env in fill + ([baseline] if baseline is not None else []):
            print("filling a fresh cache with one cold run (untimed) ...", flush=True)
            timed(timed_commands["cached"][0], fill_env)
        for check_env in [env] + ([baseline] if baseline is not None else []):
            check_cached(check_env)
        wall: dict[str, list[float]] = {name: [] for name in timed_commands}
        cpu: dict[str, list[float]] = {name: [] for name in timed_commands}
        load_before = os.getloadavg()
        for _ in range(options.repeats):  # interleaved, so a slow moment hits them all
            for name, (command, command_env) in timed_commands.items():
                seconds, used = timed(command, command_env)
                wall[name].append(seconds)
                cpu[name].append(used)
        load_after = os.getloadavg()
    print(f"CPU: {cpu_model()} ({os.cpu_count()} logical)")
    print(f"Python {platform.python_version()}; BLAS: {blas_kernel()}")
    print("bytecode: " + ("as the environment has it (PYTHONDONTWRITEBYTECODE="
                          f"{os.environ.get('PYTHONDONTWRITEBYTECODE', 'unset')})" if options.as_is
                          else "cached (pipeline/ and plugins/ compiled beforehand)"))
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} "
          f"(1 min; {os.cpu_count()} cores); {options.repeats} interleaved repeats")
    report("wall time", wall)
    report("CPU time (user + system)", cpu)


def report(title: str, times: dict[str, list[float]]) -> None:
    """Median and fastest of each command, and their ratios to the bare import's."""
    bare_median, bare_min = statistics.median(times["bare"]), min(times["bare"])
    print(f"\n{title:<24} {'median':>8} {'fastest':>8} {'ratio (medians)':>16} "
          f"{'ratio (fastest)':>16}  goal")
    for name, values in times.items():
        median, fastest = statistics.median(values), min(values)
        goal = f"<= {GOALS[name]}x" if name in GOALS else ""  # the baseline's: no goal
        print(f"{name:<24} {median:7.3f}s {fastest:7.3f}s {median / bare_median:15.2f}x "
              f"{fastest / bare_min:15.2f}x  {goal}")
    print("repeats: " + "; ".join(f"{name} " + " ".join(f"{v:.3f}" for v in values)
                                  for name, values in times.items()))


if __name__ == "__main__":
    main()
