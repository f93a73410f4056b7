"""The ``nnpipe`` command line: one typer app per command group over the rest of ``pipeline``.

The only package that imports typer. ``app`` (the console script ``pipeline.cli:app``) is loaded
on first use, so ``pipeline.cli.console`` can be imported without building the command line.

May import: ``pipeline``.

Never imports: ``plugins``.

Imports only inside functions: ``joblib``, ``matplotlib``, ``dask``, ``scipy``.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "app":
        from pipeline.cli.main import app

        return app
    raise AttributeError(f"module 'pipeline.cli' has no attribute {name!r}")
