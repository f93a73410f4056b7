"""The boundary with the user's machine: where nnpipe may write and what it leaves there.

- ``outputs``: where nnpipe may write, every output option checked before any work starts;
- ``leftovers``: nnpipe's temporary names, and removing the ones a killed process left;
- ``names``: names from a pipeline file made safe as file names; ``settings``: the environment
  (``NNPIPE_DATA``, ``NNPIPE_CACHE``); ``download``: mirrors, resume, checksums.

The bounded readers of what the user hands us (``pipeline.userfiles``) and the memory checks
(``pipeline.resources``) are part of the plugin author's API and stay at the top level.

May import: ``pipeline.errors``, ``pipeline.progress``, ``pipeline.userfiles``, ``pipeline.io``,
``pipeline.registry`` (``outputs`` protects every registered dataset's folders) and
``pipeline.files`` (``outputs`` rewrites a run's manifest atomically).

Never imports: ``typer``, ``rich``, ``pydantic``, ``plugins``.

Imports only inside functions: ``joblib``, ``matplotlib``, ``dask``, ``scipy``.
"""
