"""The engine: what turns a validated pipeline into work, independent of any command line.

- ``config`` reads a pipeline file into validated specs (``overrides``: ``--set``; ``addressing``:
  the names a stage is printed and accepted under);
- ``keys`` and ``chain``: every stage's cache key, computed once, as typed records;
- ``cache`` and ``cache_check``: the stage cache and the checks an entry passes before it is used;
- ``runner`` runs the stages and writes the run directory, ``transforms`` records the fitted
  transforms it replays, ``plan`` says what a run would do without running it.

May import: ``pipeline.spec``, ``pipeline.artifacts``, ``pipeline.errors``, ``pipeline.files``,
``pipeline.registry``, ``pipeline.progress``, ``pipeline.userfiles``, ``pipeline.resources``,
``pipeline.io``, ``pipeline.engine`` and
``pipeline.runs.report`` (a finished run directory holds its report).

Never imports: ``typer``, ``rich``, ``plugins``.

Imports only inside functions: ``joblib``, ``matplotlib``, ``dask``, ``scipy``.
"""
