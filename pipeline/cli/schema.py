"""``nnpipe schema``: the JSON Schema of pipeline files, installed plugins' stage kinds included."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from pipeline.cli.options import command_group

app = command_group()


@app.command()
def schema(
    out: Optional[Path] = typer.Option(None, "--out", help="Write to this file instead of stdout."),
) -> None:
    """Print the JSON Schema of pipeline files, including installed plugins' stage kinds."""
    from pipeline.engine.config import pipeline_model
    from pipeline.io.outputs import SCHEMA, checked_out
    from pipeline.registry import default_registry

    if out is not None:
        checked_out(out, SCHEMA, lambda: out)
    schema_document = pipeline_model(default_registry()).model_json_schema()
    # The comment first: it is how ``--out`` recognises a schema nnpipe wrote (pipeline.io.outputs).
    document = {"$comment": "nnpipe pipeline file schema", "title": "nnpipe pipeline file",
                **{k: v for k, v in schema_document.items() if k != "title"}}
    text = json.dumps(document, indent=2)
    if out is None:
        typer.echo(text)
    else:
        from pipeline.files import write_text
        from pipeline.io.leftovers import remove_abandoned

        remove_abandoned(out.parent)  # what a killed write left beside it
        write_text(out, text + "\n")
        typer.echo(f"schema written to {out}")
