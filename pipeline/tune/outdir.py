"""The tune directory: ``runs/tune-STUDY`` by default, checked like every output, marked at once.

Whether nnpipe may write there is decided by the one output check (``pipeline.io.outputs``, kind
``TUNE``): a new or empty folder, or one holding the marker ``.nnpipe-tune`` and only what
``nnpipe tune`` writes; never a user's folder, the working folder, the cache or a data folder.
The marker is the first thing written into a new tune directory, so a study killed at any later
moment leaves a folder the same command recognises and continues.
"""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.files import write_text
from pipeline.io.outputs import TUNE, TUNE_MARKER, check_output, protected_places


def default_out(study: str, root: Path = Path("runs")) -> Path:
    """``runs/tune-<study>``: fixed, so the same command finds its study again."""
    return root / ("tune-" + (re.sub(r"[^A-Za-z0-9._-]+", "_", study).strip("._") or "study"))


def checked_out(out: Path | None, study: str, pipeline_file: Path, cache_dir: Path,
                data_dir: Path | None) -> Path:
    """The tune directory (``out``, else the default), if nnpipe may write there; else a
    one-line UserError naming ``--out`` (``pipeline.io.outputs``)."""
    return check_output(Path(out) if out is not None else default_out(study), "--out", TUNE,
                        protected_places(cache_dir, data_dir), pipeline_file)


def make_out(out: Path) -> None:
    """Create the tune directory and write its marker first (after ``checked_out``)."""
    out.mkdir(parents=True, exist_ok=True)
    if not (out / TUNE_MARKER).is_file():
        write_text(out / TUNE_MARKER, "made by nnpipe tune; results of a study live here\n")
