"""Commands import only what they need: no matplotlib, joblib, dask, scipy or rich before they are
used.

Checked with ``python -X importtime`` in a fresh process (an import made by another test in this
process would hide one made here). Timings are measured in ``benchmarks/cli_latency.py``, not
here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

GOOD = Path(__file__).resolve().parent / "data" / "good"
HEAVY = ("matplotlib", "joblib", "dask", "distributed", "rich", "scipy")


def imported(*args: str, env: dict[str, str]) -> set[str]:
    """The top-level packages ``nnpipe ARGS`` imports (it must succeed)."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "pipeline.cli", *args],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return {line.rpartition("|")[2].strip().partition(".")[0]
            for line in result.stderr.splitlines() if line.startswith("import time:")}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny fixture pipeline with a plots stage, and an environment with its own cache."""
    folder = tmp_path_factory.mktemp("fast")
    for path in GOOD.iterdir():
        shutil.copy(path, folder / path.name)
    pipeline = folder / "pipeline.yaml"
    pipeline.write_text(pipeline.read_text() + "  - kind: plots\n")
    env = {**os.environ, "NNPIPE_CACHE": str(folder / "cache")}
    return pipeline, env


@pytest.mark.parametrize("command", [["validate"], ["plan"], ["schema"]])
def test_validate_plan_and_schema_import_none_of_the_heavy_packages(tiny, command):
    pipeline, env = tiny
    args = [*command, str(pipeline)] if command != ["schema"] else command
    assert imported(*args, env=env).isdisjoint(HEAVY)


def test_a_fully_cached_rerun_loads_joblib_but_never_draws(tiny):
    pipeline, env = tiny
    first = imported("run", str(pipeline), "--out", str(pipeline.parent / "r1"), env=env)
    assert "matplotlib" in first  # the cold run draws the plots (the check can see it)
    again = imported("run", str(pipeline), "--out", str(pipeline.parent / "r2"), env=env)
    assert "joblib" in again  # the cache's loader
    assert again.isdisjoint({"matplotlib", "dask", "distributed", "rich"})  # rich: no terminal
    assert (pipeline.parent / "r2" / "plots" / "curves.png").read_bytes() == \
        (pipeline.parent / "r1" / "plots" / "curves.png").read_bytes()
