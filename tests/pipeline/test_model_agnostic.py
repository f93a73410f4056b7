"""The framework knows no model: no module of ``pipeline/`` mentions activations, losses,
optimizers, initializers, schedules, MLPs or MNIST in its code (issue 13's acceptance line).

Each module is tokenized; identifiers (split at ``_`` and at case changes), string literals and
comments are searched for those words. Docstrings and the texts of ``help=`` / ``description=``
arguments are left out: they may give the network's names as examples.
"""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import pytest

PIPELINE = Path(__file__).resolve().parents[2] / "pipeline"

#: The words, singular or plural, British spellings too, as whole words (``_``, ``-``, ``.`` and
#: digits separate words: ``val_loss`` and ``fashion-mnist`` count; a dask ``scheduler`` not).
_WORD = r"activations?|loss(?:es)?|optimi[sz]ers?|initiali[sz]ers?|schedules?|mlps?|mnist"
WORDS = re.compile(rf"(?<![A-Za-z])(?:{_WORD})(?![A-Za-z])", re.IGNORECASE)

#: Modules other helpers of session 4 own and are rewriting (issue-13-layout: the command line,
#: the API, console output, runs; issue-13-sweep: sweep and tune). They are here only until
#: those branches land; the lead empties this list at the merge. Nothing else may be added.
ALLOWED_FILES: set[str] = set()

#: Keyword arguments whose text is help for a user (examples allowed there).
HELP_KEYWORDS = {"help", "description", "epilog", "short_help"}


def _docstring_lines(source: str) -> set[int]:
    """The start lines of every docstring (module, class, function) of ``source``."""
    import ast

    lines = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                lines.add(body[0].lineno)
    return lines


def _words_of(name: str) -> list[str]:
    """``val_lossSum`` -> ["val", "loss", "Sum"]."""
    return [w for part in name.split("_") for w in re.findall(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])", part)]


def mentions(source: str) -> list[tuple[int, str]]:
    """(line, token) of every mention of the model's words in the code of ``source``."""
    docstrings = _docstring_lines(source)
    found, previous = [], []  # the last two significant tokens (for ``help=`` texts)
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        kind, text, (line, _), _, _ = token
        is_help = len(previous) == 2 and previous[1] == "=" and previous[0] in HELP_KEYWORDS
        if kind == tokenize.NAME and any(WORDS.fullmatch(w) for w in _words_of(text)):
            found.append((line, text))
        elif kind == tokenize.COMMENT and WORDS.search(text):
            found.append((line, text))
        elif kind == tokenize.STRING and line not in docstrings and not is_help \
                and WORDS.search(text):
            found.append((line, text))
        elif kind == tokenize.STRING and is_help:
            continue  # an implicitly concatenated help text keeps ``previous``
        if kind not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT, tokenize.INDENT,
                        tokenize.DEDENT):
            previous = (previous + [text])[-2:] if kind != tokenize.STRING or not is_help \
                else previous
    return found


def modules() -> list[Path]:
    return sorted(PIPELINE.rglob("*.py"))


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PIPELINE)))
def test_no_module_of_pipeline_mentions_the_model(path):
    relative = str(path.relative_to(PIPELINE))
    if relative in ALLOWED_FILES:
        return  # owned by another helper's branch until it lands (see ALLOWED_FILES)
    found = mentions(path.read_text())
    assert not found, f"pipeline/{relative} mentions the model: " + "; ".join(
        f"line {line}: {text[:60]!r}" for line, text in found)


def test_the_allowed_files_exist():
    """An entry for a module that moved or went away is stale: remove it."""
    stale = sorted(name for name in ALLOWED_FILES if not (PIPELINE / name).is_file())
    assert not stale, f"ALLOWED_FILES names modules that do not exist: {stale}"


def test_the_scan_finds_what_it_looks_for():
    source = ('"""A docstring about the loss."""\n'
              'import typer\n'
              'def f(val_loss, optimizerKind, scheduler):  # the schedule\n'
              '    """Mentions MNIST: a docstring, allowed."""\n'
              '    typer.Option(1, help="e.g. relu activation")\n'
              '    return "mnist-10k", "a dask scheduler"\n')
    lines = [line for line, _ in mentions(source)]
    assert lines == [3, 3, 3, 6]
