"""``nnpipe predict``: classify images with a saved model (a registered predictor)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from pipeline.cli.options import command_group

app = command_group()


@app.command()
def predict(
    model: Path = typer.Argument(..., help="A run directory holding a saved model."),
    input: Path = typer.Argument(..., help="An IDX file of images, a PNG image or a folder of PNGs."),
    top: int = typer.Option(3, "--top", min=1, help="How many classes to show per sample."),
    labels: Optional[Path] = typer.Option(
        None, "--labels", help="An IDX file of true labels: also print the accuracy."),
    limit: Optional[int] = typer.Option(
        20, "--limit", help="Print at most this many samples (0: none, -1: all)."),
    predictor: Optional[str] = typer.Option(
        None, "--predictor",
        help="The registered predictor to use (default: the one installed, e.g. mlp)."),
) -> None:
    """Classify images with a saved model, applying the run's saved normaliser."""
    from pipeline.registry import default_registry

    registry = default_registry()
    function = registry.load("predictors", predictor or registry.only("predictors", "--predictor"))
    result = function(model, input, top=top, labels=labels)
    lines = result.lines(None if limit is not None and limit < 0 else limit)
    for line in lines:
        typer.echo(line)
    if len(lines) < len(result.names):
        typer.echo(f"... {len(result.names) - len(lines)} more (--limit -1 shows all)")
    if result.accuracy is not None:
        typer.echo(f"accuracy {result.accuracy:.4f}  ({len(result.names)} samples)")
