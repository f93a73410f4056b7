"""``python -m pipeline.cli``: the same as the ``nnpipe`` console script."""

from pipeline.cli.main import app

app()
