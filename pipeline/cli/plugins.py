"""``nnpipe plugins``: every installed plugin by group; ``--check`` runs their contract checks."""

from __future__ import annotations

import typer

from pipeline.cli.options import command_group

app = command_group()


def _plugin_status(short: str, name: str, check: bool) -> tuple[str, str]:
    """(status, problem) of one plugin: OK/BROKEN when listing, PASS/FAIL/BROKEN when checking."""
    from pipeline.errors import PluginError
    from pipeline.registry import default_registry
    from pipeline.testing import TYPE_CHECKS, PluginCheckError, check_plugin

    registry = default_registry()
    try:
        value = registry.load(short, name, check=TYPE_CHECKS.get(short))
    except PluginError as exc:
        return "BROKEN", str(exc)
    if not check:
        return "OK", ""
    try:
        check_plugin(short, value)
    except PluginCheckError as exc:
        return "FAIL", str(exc)
    except Exception as exc:  # a plugin may fail its check in any way
        return "FAIL", f"{type(exc).__name__}: {exc}"
    return "PASS", ""


@app.command()
def plugins(
    check: bool = typer.Option(
        False, "--check", help="Run each plugin's contract checks (derivatives against finite "
                               "differences, shapes, dtypes, spec round-trip); exit 1 if any fails."),
) -> None:
    """List every installed plugin by group, with its distribution and version."""
    from pipeline.registry import GROUPS, default_registry

    registry = default_registry()
    failed = 0
    for short, group in GROUPS.items():
        entries = registry.entries(short)
        typer.echo(f"{group} ({len(entries)})")
        for entry in entries:
            status, problem = _plugin_status(short, entry.name, check)
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
