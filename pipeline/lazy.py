"""Names a module exports but imports on first use, so importing the module stays cheap.

A command that only validates a pipeline file imports every stage plugin it names, and with it
whatever those modules import at the top; the classes and helpers that only running needs can
wait (``benchmarks/cli_latency.py`` measures what a command costs)::

    __getattr__ = lazy_attributes(__name__, {"Reader": "mypackage.readers"})

``from package import Reader`` and ``package.Reader`` then import ``mypackage.readers`` the
first time; any other missing name is the usual ``AttributeError``.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping


def lazy_attributes(module: str, sources: Mapping[str, str]) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` for ``module``: each name of ``sources`` is taken from
    the module it maps to, imported when the name is first asked for."""

    def __getattr__(name: str) -> Any:
        if name in sources:
            return getattr(importlib.import_module(sources[name]), name)
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__
