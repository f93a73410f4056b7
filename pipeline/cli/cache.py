"""``nnpipe cache info|clear|prune``: look after the stage cache folder.

The folder holds pickles (see ``pipeline.engine.cache``): these commands only ever touch the folder the
user names with ``--cache-dir`` or ``NNPIPE_CACHE`` (else the per-user default).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Optional

import typer

from pipeline.cli.options import CacheDirOption, command_group


app = command_group("Look after the stage cache: info, clear, prune.")


def _cache(cache_dir: Optional[Path]):
    from pipeline.engine.cache import StageCache
    from pipeline.io import settings

    return StageCache(settings.cache_dir(cache_dir))


@app.command()
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


@app.command()
def clear(cache_dir: Optional[Path] = CacheDirOption) -> None:
    """Remove every cache entry (and the checkpoints kept beside them)."""
    cache = _cache(cache_dir)
    count = cache.clear()
    typer.echo(f"cleared {count} entries from {cache.location}")


@app.command()
def prune(
    max_size: str = typer.Option(..., "--max-size", help="Keep at most this much: 500M, 2G, ..."),
    cache_dir: Optional[Path] = CacheDirOption,
) -> None:
    """Remove the least recently used entries until the cache fits in --max-size."""
    from pipeline.engine.cache import parse_size
    from pipeline.resources import human_bytes

    limit = parse_size(max_size)
    cache = _cache(cache_dir)
    removed = cache.prune(limit)
    left = cache.entries()
    typer.echo(f"removed {removed} entries; {len(left)} left, "
               f"{human_bytes(sum(e.size for e in left))} in {cache.location}")
