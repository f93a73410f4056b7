"""``nnpipe plugins``: every installed plugin by group; ``--check`` runs their contract checks."""

from __future__ import annotations

import typer

from pipeline.cli.options import command_group

app = command_group()


@app.command()
def plugins(
    check: bool = typer.Option(
        False, "--check", help="Run each plugin's contract checks (derivatives against finite "
                               "differences, shapes, dtypes, spec round-trip); exit 1 if any fails."),
) -> None:
    """List every installed plugin by group, with its distribution and version."""
    from pipeline.registry import default_registry
    from pipeline.testing import plugin_status

    registry = default_registry()
    failed = 0
    for short in registry.groups():
        entries = registry.entries(short)
        typer.echo(f"nnpipe.{short} ({len(entries)})")
        for entry in entries:
            status, problem = plugin_status(registry, short, entry.name, check)
            failed += status in ("FAIL", "BROKEN")
            line = f"  {entry.name:<16} {entry.origin:<22} {entry.target}"
            if check:
                line = f"  {status:<6}" + line[1:]
            if problem:
                line += f"  {status}: {problem}" if not check else f"\n          {problem}"
            typer.echo(line)
    if check:
        typer.echo(f"{failed} plugin(s) failed" if failed else "every plugin passed")
        if failed:
            raise typer.Exit(1)
