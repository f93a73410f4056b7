"""Hostile inputs answer in seconds, in bounded memory, with exit 2 and one line naming the file.

Every case runs ``nnpipe`` in a child process under ``RLIMIT_AS`` (1.5 GB) and a timeout, and
asserts the exit status, the one-line message, the child's peak resident memory and its wall
time. The bomb files are generated here, in tmp_path: none is committed.
"""

from __future__ import annotations

import gzip
import os
import shutil
import socket
import struct
import tempfile
import zlib
from pathlib import Path

import pytest

from bounded import Outcome, run_bounded
from test_bad_corpus import TINY

GOOD = Path(__file__).resolve().parent / "data" / "good"
PEAK_MB = 400  # nnpipe validate/run of a tiny pipeline peaks near 100-120 MB
SECONDS = 30  # start-up is 2-3 s on a loaded 2-core machine; a bomb would take minutes

def idx(code: int, shape: tuple[int, ...], payload: bytes) -> bytes:
    return bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape) + payload


def invoke(*args: str):
    """``nnpipe ARGS`` in this process (for refusals that are not bombs: no limits needed)."""
    from typer.testing import CliRunner

    from pipeline.cli import app

    result = CliRunner().invoke(app, list(args))
    return Outcome(result.exit_code, result.stdout, result.stderr, 0.0, 0.0)


def assert_refused(outcome, *fragments: str) -> str:
    """Exit 2, one ``error:`` line holding every fragment, and bounded memory and time."""
    assert outcome.code == 2, (outcome.code, outcome.stderr[-2000:])
    line = outcome.error_line()
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    assert outcome.peak_mb < PEAK_MB, (outcome.peak_mb, line)
    assert outcome.seconds < SECONDS, (outcome.seconds, line)
    return line


# --- pipeline files that are not regular files ---------------------------------------------


