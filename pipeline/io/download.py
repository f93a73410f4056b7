"""Download a file from a list of mirrors: resume a partial download, verify its checksum.

The file grows as ``NAME.part`` beside its final place and is renamed only once its sha256 is
right, so a half-downloaded or corrupt file is never taken for a good one. A mirror that fails
(refused, timed out, an HTTP error, a wrong checksum) is followed by the next one.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from pipeline.errors import DataError
from pipeline.progress import NullProgress

_CHUNK = 1 << 16


def sha256_of(path: Path) -> str:
    """The sha256 hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fetch(url: str, part: Path, progress, timeout: float) -> None:
    """Append the rest of ``url`` to ``part`` (asking for a byte range when part is not empty)."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "nnpipe"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:
            return  # nothing left to fetch: the part is whole (the checksum will tell)
        raise
    with response:
        resumed = have and response.status == 206
        length = response.headers.get("Content-Length")
        total = (int(length) if length else 0) + (have if resumed else 0)
        progress.begin(f"download {part.name.removesuffix('.part')}", total or 1)
        if resumed:
            progress.advance(have)
        with open(part, "ab" if resumed else "wb") as out:
            while block := response.read(_CHUNK):
                out.write(block)
                progress.advance(len(block))
        progress.end()


def download(file_name: str, mirrors: list[str] | tuple[str, ...], sha256: str | None,
             folder: Path, progress=None, timeout: float = 30.0) -> Path:
    """Download ``file_name`` from the first mirror that serves it whole into ``folder``.

    Args:
        file_name: the file's name, appended to each mirror's base URL.
        mirrors: base URLs, tried in order.
        sha256: the expected digest; a mismatch deletes the file and tries the next mirror.
        folder: where the file goes (created if needed).
        progress: a progress listener (``pipeline.progress``) for the byte count and warnings.

    Raises:
        DataError: no mirror gave the file with the right checksum; the message lists why each
            failed.
    """
    progress = progress or NullProgress()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / file_name
    part = folder / f"{file_name}.part"
    failures = []
    for base in mirrors:
        url = base.rstrip("/") + "/" + file_name
        try:
            _fetch(url, part, progress, timeout)
        except urllib.error.HTTPError as exc:
            failures.append(f"{url}: HTTP {exc.code} {exc.reason}")
            continue
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            failures.append(f"{url}: {reason}")
            continue
        digest = sha256_of(part)
        if sha256 is not None and digest != sha256:
            part.unlink()
            message = (f"{url}: checksum mismatch (sha256 {digest}, expected {sha256}); "
                       "the downloaded file was deleted")
            progress.log(f"warning: {message}")
            failures.append(message)
            continue
        os.replace(part, final)
        return final
    tried = "; ".join(failures) or "no mirrors are registered"
    raise DataError(f"could not download {file_name} into {folder}: {tried}")
