"""``nnpipe cache info|clear|prune``: look after the stage cache folder.

The folder holds pickles (see ``pipeline.cache``): these commands only ever touch the folder the
user names with ``--cache-dir`` or ``NNPIPE_CACHE`` (else the per-user default).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Optional

import typer

from pipeline import settings


def _cache(cache_dir: Optional[Path]):
    from pipeline.cache import StageCache

    return StageCache(settings.cache_dir(cache_dir))


def build_cache_app(reports_errors, CacheDirOption) -> typer.Typer:
    """The ``cache`` sub-app, with the main app's error reporting and ``--cache-dir`` option
    (passed in, not imported, so ``python -m pipeline.cli`` does not import cli.py twice)."""
    cache_app = typer.Typer(help="Look after the stage cache: info, clear, prune.",
                            no_args_is_help=True)
    _commands(cache_app, reports_errors, CacheDirOption)
    return cache_app


def _commands(cache_app, reports_errors, CacheDirOption) -> None:

    @cache_app.command()
    @reports_errors
    def info(cache_dir: Optional[Path] = CacheDirOption) -> None:
        """Where the cache is, its size and entries, per pipeline and stage."""
        from pipeline.resources import human_bytes

        cache = _cache(cache_dir)
        entries = cache.entries()
        total = sum(e.size for e in entries)
        typer.echo(f"cache {cache.location}: {len(entries)} entries, {human_bytes(total)} "
                   "(holds pickles: a folder you trust)")
        groups: dict[tuple[str, str], list] = defaultdict(list)
        for entry in entries:
            groups[(entry.pipeline, entry.stage_id)].append(entry)
        for (pipeline, stage_id), group in sorted(groups.items()):
            newest = max(e.created for e in group)
            typer.echo(f"  {pipeline:<20} {stage_id:<16} {len(group):>3} entries "
                       f"{human_bytes(sum(e.size for e in group)):>10}  newest {newest}")


    @cache_app.command()
    @reports_errors
    def clear(cache_dir: Optional[Path] = CacheDirOption) -> None:
        """Remove every cache entry (and the checkpoints kept beside them)."""
        cache = _cache(cache_dir)
        count = cache.clear()
        typer.echo(f"cleared {count} entries from {cache.location}")


    @cache_app.command()
    @reports_errors
    def prune(
        max_size: str = typer.Option(..., "--max-size", help="Keep at most this much: 500M, 2G, ..."),
        cache_dir: Optional[Path] = CacheDirOption,
    ) -> None:
        """Remove the least recently used entries until the cache fits in --max-size."""
        from pipeline.cache import parse_size
        from pipeline.resources import human_bytes

        limit = parse_size(max_size)
        cache = _cache(cache_dir)
        removed = cache.prune(limit)
        left = cache.entries()
        typer.echo(f"removed {removed} entries; {len(left)} left, "
                   f"{human_bytes(sum(e.size for e in left))} in {cache.location}")