@pytest.fixture
def short_dir():
    """A folder with a short path (a socket's path must fit in 108 bytes)."""
    folder = Path(tempfile.mkdtemp(prefix="nnp-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def make_special(kind: str, path: Path):
    if kind == "link to /dev/zero":
        path.symlink_to("/dev/zero")
    elif kind == "link to /dev/urandom":
        path.symlink_to("/dev/urandom")
    elif kind == "FIFO":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
        return server
    return None


@pytest.mark.parametrize("kind, expected, command", [
    ("link to /dev/zero", "is a character device, not a regular file", "validate"),
    ("link to /dev/zero", "is a character device, not a regular file", "run"),
    ("link to /dev/urandom", "is a character device, not a regular file", "plan"),
    ("FIFO", "is a FIFO (named pipe), not a regular file", "validate"),
    ("FIFO", "is a FIFO (named pipe), not a regular file", "run"),
    ("directory", "is a directory, not a pipeline file", "validate"),
    ("socket", "is a socket, not a regular file", "validate"),
])
def test_a_pipeline_file_that_is_not_a_regular_file(short_dir, kind, expected, command):
    path = short_dir / "p.yaml"
    keep = make_special(kind, path)
    try:
        outcome = run_bounded(command, str(path), cwd=short_dir)
    finally:
        if keep is not None:
            keep.close()
    assert_refused(outcome, str(path), expected)


@pytest.mark.parametrize("suffix", [".yaml", ".json", ".toml"])
def test_a_pipeline_file_over_the_size_cap(tmp_path, suffix):
    path = tmp_path / f"big{suffix}"
    path.write_bytes(b"#" * (2 << 20))
    assert_refused(run_bounded("validate", str(path)), str(path), "may be at most 1048576 bytes")


# --- YAML and JSON that expand, nest or repeat -----------------------------------------------


def billion_laughs(levels: int = 9, width: int = 9) -> str:
    lines = [f'a0: &a0 [{", ".join(["lol"] * width)}]']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    lines.append(f"stages: *a{levels}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("text, fragments", [
    (billion_laughs(), ["expands to more than 50000 values"]),
    (billion_laughs(levels=30, width=2), ["expands to more than 50000 values"]),
    ("stages: &s [*s]\n", ["an alias refers to a node that contains it"]),
    ("a: &a " + "x" * 500000 + "\nstages: [" + ", ".join(["*a"] * 40000) + "]\n",
     ["expands to more than 4194304 characters of values"]),
    ("stages: " + "[" * 20000 + "]" * 20000 + "\n", ["nested more than 100 levels deep"]),
    ("stages: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n", ["nested more than 100 levels deep"]),
    ("stages:\n" + "  - 1\n" * 160000, ["holds more than 50000 values"]),
])
def test_yaml_bombs(tmp_path, text, fragments):
    path = tmp_path / "bomb.yaml"
    path.write_text(text)
    assert len(path.read_bytes()) <= 1 << 20
    assert_refused(run_bounded("validate", str(path)), str(path), *fragments)


@pytest.mark.parametrize("text, line, key", [
    ("name: a\nseed: 1\nname: b\nstages: []\n", 3, "name"),
    ("stages:\n  - kind: normalize\n    method: scale\n    method: standardize\n", 4, "method"),
    ("stages:\n  - {kind: split, kind: normalize}\n", 2, "kind"),
])
def test_duplicate_yaml_keys_are_refused_with_their_line(tmp_path, text, line, key):
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    assert_refused(invoke("validate", str(path)), f"{path}:{line}:",
                   f"duplicate key {key!r}")


@pytest.mark.parametrize("text, line, key", [
    ('{"name": "a",\n "name": "b", "stages": []}', 2, "name"),
    ('{"stages": [{"kind": "normalize",\n  "method": "scale",\n  "method": "standardize"}]}',
     3, "method"),
])
def test_duplicate_json_keys_are_refused_with_their_line(tmp_path, text, line, key):
    path = tmp_path / "dup.json"
    path.write_text(text)
    assert_refused(invoke("validate", str(path)), f"{path}:{line}: duplicate key {key!r}")


@pytest.mark.parametrize("name, text, fragment", [
    ("deep.json", "[" * 200000, "JSON nested too deeply"),
    ("deep.toml", "a = " + "[" * 200000, "nested too deeply"),
])
def test_deep_nesting(tmp_path, name, text, fragment):
    path = tmp_path / name
    path.write_text(text)
    line = assert_refused(run_bounded("validate", str(path)), str(path))
    assert fragment in line or "syntax error" in line, line


@pytest.mark.parametrize("name, text, fragment", [
    ("long-int.toml", "seed = " + "1" * 5000, "cannot read a value"),
    ("long-int.json", '{"seed": ' + "1" * 5000 + "}", "cannot read a value"),
    ("long-int.yaml", "seed: " + "1" * 5000, ":1:7: cannot read the value"),
])
def test_numbers_python_will_not_convert(tmp_path, name, text, fragment):
    path = tmp_path / name
    path.write_text(text)
    assert_refused(invoke("validate", str(path)), str(path), fragment)


def test_an_override_value_that_is_an_alias_bomb(tmp_path):
    value = billion_laughs().replace("\n", ", ").rstrip(", ")
    outcome = run_bounded("validate", str(GOOD / "pipeline.yaml"), "--set",
                          f"description={{{value}}}")
    assert_refused(outcome, "--set", "expands to more than 50000 values")


# --- IDX and gzip: headers are claims -----------------------------------------------------------


def tiny_pipeline(tmp_path: Path, **replace: Path) -> Path:
    """The bad corpus's tiny pipeline over the good fixtures, some files replaced."""
    files = {name: GOOD / f"{name.replace('_', '-')}.idx"
             for name in ("train_images", "train_labels", "test_images", "test_labels")}
    files.update(replace)
    path = tmp_path / "pipeline.yaml"
    path.write_text(TINY.format(**files))
    return path


def gzip_of_zeros(header: bytes, megabytes: int) -> bytes:
    """``header`` then ``megabytes`` MB of zeros, as concatenated gzip members (small, fast)."""
    member = gzip.compress(bytes(1 << 20), compresslevel=9, mtime=0)
    return gzip.compress(header, mtime=0) + member * megabytes


IDX_BOMBS = {
    # 5 MB of gzip whose header claims 2**31 images of 28x28 (1.6 TB).
    "claims-2^31-images.idx.gz": (
        lambda: gzip_of_zeros(idx(0x08, (2**31, 28, 28), b""), 5000),
        ["IDX header declares (2147483648, 28, 28) items", "of memory is available"]),
    # claims 900 MB (fits no 1.5 GB address space twice), holds 5 GB of zeros.
    "claims-900MB-holds-5GB.idx.gz": (
        lambda: gzip_of_zeros(idx(0x08, (1_200_000, 28, 28), b""), 5000),
        ["need", "of memory is available"]),
    # declares 16 bytes, then 5 GB of zeros after them: trailing garbage, not read to its end.
    "trailing-5GB.idx.gz": (
        lambda: gzip_of_zeros(idx(0x08, (60, 4, 4), bytes(960)), 5000),
        ["IDX file too long", "file has more than"]),
    "trailing-garbage.idx": (lambda: idx(0x08, (60, 4, 4), bytes(960)) + b"garbage",
                             ["IDX file too long", "7 extra"]),
    "short-data.idx": (lambda: idx(0x08, (60, 4, 4), bytes(900)),
                       ["truncated IDX file", "file has 900"]),
    "255-dimensions.idx": (lambda: idx(0x08, (1,) * 255, b"\x00"),
                           ["IDX header declares 255 dimensions; at most 16"]),
    "17-dimensions.idx.gz": (lambda: gzip.compress(idx(0x08, (60,) + (1,) * 16, bytes(60))),
                             ["IDX header declares 17 dimensions"]),
    "dim-of-zero.idx": (lambda: idx(0x08, (60, 0, 4), b""), ["hold no values"]),
    "product-overflow.idx": (lambda: idx(0x0E, (0xFFFFFFFF,) * 3, bytes(64)),
                             ["truncated IDX file", "file has 64"]),
    "product-overflow.idx.gz": (lambda: gzip.compress(idx(0x0E, (0xFFFFFFFF,) * 3, bytes(64))),
                                ["of memory is available"]),
}


@pytest.mark.parametrize("name", sorted(IDX_BOMBS))
def test_idx_bombs_in_run(tmp_path, name):
    make, fragments = IDX_BOMBS[name]
    path = tmp_path / name
    path.write_bytes(make())
    pipeline = tiny_pipeline(tmp_path, train_images=path)
    outcome = run_bounded("run", str(pipeline), "--no-cache", "--out", str(tmp_path / "run"))
    assert_refused(outcome, str(path), *fragments)
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    from typer.testing import CliRunner

    from pipeline.cli import app

    folder = tmp_path_factory.mktemp("saved") / "run"
    result = CliRunner().invoke(app, ["run", str(GOOD / "pipeline.yaml"), "--no-cache",
                                      "--out", str(folder)])
    assert result.exit_code == 0, result.output
    return folder


@pytest.mark.parametrize("name", ["claims-2^31-images.idx.gz", "255-dimensions.idx",
                                  "trailing-5GB.idx.gz"])
def test_idx_bombs_in_predict(tmp_path, saved_run, name):
    make, fragments = IDX_BOMBS[name]
    path = tmp_path / name
    path.write_bytes(make())
    assert_refused(run_bounded("predict", str(saved_run), str(path)), str(path), *fragments)


def test_an_idx_fifo_is_refused_without_waiting(short_dir, saved_run):
    path = short_dir / "images.idx"
    os.mkfifo(path)
    assert_refused(run_bounded("predict", str(saved_run), str(path)), str(path),
                   "not a regular file")
    pipeline = tiny_pipeline(short_dir, test_images=path)
    assert_refused(run_bounded("run", str(pipeline), "--no-cache"), str(path),
                   "not a regular file")


# --- PNG: dimensions from the header, before decoding ----------------------------------------


def png(width: int, height: int, bit_depth: int = 1, colour: int = 0) -> bytes:
    """A valid PNG of zeros, ``width`` x ``height``, written by hand (IHDR, one IDAT, IEND)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))

    row = b"\x00" + bytes((width * bit_depth * (3 if colour == 2 else 1) + 7) // 8)
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body)
            + chunk(b"IEND", b""))


@pytest.mark.parametrize("width, height", [(20000, 20000), (5000, 5000), (17_000_000, 1)])
def test_a_png_too_large_is_refused_before_decoding(tmp_path, saved_run, width, height):
    path = tmp_path / "huge.png"
    path.write_bytes(png(width, height))
    assert path.stat().st_size < 2 << 20
    outcome = run_bounded("predict", str(saved_run), str(path))
    assert_refused(outcome, str(path), f"PNG of {width}x{height} pixels")


def test_a_folder_holding_a_huge_png_is_refused(tmp_path, saved_run):
    (tmp_path / "pngs").mkdir()
    (tmp_path / "pngs" / "a.png").write_bytes(png(4, 4, 8))
    (tmp_path / "pngs" / "b.png").write_bytes(png(20000, 20000))
    outcome = run_bounded("predict", str(saved_run), str(tmp_path / "pngs"))
    assert_refused(outcome, str(tmp_path / "pngs" / "b.png"), "PNG of 20000x20000 pixels")


def test_a_file_named_png_that_is_not_one(tmp_path, saved_run):
    path = tmp_path / "fake.png"
    path.write_bytes(b"GIF89a" + bytes(100))
    assert_refused(run_bounded("predict", str(saved_run), str(path)), str(path), "not a PNG")


# --- sizes from the spec, checked against the memory available --------------------------------


@pytest.mark.parametrize("field, value, fragments", [
    ("mlp_train.hidden", "[100000000]", ["hidden [100000000]", "needs", "memory is available"]),
    ("mlp_train.hidden", "[30000, 30000]", ["hidden [30000, 30000]", "memory is available"]),
    ("one_hot.classes", "1000000000", ["one_hot", "1000000000 float32 classes", "needs"]),
])
def test_sizes_beyond_memory_are_refused_before_allocating(tmp_path, field, value, fragments):
    outcome = run_bounded("run", str(GOOD / "pipeline.yaml"), "--no-cache", "--set",
                          f"{field}={value}", "--out", str(tmp_path / "run"))
    assert_refused(outcome, *fragments)
    assert not (tmp_path / "run").exists()


def test_a_saved_model_too_large_for_memory(tmp_path, saved_run):
    import json

    run = tmp_path / "run"
    shutil.copytree(saved_run, run)
    meta = json.loads((run / "model.json").read_text())
    meta["sizes"] = [16, 100000000, 10]
    dense = next(layer for layer in meta["layers"] if layer["kind"] == "dense")
    dense["units"] = 100000000  # the stack the description claims: 1.6e9 weights
    (run / "model.json").write_text(json.dumps(meta))
    outcome = run_bounded("predict", str(run), str(GOOD / "test-images.idx"))
    assert_refused(outcome, str(run / "model.json"), "100000000", "memory is available")


# --- run directories and sweep grids read by other commands ----------------------------------


@pytest.mark.parametrize("name, text, fragments", [
    ("manifest.json", "[1, 2, 3]", ["manifest.json: expected a JSON object, found list"]),
    ("metrics.json", '{"accuracy": 0.5,\n "accuracy": 0.9}', ["metrics.json:2: duplicate key"]),
    ("history.json", '{"epoch": 1}', ["history.json: expected a JSON list, found dict"]),
    ("pipeline.yaml", billion_laughs(), ["pipeline.yaml:1:1: expands to more than 50000"]),
])
@pytest.mark.parametrize("command", [["runs", "list"], ["report"]])
def test_run_directory_files_of_the_wrong_shape(tmp_path, saved_run, name, text, fragments,
                                                command):
    run = tmp_path / "run"
    shutil.copytree(saved_run, run)
    (run / name).write_text(text)
    args = [*command, str(run)] + (["--out", str(tmp_path / "r.html")] if command == ["report"]
                                   else [])
    bomb = name == "pipeline.yaml"
    assert_refused(run_bounded(*args) if bomb else invoke(*args), str(run / name), *fragments)


def test_a_run_directory_file_that_is_a_fifo(short_dir, saved_run):
    run = short_dir / "run"
    shutil.copytree(saved_run, run)
    (run / "metrics.json").unlink()
    os.mkfifo(run / "metrics.json")
    assert_refused(run_bounded("runs", "list", str(run)), str(run / "metrics.json"),
                   "is a FIFO (named pipe), not a regular file")


def test_a_grid_value_that_is_an_alias_bomb(tmp_path):
    value = billion_laughs().replace("\n", ", ").rstrip(", ")
    outcome = run_bounded("sweep", str(GOOD / "pipeline.yaml"), "--grid",
                          f"description={{{value}}}", "--out", str(tmp_path / "sweep"))
    assert_refused(outcome, "--grid", "expands to more than 50000 values")
    assert not (tmp_path / "sweep").exists()
