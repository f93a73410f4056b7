"""Names from a pipeline file are made safe in paths, seeds are non-negative at validation, and
``--jobs``/``--threads`` above the core count are capped with a warning: through the command line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.sweep.backend import default_jobs

GOOD = Path(__file__).resolve().parent / "data" / "good"


def tiny(name=None, seed=None, split_seed=None) -> dict:
    """The tiny pipeline over tests/data/good with absolute paths, as a document."""
    document = yaml.safe_load((GOOD / "pipeline.yaml").read_text())
    for split in ("train", "test"):
        files = document["stages"][0][split]
        document["stages"][0][split] = {k: str(GOOD / v) for k, v in files.items()}
    if name is not None:
        document["name"] = name
    if seed is not None:
        document["seed"] = seed
    if split_seed is not None:
        document["stages"].insert(1, {"kind": "split", "validation_fraction": 0.2,
                                      "seed": split_seed})
    return document


def invoke(cwd: Path, *args: str):
    saved = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(app, list(args))
    finally:
        os.chdir(saved)


#: Names that would escape runs/ or break a path, and the folder name they become.
NAMES = {
    "parent-escape": ("../../x", "x-"),
    "absolute": ("/etc/cron.d/job", "etc-cron.d-job-"),
    "separators": ("a/b\\c", "a-b-c-"),
    "dots-only": ("..", "pipeline-"),
    "empty": ("", "pipeline-"),
    "nul": ("a\0b", "a-b-"),
    "very-long": ("n" * 500, "n" * 64 + "-"),
    "hidden": (".secret", "secret-"),
}


@pytest.mark.parametrize("case", sorted(NAMES))
def test_the_run_directory_always_lands_under_runs(tmp_path, case):
    name, prefix = NAMES[case]
    work = tmp_path / "work" / "deep"
    work.mkdir(parents=True)
    (work / "p.json").write_text(json.dumps(tiny(name=name)))
    result = invoke(work, "run", "p.json", "-q")
    assert result.exit_code == 0, result.output
    made = list((work / "runs").iterdir())
    assert len(made) == 1 and made[0].name.startswith(prefix), made
    assert (made[0] / "manifest.json").is_file()
    # Nothing was written anywhere else: only p.json and runs/ in the working folder, nothing above.
    assert sorted(p.name for p in work.iterdir()) == ["p.json", "runs"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]
    assert json.loads((made[0] / "manifest.json").read_text())["name"] == name  # kept as written


def test_the_sweep_directory_always_lands_under_runs(tmp_path):
    (tmp_path / "p.json").write_text(json.dumps(tiny(name="../../escape")))
    result = invoke(tmp_path, "sweep", "p.json", "--grid", "mlp_train.epochs=1", "--jobs", "1")
    assert result.exit_code == 0, result.output
    made = list((tmp_path / "runs").iterdir())
    assert len(made) == 1 and made[0].name.startswith("sweep-escape-")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.json", "runs"]


@pytest.mark.parametrize("where,args,fragments", [
    ("file", [], ["p.yaml:", "seed: must be greater than or equal to 0 (got -1)"]),
    ("set", ["--set", "seed=-5"], ["seed: must be greater than or equal to 0 (got -5)",
                                   "--set seed=-5"]),
    ("stage", [], ["stages[1].seed: must be greater than or equal to 0 (got -3)"]),
    ("not-int", ["--set", "seed=abc"], ["seed: must be a valid integer", "--set seed=abc"]),
])
@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_negative_seed_is_refused_at_validation(tmp_path, where, args, fragments, command):
    document = tiny(seed=-1 if where == "file" else None,
                    split_seed=-3 if where == "stage" else None)
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(document))
    result = invoke(tmp_path, command, "p.yaml", *args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert not (tmp_path / "runs").exists()


def test_jobs_and_threads_above_the_cores_are_capped_with_a_warning(tmp_path):
    cores = default_jobs()
    (tmp_path / "p.json").write_text(json.dumps(tiny()))
    result = invoke(tmp_path, "sweep", "p.json", "--grid", "mlp_train.epochs=1,2",
                    "--jobs", "1000", "--threads", "64", "--out", "s")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert warnings == [
        f"warning: --jobs 1000: more than the {cores} core(s) this process may use; using {cores}",
        f"warning: --threads 64: more than the {cores} core(s) this process may use; "
        f"using {cores}"]
    info = json.loads((tmp_path / "s" / "sweep.json").read_text())
    assert info["jobs"] == cores and info["threads_per_job"] == cores
