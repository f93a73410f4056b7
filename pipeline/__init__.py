"""nnpipe's framework: stage specs, the plugin registry, pipeline files, the runner and the CLI.

It knows nothing about MNIST or neural networks; those are plugins. Its layout:

- the plugin author's API, importable exactly here: ``spec``, ``artifacts``, ``errors``,
  ``files``, ``registry``, ``testing``, ``progress`` (what a stage reports through),
  ``userfiles`` (bounded readers), ``resources`` (memory checks) and ``lazy`` (a module's names
  imported on first use);
- ``engine/``: pipeline files and overrides, stage names, keys, the cache, the runner, plan;
- ``io/``: where nnpipe may write, its temporary names, settings, downloads;
- ``runs/``: reading run directories (list, compare, report, statistics over seeds);
- ``sweep`` and ``tune/``: many runs of one pipeline;
- ``cli/``: the command line, the only package that imports typer.

Each subpackage's ``__init__`` says what it may import (``tests/pipeline/test_layout.py`` holds
it to that). The Python API (``pipeline.run``, ``pipeline.load_run``, ``pipeline.Run``; see
``pipeline.api``) is imported on first use, so ``import pipeline`` stays cheap.
"""

__version__ = "0.1.0"

#: Names served lazily from ``pipeline.api``.
_API = ("run", "load_run", "Run")
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        from pipeline import api

        return getattr(api, name)
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
