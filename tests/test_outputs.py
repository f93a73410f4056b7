"""Outputs never overwrite what nnpipe did not write (pipeline/io/outputs.py), through the command line.

Every option naming an output (``run --out``, ``sweep --out``, ``report --out``, ``schema --out``)
is tried against a corpus of places it must refuse: the user's own folders and files, the working
folder and those above it or above the pipeline file, the cache folder and the data folders (equal,
inside, above), links, and places that cannot be written even by root. Each refusal is exit 2 with
one line naming the option and the path, comes before any stage runs, and leaves every file of the
user, the cache and the data exactly as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app

GOOD = Path(__file__).resolve().parent / "data" / "good"
BUNDLED = Path(__file__).resolve().parent.parent / "plugins" / "data" / "mnist-10k"


def snapshot(*folders: Path) -> dict[str, str]:
    """Every file below ``folders`` with the sha256 of its content."""
    found = {}
    for folder in folders:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file() and not path.is_symlink():
                found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A folder with the tiny pipeline, its data, a cache holding its entries, a data directory
    and a finished run directory; each holds a sentinel file of the user's."""
    root = tmp_path_factory.mktemp("outputs")
    proj = root / "proj"
    shutil.copytree(GOOD, proj)
    for name in ("cache", "data", "mine"):
        (root / name).mkdir()
    (root / "data" / "keep.txt").write_text("the user's data")
    (root / "mine" / "notes.txt").write_text("the user's notes")
    (root / "notes.txt").write_text("a file of the user's")
    (root / "manifest-only").mkdir()
    (root / "manifest-only" / "manifest.json").write_text('{"files": ["a"], "mine": true}\n')
    os.symlink(root / "mine", root / "link")
    result = invoke(root, "run", str(proj / "pipeline.yaml"), "--out", str(root / "runs" / "done"))
    assert result.exit_code == 0, result.output
    yield root
    if os.path.ismount(root / "readonly"):
        subprocess.run(["umount", str(root / "readonly")], check=False)


def invoke(root: Path, *args: str):
    """``nnpipe ARGS`` run in ``root`` with its cache and data directory."""
    env = {"NNPIPE_CACHE": str(root / "cache"), "NNPIPE_DATA": str(root / "data")}
    cwd = os.getcwd()
    os.chdir(root)
    try:
        return CliRunner().invoke(app, list(args), env=env)
    finally:
        os.chdir(cwd)


def assert_refused(result, option: str, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {option} "), result.output
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert " ran " not in result.stdout and "cached" not in result.stdout  # no stage started


def _readonly_mount(root: Path) -> str:
    """A read-only folder that stops root too: a read-only tmpfs when mounting is allowed, else
    a folder of /proc (which refuses new entries to everyone)."""
    target = root / "readonly"
    target.mkdir(exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(target)],
                          capture_output=True)
    return str(target / "run") if done.returncode == 0 else "/proc/self/nnpipe-run"


#: Places ``--out`` must refuse: (a path relative to the project root, or a callable building
#: it; fragments of the message).
FOREIGN = {
    "user-folder": ("mine", ["exists and is not a", "directory nnpipe wrote"]),
    "user-file": ("notes.txt", ["is a file"]),
    "foreign-manifest": ("manifest-only", ["exists and is not a", "directory nnpipe wrote"]),
    "symlink": ("link", ["symbolic link"]),
    "working-folder": (".", ["is the working folder"]),
    "above-working-folder": ("..", ["holds the working folder"]),
    "root": ("/", ["holds the working folder"]),
    "pipeline-folder": ("proj", ["holds the pipeline file"]),
    "pipeline-file": ("proj/pipeline.yaml", ["is the pipeline file"]),
    "cache": ("cache", ["is the cache folder"]),
    "inside-cache": ("cache/run", ["is inside the cache folder"]),
    "data": ("data", ["is the data directory"]),
    "inside-data": ("data/run", ["is inside the data directory"]),
    "bundled-data": (str(BUNDLED), ["a data folder of dataset 'mnist-10k'"]),
    "inside-bundled-data": (str(BUNDLED / "run"), ["is inside a data folder"]),
    "above-bundled-data": (str(BUNDLED.parent), ["holds a data folder of dataset 'mnist-10k'"]),
    "under-a-file": ("notes.txt/run", ["is a file, not a folder"]),
    "proc": ("/proc/nnpipe-run", ["cannot write in /proc"]),
    "read-only": (_readonly_mount, ["cannot write in"]),
    "name-too-long": ("x" * 300, ["not a usable path"]),
}


def _target(root: Path, case: str) -> str:
    where = FOREIGN[case][0]
    return where(root) if callable(where) else where


