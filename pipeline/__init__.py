"""nnpipe's framework: stage specs, the plugin registry, pipeline files, the runner and the CLI.

It knows nothing about MNIST or neural networks; those are plugins. The Python API
(``pipeline.run``, ``pipeline.load_run``, ``pipeline.Run``; see ``pipeline.api``) is imported on
first use, so ``import pipeline`` stays cheap.
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
