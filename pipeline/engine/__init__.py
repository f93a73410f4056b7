"""The engine: what turns a validated pipeline into work, independent of any command line.

Stage addressing (``addressing``: the names a stage is printed and accepted under) and the key
chain (``chain``: every stage's cache key, computed once, as typed records). The rest of the
engine (config and overrides, keys, cache, runner, plan) moves here when the package layout is
settled; until then those modules stay at ``pipeline.*`` and use these.

May import: the standard library, pydantic, and the plugin author's API of ``pipeline`` (``spec``,
``artifacts``, ``errors``, ``files``, ``registry``) plus ``pipeline.keys``. Never typer, rich,
joblib at import time, or anything of ``plugins``.
"""