@pytest.mark.parametrize("case", sorted(FOREIGN))
def test_run_out_refuses_what_nnpipe_did_not_write(project, case):
    before = snapshot(project, BUNDLED)
    out = _target(project, case)
    result = invoke(project, "run", str(project / "proj" / "pipeline.yaml"), "--out", out)
    assert_refused(result, "--out", *FOREIGN[case][1])
    assert snapshot(project, BUNDLED) == before  # the user's files, the cache, the data


@pytest.mark.parametrize("case", ["user-folder", "user-file", "working-folder", "cache",
                                  "inside-data", "bundled-data", "under-a-file", "proc"])
def test_sweep_out_refuses_what_nnpipe_did_not_write(project, case):
    before = snapshot(project, BUNDLED)
    result = invoke(project, "sweep", str(project / "proj" / "pipeline.yaml"),
                    "--grid", "mlp_train.epochs=1,2", "--out", _target(project, case))
    assert_refused(result, "--out", *FOREIGN[case][1])
    assert snapshot(project, BUNDLED) == before


def test_sweep_out_refuses_a_run_directory(project):
    before = snapshot(project)
    result = invoke(project, "sweep", str(project / "proj" / "pipeline.yaml"),
                    "--grid", "mlp_train.epochs=1,2", "--out", "runs/done")
    assert_refused(result, "--out", "not a sweep directory nnpipe wrote")
    assert snapshot(project) == before


@pytest.mark.parametrize("command", ["report", "schema"])
@pytest.mark.parametrize("case,fragment", [
    ("notes.txt", "is not a"), ("mine", "is a folder"), ("proj/pipeline.yaml", "is the pipeline"),
    ("cache/x.html", "inside the cache folder"), ("data/keep.txt", "inside the data directory"),
    ("notes.txt/x", "is a file, not a folder"), ("/proc/x.html", "cannot write in /proc")])
def test_file_outputs_refuse_what_nnpipe_did_not_write(project, command, case, fragment):
    before = snapshot(project)
    args = ["report", "runs/done"] if command == "report" else ["schema"]
    if case == "proj/pipeline.yaml" and command == "report":
        case, fragment = "runs/done/pipeline.yaml", "is not a report nnpipe wrote"
    elif case == "proj/pipeline.yaml":
        fragment = "is not a schema nnpipe wrote"  # schema reads no pipeline file
    result = invoke(project, *args, "--out", case)
    assert_refused(result, "--out", fragment)
    assert snapshot(project) == before


def test_what_nnpipe_wrote_is_replaced(project, tmp_path):
    """Reruns into a run directory (with its report), and rewrites of nnpipe's own report and
    schema files, are allowed; an empty folder is too."""
    pipeline = str(project / "proj" / "pipeline.yaml")
    assert invoke(project, "report", "runs/done").exit_code == 0
    assert invoke(project, "report", "runs/done").exit_code == 0  # report.html in a run dir
    rerun = invoke(project, "run", pipeline, "--out", "runs/done")
    assert rerun.exit_code == 0, rerun.output
    for command in (["report", "runs/done"], ["schema"]):
        for _ in range(2):
            result = invoke(project, *command, "--out", str(tmp_path / f"{command[0]}.out"))
            assert result.exit_code == 0, result.output
    (project / "empty").mkdir()
    assert invoke(project, "run", pipeline, "--out", "empty").exit_code == 0
    assert json.loads((project / "empty" / "manifest.json").read_text())["format"] == "nnpipe-run/1"


def test_a_run_directory_with_a_file_of_the_users_is_not_replaced(project):
    pipeline = str(project / "proj" / "pipeline.yaml")
    assert invoke(project, "run", pipeline, "--out", "runs/annotated").exit_code == 0
    (project / "runs" / "annotated" / "plots").mkdir()
    (project / "runs" / "annotated" / "plots" / "my-figure.png").write_bytes(b"mine")
    result = invoke(project, "run", pipeline, "--out", "runs/annotated")
    assert_refused(result, "--out", "holding a file nnpipe did not write (plots/my-figure.png)")
    assert (project / "runs" / "annotated" / "plots" / "my-figure.png").read_bytes() == b"mine"


def test_an_exported_model_joins_its_run_directory(project, tmp_path):
    """``nnpipe export`` lists the file it wrote into a run directory in its manifest, so the
    folder can be run into again; a file it wrote elsewhere leaves the manifest as it was."""
    pipeline = str(project / "proj" / "pipeline.yaml")
    run = project / "runs" / "exported"
    assert invoke(project, "run", pipeline, "--out", str(run)).exit_code == 0
    before = (run / "manifest.json").read_bytes()
    outside = invoke(project, "export", str(run), "--out", str(tmp_path / "elsewhere.onnx"))
    assert outside.exit_code == 0, outside.output
    assert (run / "manifest.json").read_bytes() == before
    result = invoke(project, "export", str(run))
    assert result.exit_code == 0, result.output
    assert "model.onnx" in json.loads((run / "manifest.json").read_text())["files"]
    rerun = invoke(project, "run", pipeline, "--out", str(run))
    assert rerun.exit_code == 0, rerun.output


