"""``nnpipe tune``: hyperparameter search on Optuna over a pipeline file.

Modules: ``space`` (``--param`` spaces), ``foreign`` (an SQLite ``--storage`` file that is not a
study database is refused), ``study`` (the study in its storage, numbering, crash recovery),
``owner`` (who runs a trial: host, pid and process start), ``trial`` (one trial in a worker),
``loop`` (ask and tell), ``results``, ``plots``, ``report`` (what the study leaves), ``outdir``
(the tune directory) and ``run`` (``run_tune``, the whole command).

May import the engine (config, runner), ``pipeline.sweep`` (workers, backend, option checks,
metric, shared stages, ``best.yaml``), ``pipeline.io.outputs``, ``pipeline.tables``, the plugin
author's API, and Optuna lazily (the optional extra ``nnpipe[tune]``). Never typer, and no plugin.
"""
