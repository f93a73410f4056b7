"""nnpipe's built-in plugins: the IDX reader, data stages, the MLP trainer and the evaluator.

They are registered through entry points in nnpipe's ``pyproject.toml`` and found exactly like a
third party's plugins. Nothing here knows about the command line or the cache.
"""
