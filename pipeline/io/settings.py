"""Settings from the environment: where data is looked for and where the cache lives.

``NNPIPE_DATA``: the data directory where registered datasets are looked for and downloaded to
(by default ``$XDG_DATA_HOME/nnpipe``, else ``~/.local/share/nnpipe``). ``NNPIPE_CACHE``: the stage cache folder; by default a per-user cache folder
(``$XDG_CACHE_HOME/nnpipe``, else ``~/.cache/nnpipe``). The cache folder holds pickles: it is a
trust boundary, so point it only at a folder you control. ``NNPIPE_CACHE_VERIFY=always``: hash
every cache entry on every load, not only entries whose file changed since its checksum was taken.
"""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.errors import UserError


def default_data_dir() -> Path:
    """The per-user data folder: ``$XDG_DATA_HOME/nnpipe``, else ``~/.local/share/nnpipe``."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base).expanduser() / "nnpipe"


def data_dir(option: Path | None = None) -> Path:
    """The data directory: the command-line option, else ``NNPIPE_DATA``, else the per-user one."""
    if option is not None:
        return Path(option).expanduser()
    value = os.environ.get("NNPIPE_DATA")
    return Path(value).expanduser() if value else default_data_dir()


def cache_dir(option: Path | None = None) -> Path:
    """The cache folder: the command-line option, else ``NNPIPE_CACHE``, else the per-user one."""
    if option is not None:
        return Path(option).expanduser()
    value = os.environ.get("NNPIPE_CACHE")
    if value:
        return Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "nnpipe"


def cache_verify_always() -> bool:
    """Whether ``NNPIPE_CACHE_VERIFY=always`` asks to hash every cache entry on every load
    (unset or empty: no); any other value is a UserError naming it, not silently the default."""
    value = os.environ.get("NNPIPE_CACHE_VERIFY", "").strip()
    if value.lower() not in ("", "always"):
        raise UserError(f"NNPIPE_CACHE_VERIFY={value}: unknown value; set it to 'always' (hash "
                        f"every cache entry on every load) or leave it unset")
    return value.lower() == "always"
