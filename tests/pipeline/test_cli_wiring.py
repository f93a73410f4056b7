"""The command line is wired one way: every module of ``pipeline.cli`` builds one typer app, the
root registers them all, and errors are turned into exit statuses in one place."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest
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

    assert sorted(main.NAMES) == command_modules() and len(set(main.NAMES)) == len(main.NAMES)
    for name in command_modules():
        assert isinstance(importlib.import_module(f"pipeline.cli.{name}").app, typer.Typer)
    group = typer.main.get_command(main.app)
    with click_context(group) as ctx:
        assert group.list_commands(ctx) == list(main.NAMES)  # the order of --help
        assert set(group.commands) == COMMANDS


def test_a_command_is_built_on_first_use_as_a_root_holding_every_command_builds_it():
    # Laziness must not change a command: the one built alone has the parameters, help and
    # callback of the one a root that registers every module eagerly holds.
    from pipeline.cli import main

    eager = typer.main.get_command(main.root_app(main.NAMES))
    lazy = typer.main.get_command(main.app)
    assert lazy.commands == {}  # nothing is built before it is asked for
    with click_context(lazy) as ctx:
        for name in ("validate", "cache", "runs"):
            built, expected = lazy.get_command(ctx, name), eager.commands[name]
            assert described(built) == described(expected)
        assert lazy.get_command(ctx, "nosuch") is None
        assert list(lazy.commands) == ["validate", "cache", "runs"]


@pytest.mark.parametrize("args", [["--help"], ["validate", "--help"], ["cache", "--help"],
                                  ["runs", "compare", "--help"], ["vaildate"], ["validate"]])
def test_help_and_usage_errors_are_those_of_a_root_holding_every_command(args):
    from pipeline.cli import main

    eager, lazy = (CliRunner().invoke(app, args) for app in (main.root_app(main.NAMES),
                                                             main.root_app()))
    assert (lazy.exit_code, lazy.output) == (eager.exit_code, eager.output)
    assert "usage: nnpipe" in lazy.output.lower()


def described(command) -> tuple:
    """What a user sees of a command: its kind, help, parameters and sub-commands."""
    params = [(p.name, getattr(p, "opts", None), getattr(p, "help", None), p.required,
               repr(p.default)) for p in command.params]
    children = {name: described(sub) for name, sub in getattr(command, "commands", {}).items()}
    return type(command).__name__, command.help, params, children


def click_context(group):
    """A context of the root group, as its own ``main`` would make one."""
    return group.make_context("nnpipe", ["validate", "x"], resilient_parsing=True)


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
