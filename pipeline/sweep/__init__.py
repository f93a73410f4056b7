"""Sweeps: run one pipeline file over the cartesian product of ``--grid`` values, in parallel.

The package's parts, one job each, in the order a sweep uses them:

- ``grid``: ``--grid PATH=V1,V2,...`` parsed into axes, and their cartesian product;
- ``options``: the options checked, and how many runs and BLAS threads at a time;
- ``tasks``: every (configuration, seed) loaded and made into a worker's task, or a failed row;
- ``shared``: the stages several runs share, computed once before the runs, and how it went;
- ``backend``: the joblib engine (loky processes, or Dask) the runs are executed on;
- ``worker``: one run, in a worker process, and the metric read back from its run directory;
- ``metric``: which value a configuration is ranked by, and in which direction;
- ``ranking``: the runs summarised per configuration (mean and spread over seeds), best first;
- ``results``: the terminal table, ``sweep.csv`` and ``best.yaml``;
- ``paths``: where the sweep directory and its run directories go;
- ``run``: ``run_sweep``, the whole sweep from those parts.

It may import the engine (config, keys, runner, cache), ``pipeline.io.outputs``, ``pipeline.tables``,
``pipeline.runs.seedstats`` and the plugin author's API; joblib, threadpoolctl and Dask only inside the
functions that need them. Never typer, and no plugin: a grid value is an override, and the metric
is whatever the run directory holds. ``pipeline.tune`` builds on ``worker``, ``backend``,
``shared``, ``options`` and ``metric``.
"""
