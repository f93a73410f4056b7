"""Where nnpipe may write: every option naming an output is checked here, before any work starts.

An output (``run --out``, ``sweep --out``, ``tune --out``, ``report --out``, ``schema --out``) may be

- a path that does not exist yet, whose nearest existing folder nnpipe can really write in
  (checked with a probe folder created and removed at once: permission bits do not stop root,
  a read-only mount or ``/proc`` does);
- an empty folder (for a run or sweep directory): there is nothing in it to lose;
- something nnpipe wrote itself, which is then replaced (that is how reruns work):
  a *run directory* is recognised by its ``manifest.json`` (nnpipe's format, listing every file),
  and is replaced only if every file in it is listed there or is ``report.html``;
  a *sweep directory* by its ``sweep.json``, holding only nnpipe's files and run directories;
  a *tune directory* by its marker ``.nnpipe-tune`` (written when the folder is made), holding
  only nnpipe's files, plots and run directories (it is continued, never replaced);
  a *report* or *schema* file by the signature nnpipe writes in its first bytes
  (``<meta name="generator" content="nnpipe">``, ``"$comment": "nnpipe pipeline file schema"``),
  or, for a report, by being ``report.html`` directly inside a run directory.

It is never: a symbolic link; the working folder or a folder above it, or above the pipeline
file; a place equal to, inside or above the cache folder or a data folder (the data directory,
every registered dataset's folders). Anything else is a one-line ``UserError`` (exit status 2).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from pipeline.errors import UserError
from pipeline.io.leftovers import is_nnpipe_temporary, owner_tag
from pipeline.userfiles import load_json_file

RUN_FORMAT = "nnpipe-run/1"
SWEEP_FORMAT = "nnpipe-sweep/1"
REPORT_SIGNATURE = b'<meta name="generator" content="nnpipe">'
SCHEMA_SIGNATURE = b'"$comment": "nnpipe pipeline file schema"'
#: Files that runs of earlier versions added to a run directory after the run (not in its
#: manifest); accepted as nnpipe's when they carry its signature.
RUN_EXTRAS = ("report.html",)
SWEEP_FILES = ("sweep.json", "sweep.csv", "best.yaml")
#: The file that marks a tune directory as nnpipe's, written first when the folder is made.
TUNE_MARKER = ".nnpipe-tune"
#: What ``nnpipe tune`` writes at the top of its directory (the SQLite study and its journals too).
TUNE_FILES = (TUNE_MARKER, "study.db", "study.db-journal", "study.db-wal", "study.db-shm",
              "tune.csv", "tune.json", "best.yaml", "report.html")
#: A manifest larger than this is not one of nnpipe's (and is not read whole).
_MAX_MANIFEST = 16 << 20


@dataclass(frozen=True)
class Protected:
    """A place no output may be equal to, inside or above: ``what`` says what it is."""

    path: Path
    what: str


@dataclass(frozen=True)
class OutputKind:
    """What an option writes: a folder or a file, and how to tell nnpipe's own from a user's."""

    what: str
    folder: bool
    #: None when ``path`` (which exists) is nnpipe's own and may be replaced, else why not.
    foreign: Callable[[Path], str | None]


def _read_json(path: Path):
    try:
        if path.stat().st_size > _MAX_MANIFEST:
            return None
        return load_json_file(path, _MAX_MANIFEST)
    except (OSError, ValueError):
        return None


def is_run_manifest(value) -> bool:
    """Whether ``value`` (parsed JSON) is the manifest of a run directory nnpipe wrote."""
    if not isinstance(value, dict) or not isinstance(value.get("files"), list):
        return False
    legacy = isinstance(value.get("versions"), dict) and "nnpipe" in value["versions"]
    return value.get("format") == RUN_FORMAT or (legacy and isinstance(value.get("stages"), list))


def _files_under(folder: Path) -> Iterator[str]:
    """Every file below ``folder`` as a relative POSIX path (nnpipe's temporaries skipped)."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not is_nnpipe_temporary(d)]
        for name in files:
            if not is_nnpipe_temporary(name):
                yield Path(root, name).relative_to(folder).as_posix()


def run_dir_problem(path: Path) -> str | None:
    """None when ``path`` is an empty folder or a run directory holding only nnpipe's files."""
    if not path.is_dir():
        return "is a file, not a run directory"
    if not any(path.iterdir()):
        return None
    manifest = _read_json(path / "manifest.json")
    if not is_run_manifest(manifest):
        return "exists and is not a run directory nnpipe wrote (no nnpipe manifest.json)"
    listed = {str(name) for name in manifest["files"]}
    foreign = next((name for name in _files_under(path)
                    if name not in listed and not _signed_extra(path, name)), None)
    if foreign is not None:
        return f"is a run directory holding a file nnpipe did not write ({foreign})"
    return None


def _signed_extra(run_dir: Path, name: str) -> bool:
    """Whether ``name`` (relative to ``run_dir``) is a file that runs of earlier versions added
    after their manifest was written (``RUN_EXTRAS``) and that holds nnpipe's signature: a
    user's own file of that name is not nnpipe's to replace."""
    return name in RUN_EXTRAS and \
        signed_file_problem(REPORT_SIGNATURE, "report")(run_dir / name) is None


def record_in_run(run_dir: Path, written: Path) -> bool:
    """List ``written`` in the manifest of the run directory it was written into, so that the
    folder still holds only files nnpipe wrote (``nnpipe export`` puts ``model.onnx`` there: a
    later ``nnpipe run --out`` into the folder may then replace it). Returns False, changing
    nothing, when ``written`` is not a file directly inside an nnpipe run directory."""
    from pipeline.files import write_json  # pipeline.files imports pipeline.io.leftovers

    run_dir, written = Path(run_dir), Path(written)
    if not written.is_file() or written.parent.resolve() != run_dir.resolve():
        return False
    manifest = _read_json(run_dir / "manifest.json")
    if not is_run_manifest(manifest):
        return False
    if written.name not in manifest["files"]:
        manifest["files"] = sorted([*manifest["files"], written.name])
        write_json(run_dir / "manifest.json", manifest)  # atomic: a reader sees the old or the new
    return True


def sweep_dir_problem(path: Path) -> str | None:
    """None when ``path`` is an empty folder or a sweep directory holding only nnpipe's files."""
    if not path.is_dir():
        return "is a file, not a sweep directory"
    entries = [p for p in path.iterdir() if not is_nnpipe_temporary(p.name)]
    if not entries:
        return None
    info = _read_json(path / "sweep.json")
    if not (isinstance(info, dict) and (info.get("format") == SWEEP_FORMAT
                                        or {"configurations", "runs"} <= set(info))):
        return "exists and is not a sweep directory nnpipe wrote (no nnpipe sweep.json)"
    for entry in entries:
        if entry.name in SWEEP_FILES and entry.is_file():
            continue
        if entry.is_dir() and not entry.is_symlink() and run_dir_problem(entry) is None:
            continue
        return f"is a sweep directory holding something nnpipe did not write ({entry.name})"
    return None


def _foreign_entry(folder: Path, allowed: Callable[[Path], bool]) -> str | None:
    """The name of the first entry of ``folder`` (nnpipe's temporaries aside) not ``allowed``."""
    for entry in folder.iterdir():
        if not is_nnpipe_temporary(entry.name) and not allowed(entry):
            return entry.name
    return None


def _tune_entry(entry: Path) -> bool:
    """Whether ``entry`` of a tune directory is one nnpipe tune writes."""
    if entry.is_symlink():
        return False
    if entry.is_file():
        return entry.name in TUNE_FILES
    if entry.name == "plots" and entry.is_dir():
        return _foreign_entry(entry, lambda p: p.is_file() and p.suffix == ".png") is None
    if entry.name == "trials" and entry.is_dir():
        return _foreign_entry(entry, lambda p: p.is_dir() and not p.is_symlink()
                              and run_dir_problem(p) is None) is None
    return False


def tune_dir_problem(path: Path) -> str | None:
    """None when ``path`` is an empty folder or a tune directory holding only nnpipe's files."""
    if not path.is_dir():
        return "is a file, not a tune directory"
    if not any(p for p in path.iterdir() if not is_nnpipe_temporary(p.name)):
        return None
    if not (path / TUNE_MARKER).is_file():
        return f"exists and was not made by nnpipe tune (no {TUNE_MARKER})"
    foreign = _foreign_entry(path, _tune_entry)
    if foreign is not None:
        return f"is a tune directory holding something nnpipe did not write ({foreign})"
    return None


def signed_file_problem(signature: bytes, what: str,
                        run_dir_name: str | None = None) -> Callable[[Path], str | None]:
    """A ``foreign`` check for a file output: nnpipe's own when its first 4 KB hold
    ``signature`` (or, with ``run_dir_name``, when it is that file directly in a run directory)."""

    def problem(path: Path) -> str | None:
        if path.is_dir():
            return f"is a folder, not a {what} file"
        if run_dir_name and path.name == run_dir_name and is_run_manifest(
                _read_json(path.parent / "manifest.json")):
            return None
        try:
            with open(path, "rb") as handle:
                head = handle.read(4096)
        except OSError as exc:
            return f"cannot be read ({exc.strerror or exc})"
        return None if signature in head else f"exists and is not a {what} nnpipe wrote"

    return problem


RUN = OutputKind("run directory", True, run_dir_problem)
SWEEP = OutputKind("sweep directory", True, sweep_dir_problem)
TUNE = OutputKind("tune directory", True, tune_dir_problem)
REPORT = OutputKind("report", False, signed_file_problem(REPORT_SIGNATURE, "report", "report.html"))
SCHEMA = OutputKind("schema", False, signed_file_problem(SCHEMA_SIGNATURE, "schema"))


def _dataset_folders(data_dir: Path | None) -> Iterator[Protected]:
    """Every folder a registered dataset is looked for in (its ``candidates``)."""
    from pipeline.registry import default_registry

    registry = default_registry()
    for name in registry.names("datasets"):
        try:
            source = registry.load("datasets", name)
            folders = source.candidates(data_dir)
        except Exception:  # a broken dataset plugin fails only the pipelines using it
            continue
        for folder in folders:
            yield Protected(Path(folder), f"a data folder of dataset {name!r}")


def protected_places(cache_dir: Path | None = None, data_dir: Path | None = None,
                     datasets: bool = True) -> list[Protected]:
    """The cache folder, the data directory and (with ``datasets``) every registered dataset's
    folders: no output may be equal to, inside or above one of them."""
    places = []
    if cache_dir is not None:
        places.append(Protected(Path(cache_dir), "the cache folder"))
    if data_dir is not None:
        places.append(Protected(Path(data_dir), "the data directory"))
    if datasets:
        places.extend(_dataset_folders(data_dir))
    return places


def _resolved(path: Path) -> Path:
    return Path(os.path.abspath(Path(path).expanduser())).resolve()


def _clash(target: Path, place: Protected) -> str | None:
    where = _resolved(place.path)
    if target == where:
        return f"is {place.what}"
    if where in target.parents:
        return f"is inside {place.what} ({place.path})"
    if target in where.parents:
        return f"holds {place.what} ({place.path})"
    return None


def _above_cwd_or_file(target: Path, pipeline_file: Path | None) -> str | None:
    cwd = Path.cwd().resolve()
    if target == cwd or target in cwd.parents:
        return "is the working folder" if target == cwd else "holds the working folder"
    if pipeline_file is not None:
        file = _resolved(pipeline_file)
        if target == file:
            return "is the pipeline file"
        if target in file.parents:
            return f"holds the pipeline file {pipeline_file}"
    return None


def _probe(folder: Path) -> str | None:
    """None when a folder can really be created (and is removed at once) inside ``folder``."""
    try:
        probe = tempfile.mkdtemp(prefix=f".nnpipe-probe-{owner_tag()}.", dir=folder)
    except OSError as exc:
        return f"cannot write in {folder} ({exc.strerror or exc})"
    shutil.rmtree(probe, ignore_errors=True)
    return None


def _writable(target: Path) -> str | None:
    """None when nnpipe can create ``target`` (or its replacement) in its nearest existing
    folder; else why not."""
    parent = target.parent
    while not parent.exists() and not parent.is_symlink():
        parent = parent.parent
    if not parent.is_dir():
        return f"cannot be created: {parent} is a file, not a folder"
    return _probe(parent)


def _problem(path: Path, kind: OutputKind, protected: Iterable[Protected],
             pipeline_file: Path | None) -> str | None:
    if str(path) == "" or "\0" in str(path):
        return "is not a valid path"
    if path.is_symlink():
        return "is a symbolic link (name the folder it points to, or another path)"
    target = _resolved(path)
    for check in (lambda: _above_cwd_or_file(target, pipeline_file),
                  *(lambda place=place: _clash(target, place) for place in protected)):
        problem = check()
        if problem:
            return problem
    if target.exists():
        problem = kind.foreign(target)
        if problem:
            return problem
    return _writable(target)


def check_output(path: Path | str, option: str, kind: OutputKind,
                 protected: Iterable[Protected] = (), pipeline_file: Path | None = None) -> Path:
    """Return ``path`` if nnpipe may write its ``kind`` there, else raise a one-line UserError
    naming ``option`` and the path (see the module's rules).

    Args:
        path: the output as the user gave it.
        option: the option's name for the message (``--out``).
        kind: ``RUN``, ``SWEEP``, ``TUNE``, ``REPORT`` or ``SCHEMA``.
        protected: places no output may be equal to, inside or above (``protected_places``).
        pipeline_file: the pipeline file the command reads (no output may hold it).
    """
    path = Path(path)
    try:
        problem = _problem(path, kind, protected, pipeline_file)
    except (OSError, ValueError) as exc:  # a name too long, a NUL byte, a loop of links
        problem = f"is not a usable path ({getattr(exc, 'strerror', None) or exc})"
    if problem:
        raise UserError(f"{option} {shown(path)}: {problem}; choose another path (nothing was "
                        f"written)")
    return path


def shown(path: Path | str) -> str:
    """A path for a one-line message: as typed when printable, else quoted; long ones cut."""
    text = str(path)
    text = text if text.isprintable() and text.strip() == text and text else repr(text)
    return text if len(text) <= 160 else f"{text[:100]}...{text[-40:]} ({len(text)} characters)"


#: The cache folder's tag (https://bford.info/cachedir/: backup tools skip a tagged folder); it is
#: also how ``nnpipe cache clear`` knows the folder is nnpipe's.
CACHE_TAG = "CACHEDIR.TAG"
CACHE_TAG_TEXT = ("Signature: 8a477f597d28d172789f06886806bc55\n"
                  "# This file is a cache directory tag created by nnpipe (its stage cache).\n")


def is_cache_folder(path: Path) -> bool:
    """Whether ``path`` is a cache folder nnpipe wrote: tagged by nnpipe, or (older caches) holding
    joblib's store of stage entries."""
    try:
        with open(Path(path) / CACHE_TAG, "rb") as handle:
            head = handle.read(512)
        if head.startswith(CACHE_TAG_TEXT[:43].encode()) and b"nnpipe" in head:
            return True
    except OSError:
        pass
    return (Path(path) / "joblib" / "stages").is_dir()


def check_cache_folder(path: Path | str, option: str = "--cache-dir",
                       alternative: str = " (or --no-cache)") -> Path:
    """Return ``path`` if it can serve as the cache folder (a folder, or a path where one can be
    created, that nnpipe can really write in), else raise a one-line UserError naming ``option``
    and, for a command that has one, the ``alternative`` (before any work starts)."""
    path = Path(path)
    try:
        if path.exists() and not path.is_dir():
            problem = "is a file, not a folder"
        else:
            problem = _probe(path) if path.is_dir() else _writable(_resolved(path))
    except (OSError, ValueError) as exc:
        problem = f"is not a usable path ({getattr(exc, 'strerror', None) or exc})"
    if problem:
        raise UserError(f"{option} {shown(path)}: {problem}; the cache folder must be a folder "
                        f"nnpipe can write in{alternative}")
    return path


def checked_out(out: Path | None, kind: OutputKind, default: Callable[[], Path],
                cache_dir: Path | None = None, data_dir: Path | None = None,
                pipeline_file: Path | None = None) -> Path:
    """What a command's ``--out`` names (``out``, else ``default()``), checked with
    ``check_output`` against the cache folder and data folders the command would use (its
    options, else the environment's settings)."""
    from pipeline.io import settings

    protected = protected_places(settings.cache_dir(cache_dir), settings.data_dir(data_dir))
    return check_output(out if out is not None else default(), "--out", kind, protected,
                        pipeline_file)
