"""nnpipe's temporary names, and removing the ones a killed process left behind.

Everything nnpipe writes goes through a temporary name beside its final place (a file renamed
into place, a ``.partial`` folder renamed into a run directory). A process killed with SIGKILL
cannot tidy up, so the next run that writes to the same folder removes what it finds, but only
what is certainly nnpipe's and certainly abandoned:

- the name must match one of nnpipe's patterns (below; a user's file does not match by accident:
  each carries nnpipe's owner tag ``<pid>@<host>`` or joblib's uuid-pid-thread suffix; names
  without one, as older nnpipe versions wrote, are never touched);
- and its owner must be gone: its pid no longer runs on this host (the host is a short hash of
  the host name), or, for an owner on another host sharing the folder, it has not been touched
  for a day. joblib's names carry a pid but no host: unless a writer mark beside it says the
  host is this one, the file must also be untouched for ten minutes. So the live temporary file
  of a concurrent run (on this machine or another) is left alone.

Patterns (``B`` is the final name, ``R`` 8 random characters):

    .B.<pid>@<host>.R.tmp | .partial      nnpipe's own temporary file or run-directory folder
    .B.old-<pid>@<host>                   a run directory being replaced
    output.pkl.<32 hex>-<pid>-<thread>    joblib's temporary cache entry (pid, no host; the
                                          host is known when a writer mark is beside it)
    .nnpipe-writer-<pid>@<host>           the mark ``StageCache.store`` puts beside joblib's write
    .nnpipe-probe-<pid>@<host>.R          the probe of ``pipeline.io.outputs`` (can we write here?)
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import time
from pathlib import Path

#: Untouched for this long, a temporary whose owner is on another host is abandoned.
UNKNOWN_OWNER_AGE = 24 * 3600.0
#: Untouched for this long, a temporary whose pid is dead here (but whose host is not known) is
#: abandoned: a live writer on another host keeps touching its file.
DEAD_PID_AGE = 600.0



@functools.lru_cache(maxsize=1)
def host_tag() -> str:
    """Eight hex digits naming this host in temporary names (a hash of its name: a host name
    may hold characters a file name may not). Computed on first use: hashlib and socket cost a
    command that writes nothing (``validate``) a few milliseconds."""
    import hashlib
    import socket

    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]

_OWNED = r"(?P<pid>\d+)@(?P<host>[0-9a-f]{8})\."
_RANDOM = r"[A-Za-z0-9_]{8}"
PATTERNS = (
    re.compile(rf"^\..+?\.{_OWNED}{_RANDOM}\.(?:tmp|partial)$"),
    re.compile(r"^\..+\.old-(?P<pid>\d+)@(?P<host>[0-9a-f]{8})$"),
    re.compile(r"^output\.pkl\.[0-9a-f]{32}-(?P<pid>\d+)-\d+$"),
    re.compile(rf"^\.nnpipe-probe-{_OWNED}{_RANDOM}$"),
    re.compile(r"^\.nnpipe-writer-(?P<pid>\d+)@(?P<host>[0-9a-f]{8})$"),
)


def owner_tag() -> str:
    """``<pid>@<host>``: what nnpipe puts in its temporary names so a later run can tell whether
    their owner is still alive."""
    return f"{os.getpid()}@{host_tag()}"


def writer_mark(folder: Path) -> Path:
    """The mark this process puts in ``folder`` while a library that names its temporary files
    with the pid only (joblib) writes there: it tells a later run which host that pid is on."""
    return Path(folder) / f".nnpipe-writer-{owner_tag()}"


def temp_prefix(name: str) -> str:
    """The prefix of a temporary name beside ``name``: ``.name.<pid>@<host>.`` (``tempfile``
    appends the random part and the suffix)."""
    return f".{name}.{owner_tag()}."


def is_nnpipe_temporary(name: str) -> bool:
    """Whether ``name`` is one of nnpipe's temporary names (live or abandoned)."""
    return any(pattern.match(name) for pattern in PATTERNS)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, under another user
        return True
    return True


def is_abandoned(path: Path, now: float | None = None) -> bool:
    """Whether ``path`` is an nnpipe temporary whose owner is gone (see the module's rules)."""
    match = next((m for m in (p.match(path.name) for p in PATTERNS) if m), None)
    if match is None:
        return False
    try:
        age = (now if now is not None else time.time()) - path.lstat().st_mtime
    except OSError:
        return False  # already gone
    groups = match.groupdict()
    pid, host = groups.get("pid"), groups.get("host")
    here = host_tag()
    if pid is not None and host is None and (path.parent / f".nnpipe-writer-{pid}@{here}").exists():
        host = here  # the writer marked itself as a process of this host
    if pid is not None and host == here:
        return not _alive(int(pid))
    if pid is not None and not _alive(int(pid)):
        return age > DEAD_PID_AGE
    return age > UNKNOWN_OWNER_AGE


def remove_abandoned(folder: Path | str) -> list[Path]:
    """Remove the abandoned nnpipe temporaries directly inside ``folder``; return them.

    Only the entries of ``folder`` itself are looked at (one ``scandir``), so this is cheap enough
    to run before every write. A folder that does not exist or cannot be listed holds none.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    # Decide for every entry first: removing a writer mark must not change the verdict on the
    # temporary file beside it.
    for entry in [e for e in entries if is_abandoned(Path(e.path))]:
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed
