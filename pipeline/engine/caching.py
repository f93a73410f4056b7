"""The runner's cache settings for ``--cache-dir``, ``--no-cache`` and ``--from`` (the command line
and the Python API take the same three)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional


def cache_options(pipeline, cache_dir: Optional[Path], no_cache: bool,
                  from_stage: Optional[str],
                  warn: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The Runner's ``cache``, ``state_dir`` and ``force_from``; ``warn`` gets the cache's
    warnings (a damaged entry, say), one line each."""
    from pipeline.engine.cache import StageCache
    from pipeline.engine.plan import resolve_stage
    from pipeline.io import settings
    from pipeline.io.outputs import check_cache_folder

    force_from = resolve_stage(pipeline, from_stage) if from_stage is not None else None
    if no_cache:
        return {"cache": None, "state_dir": None, "force_from": force_from}
    folder = check_cache_folder(settings.cache_dir(cache_dir))
    return {"cache": StageCache(folder, warn=warn), "state_dir": folder, "force_from": force_from}
