"""A bad option or argument on the command line (an unknown option, a value of the wrong type, a
missing argument, a mistyped command) is one ``error:`` line naming it and the command's usage,
exit 2, in a real process (click's own report is a usage block and a framed message); help
still shows where it is asked for."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

GOOD = Path(__file__).resolve().parents[1] / "data" / "good" / "pipeline.yaml"


def nnpipe(*args: str) -> subprocess.CompletedProcess:
    """The command line in a fresh process, named as the console script names it."""
    program = "from pipeline.cli.main import app; app(prog_name='nnpipe')"
    return subprocess.run([sys.executable, "-c", program, *args], capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("args, words", [
    (["run", str(GOOD), "--bogus"], ["nnpipe run: No such option: --bogus", "nnpipe run --help"]),
    (["tune", str(GOOD), "--trials", "x"], ["nnpipe tune: Invalid value for '--trials'"]),
    (["sweep", str(GOOD), "--jobs", "abc"], ["nnpipe sweep: Invalid value for '--jobs'"]),
    (["validate"], ["nnpipe validate: Missing argument", "usage: nnpipe validate"]),
    (["vaildate"], ["No such command 'vaildate'", "validate"]),
    (["--bogus"], ["nnpipe: No such option: --bogus"]),
    (["runs", "compare", "--nope"], ["nnpipe runs compare: No such option: --nope"]),
    (["run", str(GOOD), "--set"], ["'--set' requires an argument"]),
])
def test_a_usage_error_is_one_line_exit_2(args, words):
    result = nnpipe(*args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for word in words:
        assert word in lines[0]
    assert "Traceback" not in result.stderr and "╭" not in result.stderr


@pytest.mark.parametrize("args", [["--help"], ["tune", "--help"], ["cache", "--help"]])
def test_help_still_shows(args):
    result = nnpipe(*args)
    assert result.returncode == 0, result.stderr
    assert "Usage: nnpipe" in result.stdout