def test_record_in_run_changes_only_an_nnpipe_run_directory(project, tmp_path):
    from pipeline.io.outputs import record_in_run

    (tmp_path / "stray.onnx").write_bytes(b"x")
    assert not record_in_run(tmp_path, tmp_path / "stray.onnx")  # no manifest: not a run
    foreign = project / "manifest-only"
    (foreign / "model.onnx").write_bytes(b"x")
    before = (foreign / "manifest.json").read_bytes()
    assert not record_in_run(foreign, foreign / "model.onnx")  # a manifest nnpipe did not write
    assert (foreign / "manifest.json").read_bytes() == before
    (foreign / "model.onnx").unlink()


@pytest.mark.parametrize("signed", [True, False])
def test_an_older_run_directorys_report_is_replaced_only_when_it_is_nnpipes(project, signed):
    """Runs of earlier versions wrote report.html after their manifest (RUN_EXTRAS): a rerun
    replaces it when it carries nnpipe's signature, and refuses a user's file of that name."""
    from pipeline.io.outputs import REPORT_SIGNATURE

    pipeline = str(project / "proj" / "pipeline.yaml")
    run = project / "runs" / f"older-{signed}"
    assert invoke(project, "run", pipeline, "--out", str(run)).exit_code == 0
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["files"] = [name for name in manifest["files"] if name != "report.html"]
    (run / "manifest.json").write_text(json.dumps(manifest))
    page = b"<html><head>" + (REPORT_SIGNATURE if signed else b"<title>my notes</title>")
    (run / "report.html").write_bytes(page)
    result = invoke(project, "run", pipeline, "--out", str(run))
    if signed:
        assert result.exit_code == 0, result.output
    else:
        assert_refused(result, "--out", "holding a file nnpipe did not write (report.html)")
        assert (run / "report.html").read_bytes() == page


def test_a_sweep_directory_is_marked_at_once_and_can_be_rerun(project):
    pipeline = str(project / "proj" / "pipeline.yaml")
    for _ in range(2):
        result = invoke(project, "sweep", pipeline, "--grid", "mlp_train.epochs=1", "--jobs", "1",
                        "--out", "sweeps/one")
        assert result.exit_code == 0, result.output
    info = json.loads((project / "sweeps" / "one" / "sweep.json").read_text())
    assert info["format"] == "nnpipe-sweep/1" and info["status"] == "done"
    (project / "sweeps" / "one" / "mine.txt").write_text("mine")
    result = invoke(project, "sweep", pipeline, "--grid", "mlp_train.epochs=1", "--out",
                    "sweeps/one")
    assert_refused(result, "--out", "holding something nnpipe did not write (mine.txt)")


@pytest.mark.parametrize("command", ["run", "plan", "sweep"])
@pytest.mark.parametrize("cache,fragment", [("notes.txt", "is a file, not a folder"),
                                            ("notes.txt/cache", "is a file, not a folder"),
                                            ("/proc/nnpipe-cache", "cannot write in /proc")])
def test_a_cache_folder_nnpipe_cannot_use_is_refused_at_once(project, command, cache, fragment):
    before = snapshot(project)
    args = [command, str(project / "proj" / "pipeline.yaml"), "--cache-dir", cache]
    if command == "sweep":
        args += ["--grid", "mlp_train.epochs=1,2", "--out", "sweeps/new"]
    result = invoke(project, *args)
    assert_refused(result, "--cache-dir", fragment)
    assert snapshot(project) == before and not (project / "sweeps" / "new").exists()


@pytest.mark.parametrize("command", [["clear"], ["prune", "--max-size", "0"]])
def test_cache_clear_and_prune_remove_nothing_from_a_folder_that_is_not_a_cache(tmp_path, command):
    for name in ("records", "last", "checkpoints"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "mine.txt").write_text("the user's")
    (tmp_path / "file-hashes.json").write_text("{}")
    before = snapshot(tmp_path)
    result = CliRunner().invoke(app, ["cache", *command, "--cache-dir", str(tmp_path)])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert result.stderr.strip() == (f"error: {tmp_path}: not an nnpipe cache folder (no "
                                     f"CACHEDIR.TAG), yet it holds records, last, checkpoints, "
                                     f"file-hashes.json; nothing was removed")
    assert snapshot(tmp_path) == before


def test_cache_clear_empties_nnpipes_own_cache(project, tmp_path):
    cache = tmp_path / "cache"
    shutil.copytree(project / "cache", cache)
    assert (cache / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55")
    result = CliRunner().invoke(app, ["cache", "clear", "--cache-dir", str(cache)])
    assert result.exit_code == 0 and result.stdout.startswith("cleared "), result.output
    assert sorted(p.name for p in cache.iterdir() if p.name != ".gitignore") == ["CACHEDIR.TAG"]
