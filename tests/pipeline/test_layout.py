"""The imports between ``pipeline``'s subpackages follow what each ``__init__`` docstring says.

A subpackage's docstring declares, in lines a reader and this test both read:

- ``May import:`` the modules and packages of ``pipeline`` its modules may import (anywhere in
  the module, lazily or not; a package allows all of its modules);
- ``Never imports:`` top-level packages none of its modules imports, even lazily;
- ``Imports only inside functions:`` packages its modules import only where they are used, so a
  command that does not need them does not pay for them.

Everything outside ``pipeline/cli`` must not import typer (the command line lives in one place).
The rules are parsed from the docstrings, so changing what a package may import means changing
its documentation.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PIPELINE = Path(__file__).resolve().parents[2] / "pipeline"
NAME = re.compile(r"``([A-Za-z_][\w.]*)``")
FIELDS = {"May import:": "allowed", "Never imports:": "never",
          "Imports only inside functions:": "lazy"}


def declared_rules(package: Path) -> dict[str, list[str]] | None:
    """The three lists of ``package/__init__.py``'s docstring (None: no ``May import:`` line)."""
    doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text())) or ""
    rules: dict[str, list[str]] = {}
    for paragraph in doc.split("\n\n"):
        for label, key in FIELDS.items():
            if paragraph.startswith(label):
                rules[key] = NAME.findall(paragraph)
    return rules if "allowed" in rules else None


def imports(tree: ast.Module) -> list[tuple[str, int, bool]]:
    """(module imported, line, at module level) for every import statement of ``tree``."""
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # ``from pipeline.io import settings`` imports the module ``pipeline.io.settings``
            package = (PIPELINE.parent / node.module.replace(".", "/")).is_dir()
            names = [f"{node.module}.{alias.name}" if package else node.module
                     for alias in node.names]
        found += [(name, node.lineno, id(node) in top) for name in names]
    return found


def within(name: str, allowed: str) -> bool:
    return name == allowed or name.startswith(allowed + ".")


def problems(package: Path, rules: dict[str, list[str]]) -> list[str]:
    """Every import of a module of ``package`` its docstring does not allow."""
    own = "pipeline." + package.name
    found = []
    for path in sorted(package.rglob("*.py")):
        where = path.relative_to(package.parent)
        for name, line, module_level in imports(ast.parse(path.read_text())):
            root = name.partition(".")[0]
            if root == "pipeline" and name != "pipeline" and not within(name, own) and not any(
                    within(name, allowed) for allowed in rules["allowed"]):
                found.append(f"{where}:{line} imports {name}, not in its package's May import")
            if root in rules.get("never", []):
                found.append(f"{where}:{line} imports {name}, which its package never imports")
            if module_level and root in rules.get("lazy", []):
                found.append(f"{where}:{line} imports {name} at module level")
    return found


PACKAGES = sorted(p for p in PIPELINE.iterdir()
                  if (p / "__init__.py").exists() and declared_rules(p) is not None)


def test_the_architecture_s_packages_declare_their_imports():
    assert {"engine", "io", "runs", "cli"} <= {p.name for p in PACKAGES}


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_imports_follow_the_package_docstring(package):
    assert problems(package, declared_rules(package)) == []


def test_only_the_command_line_imports_typer():
    found = []
    for path in sorted(PIPELINE.rglob("*.py")):
        if path.is_relative_to(PIPELINE / "cli"):
            continue
        found += [f"{path.relative_to(PIPELINE.parent)}:{line}"
                  for name, line, _ in imports(ast.parse(path.read_text()))
                  if name.partition(".")[0] in ("typer", "click")]
    assert found == []


def test_a_forbidden_import_is_found(tmp_path):
    # The checker itself can fail: a package whose module breaks each rule once.
    package = tmp_path / "engine"
    package.mkdir()
    (package / "__init__.py").write_text(
        '"""Doc.\n\nMay import: ``pipeline.errors``.\n\nNever imports: ``typer``.\n\n'
        'Imports only inside functions: ``joblib``.\n"""\n')
    (package / "bad.py").write_text(
        "import joblib\nfrom pipeline.errors import UserError\nfrom pipeline.cli.main import app\n"
        "def f():\n    import typer\n    import joblib\n")
    found = problems(package, declared_rules(package))
    assert [line.split(" imports ")[1] for line in found] == [
        "joblib at module level", "pipeline.cli.main, not in its package's May import",
        "typer, which its package never imports"]
