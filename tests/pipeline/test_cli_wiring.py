"""The command line is wired one way: every module of ``pipeline.cli`` builds one typer app, the
root registers them all, and errors are turned into exit statuses in one place."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import typer
from typer.testing import CliRunner

CLI = Path(__file__).resolve().parents[2] / "pipeline" / "cli"
#: The commands users' scripts rely on (docs/design.md, "The command line").
COMMANDS = {"run", "predict", "validate", "plan", "plugins", "schema", "report", "sweep", "export",
            "tune", "cache", "runs"}
#: Modules of pipeline.cli that are not command groups.
SUPPORT = {"__init__", "__main__", "main", "errors", "options", "console", "console_rich"}


def command_modules() -> list[str]:
    return sorted(p.stem for p in CLI.glob("*.py") if p.stem not in SUPPORT)


def test_every_command_module_is_registered_once_and_every_command_is_there():
    from pipeline.cli import main

    registered = [*main.COMMANDS, *main.GROUPS.values()]
    assert sorted(m.__name__.rpartition(".")[2] for m in registered) == command_modules()
    for name in command_modules():
        assert isinstance(importlib.import_module(f"pipeline.cli.{name}").app, typer.Typer)
    group = typer.main.get_command(main.app)
    assert set(group.commands) == COMMANDS


def test_errors_are_handled_only_in_pipeline_cli_errors():
    # A command that catches NnpipeError or KeyboardInterrupt itself, or wraps itself in a
    # decorator, would be a second way of reporting errors.
    found = []
    for path in sorted(CLI.glob("*.py")):
        if path.stem == "errors":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ExceptHandler) and node.type is not None:
                caught = ast.unparse(node.type)
                if "NnpipeError" in caught or "KeyboardInterrupt" in caught:
                    found.append(f"{path.name}:{node.lineno} catches {caught}")
            if isinstance(node, ast.FunctionDef):
                extra = [ast.unparse(d) for d in node.decorator_list
                         if "command" not in ast.unparse(d) and "callback" not in ast.unparse(d)
                         and "lru_cache" not in ast.unparse(d)]
                found += [f"{path.name}:{node.lineno} decorated with {d}" for d in extra]
    assert found == []


def test_an_error_in_a_sub_group_command_is_one_line_and_exit_2(tmp_path):
    # ``runs compare`` is invoked by the ``runs`` group inside the root: the root's handler
    # still reports it.
    from pipeline.cli import app

    result = CliRunner().invoke(app, ["runs", "compare", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.strip() == "error: compare needs at least two run directories"


def test_debug_shows_the_traceback_instead(tmp_path):
    from pipeline.cli import app
    from pipeline.errors import UserError

    result = CliRunner().invoke(app, ["--debug", "runs", "compare", str(tmp_path)])
    assert isinstance(result.exception, UserError)
