"""The tune directory: recognised by its marker file, never made inside a folder of the user's.

Results are written only into a folder that does not exist yet, is empty, or holds the marker
``.nnpipe-tune`` (written when the folder is made); any other folder is refused, so a mistyped
``--out`` never mixes the study into someone's files. Running the same command again finds the
marker and continues the study.
"""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.errors import UserError
from pipeline.files import write_text

MARKER = ".nnpipe-tune"


def default_out(study: str, root: Path = Path("runs")) -> Path:
    """``runs/tune-<study>``: fixed, so the same command finds its study again."""
    return root / ("tune-" + (re.sub(r"[^A-Za-z0-9._-]+", "_", study).strip("._") or "study"))


def check_out(out: Path) -> None:
    """Refuse a file, or an existing non-empty folder nnpipe tune did not make."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: is a file, not a folder")
    if out.is_dir() and not (out / MARKER).is_file() and any(out.iterdir()):
        raise UserError(f"--out {out}: the folder exists and was not made by nnpipe tune "
                        f"(no {MARKER}); choose a new or empty folder")


def make_out(out: Path) -> None:
    """Create the tune directory with its marker (after ``check_out``)."""
    out.mkdir(parents=True, exist_ok=True)
    if not (out / MARKER).is_file():
        write_text(out / MARKER, "made by nnpipe tune; results of a study live here\n")
