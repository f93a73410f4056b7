"""``nnpipe tune``: hyperparameter search on Optuna over a pipeline file.

May import ``pipeline`` (config, runner, sweep, files, errors) and Optuna (lazily: it is the
optional extra ``nnpipe[tune]``); knows nothing about typer, MNIST or MLPs. Entry point:
``pipeline.tune.run.run_tune``.
"""
