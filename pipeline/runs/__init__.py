"""Reading run directories: list and compare them (``rundirs``), a run's HTML page (``report``),
statistics over seeds (``seedstats``).

May import: ``pipeline.errors``, ``pipeline.files``, ``pipeline.userfiles``, ``pipeline.tables``,
``pipeline.io``, ``pipeline.engine.addressing``,
``pipeline.runs``.

Never imports: ``typer``, ``rich``, ``plugins``.

Imports only inside functions: ``joblib``, ``matplotlib``, ``dask``, ``scipy``.
"""
