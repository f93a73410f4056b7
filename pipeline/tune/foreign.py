"""Refuse an SQLite ``--storage`` file that is not a study database, before Optuna writes to it.

``nnpipe tune --storage sqlite:///some.db`` lets Optuna create its tables in that file. When the
file is the user's own database (another program's data, a text file that happens to end in
``.db``), that would write into a file nnpipe did not make. So the parent checks the file first,
read-only, with the standard library: a missing or empty file is fine (Optuna creates it), an
SQLite database is fine when it has no tables yet or has Optuna's (``studies`` and
``version_info``); anything else is refused with one line naming the file. Other storage URLs
(``postgresql://...``) are servers the user points at on purpose and are not checked.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from pipeline.errors import UserError

#: Tables every Optuna RDB storage has; a database holding both is a study database.
OPTUNA_TABLES = frozenset({"studies", "version_info"})


def sqlite_path(url: str) -> Path | None:
    """The file an ``sqlite:`` URL names, or None (another database, or SQLite in memory)."""
    scheme, sep, rest = url.partition(":///")
    if not sep or not (scheme == "sqlite" or scheme.startswith("sqlite+")):
        return None
    database = rest.split("?", 1)[0]  # sqlite:///path?mode=... keeps its query apart
    if database in ("", ":memory:"):
        return None
    return Path(database)


def table_names(path: Path) -> set[str]:
    """The tables of the SQLite file ``path``, opened read-only (nothing is written)."""
    uri = path.resolve().as_uri() + "?mode=ro"
    connection = sqlite3.connect(uri, uri=True)
    try:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {name for (name,) in rows}
    finally:
        connection.close()


def refuse_foreign_storage(url: str) -> None:
    """Raise UserError when ``url`` is an SQLite file that holds something other than studies."""
    path = sqlite_path(url)
    if path is None or not path.exists():
        return
    if not path.is_file():
        raise UserError(f"--storage {url}: {path} is not a file")
    if path.stat().st_size == 0:
        return
    try:
        tables = table_names(path)
    except sqlite3.Error as exc:  # not a database, or unreadable
        raise UserError(f"--storage {url}: {path} is not an SQLite database nnpipe can use "
                        f"({exc}); nnpipe writes studies only into its own files") from None
    if tables and not OPTUNA_TABLES <= tables:
        shown = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
        raise UserError(f"--storage {url}: {path} is a database of something else (tables "
                        f"{shown}); nnpipe will not write a study into it: name a new file")
