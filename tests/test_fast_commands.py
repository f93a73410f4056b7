"""Commands import only what they need: no matplotlib, joblib, dask, scipy or rich before they are
used.

Checked with ``sys.modules`` of a fresh process (an import made by another test in this process
would hide one made here). Timings are measured in ``benchmarks/cli_latency.py``, not
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


#: Runs the command line in a fresh process, then lists ``sys.modules``: ``-X importtime`` does
#: not see modules imported through ``importlib.import_module`` (entry points load so).
_LIST_MODULES = """
import runpy, sys
sys.argv = ["nnpipe", *sys.argv[1:]]
try:
    runpy.run_module("pipeline.cli", run_name="__main__")
except SystemExit as exc:
    assert not exc.code, exc.code
print("\\n".join(sorted(sys.modules)))
"""


def modules(*args: str, env: dict[str, str]) -> set[str]:
    """Every module ``nnpipe ARGS`` imports, by its full name (it must succeed)."""
    result = subprocess.run([sys.executable, "-c", _LIST_MODULES, *args],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return set(result.stdout.splitlines())


def imported(*args: str, env: dict[str, str]) -> set[str]:
    """The top-level packages ``nnpipe ARGS`` imports (it must succeed)."""
    return {name.partition(".")[0] for name in modules(*args, env=env)}


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


def test_validate_imports_only_the_stage_kinds_the_file_names(tiny):
    """The tiny pipeline names neither augment nor the extras' stages (when installed), and
    validating never needs mlp_train's training loop, checkpoint or history; the schema, which
    describes every installed kind, imports them all."""
    pipeline, env = tiny
    unused = {"plugins.augment", "nnpipe_extras.augment", "nnpipe_extras.pca"}
    run_time = {"plugins.mlp.training", "plugins.mlp.checkpoint", "plugins.mlp.history"}
    found = modules("validate", str(pipeline), env=env)
    assert "plugins.mlp.trainer" in found and "plugins.plots" in found  # the check can see them
    assert found.isdisjoint(unused | run_time)
    assert "plugins.augment" in modules("schema", env=env)


def test_validate_leaves_out_what_only_training_or_another_cli_needs(tiny):
    """No generator is drawn from (numpy.random), no thread pool is made (concurrent.futures:
    plugins.mlp.parallel makes one on first use), and typer's own copy of click serves the
    command line, not the click package."""
    pipeline, env = tiny
    found = modules("validate", str(pipeline), env=env)
    assert "plugins.mlp.parallel" in found and "typer" in found  # the check can see them
    assert found.isdisjoint({"numpy.random", "concurrent.futures", "click"})


def test_validate_builds_only_the_layer_classes_it_needs_and_reads_no_package_metadata(tiny):
    """A file without ``layers:`` needs the layer contract, not the built-in layers (each a
    pydantic class); the registry reads entry points, not the distributions' METADATA (which
    imports email.parser), until a message or a stage key names a distribution."""
    pipeline, env = tiny
    found = modules("validate", str(pipeline), env=env)
    assert "plugins.mlp.layers.base" in found and "importlib.metadata" in found  # visible
    assert found.isdisjoint({"plugins.mlp.layers.dense", "plugins.mlp.layers.dropout",
                             "plugins.mlp.layers.activation", "email.parser"})


def test_validating_an_augment_stage_leaves_its_distortions_for_the_run(tmp_path):
    """The augment stage's spec validates without the distortion maths and the per-epoch
    copies (``pipeline.lazy``); running it imports them."""
    example = Path(__file__).resolve().parent.parent / "examples" / "mnist.yaml"
    env = {**os.environ, "NNPIPE_CACHE": str(tmp_path / "cache")}
    found = modules("validate", str(example), env=env)
    assert "plugins.augment" in found  # the file names the stage (the check can see it)
    assert found.isdisjoint({"plugins.augment.distort", "plugins.augment.epochs"})


def test_a_command_line_builds_only_the_command_it_names(tiny):
    pipeline, env = tiny
    cli = {name for name in modules("validate", str(pipeline), env=env)
           if name.startswith("pipeline.cli.")}
    assert cli == {"pipeline.cli.validate", "pipeline.cli.main", "pipeline.cli.errors",
                   "pipeline.cli.options"}


def test_a_fully_cached_rerun_loads_joblib_but_never_draws(tiny):
    pipeline, env = tiny
    first = imported("run", str(pipeline), "--out", str(pipeline.parent / "r1"), env=env)
    assert "matplotlib" in first  # the cold run draws the plots (the check can see it)
    again = imported("run", str(pipeline), "--out", str(pipeline.parent / "r2"), env=env)
    assert "joblib" in again  # the cache's loader
    assert again.isdisjoint({"matplotlib", "dask", "distributed", "rich"})  # rich: no terminal
    assert (pipeline.parent / "r2" / "plots" / "curves.png").read_bytes() == \
        (pipeline.parent / "r1" / "plots" / "curves.png").read_bytes()


#: Runs the command line in a fresh process with an exit handler registered before it: atexit
#: runs handlers last-registered first, so this one sees the heap as the interpreter's teardown
#: will.
_FREEZE_AT_EXIT = """
import atexit, gc, runpy, sys
atexit.register(lambda: print("frozen at exit:", gc.get_freeze_count()))
sys.argv = ["nnpipe", *sys.argv[1:]]
runpy.run_module("pipeline.cli", run_name="__main__")
"""


def test_the_heap_is_frozen_before_the_interpreter_tears_it_down(tiny):
    # Without the freeze, the final garbage collections over every module and model the command
    # built cost about 0.1 s of a 0.3 s command; a failing command ends the same way.
    pipeline, env = tiny
    for args, status in (["validate", str(pipeline)], 0), (["validate", "missing.yaml"], 2):
        result = subprocess.run([sys.executable, "-c", _FREEZE_AT_EXIT, *args], capture_output=True,
                                text=True, env=env, timeout=120)
        assert result.returncode == status, result.stderr[-2000:]
        frozen = int(result.stdout.rpartition("frozen at exit:")[2])
        assert frozen > 10_000  # every object the command left, not a handful
