"""The command line: exit statuses, one-line errors, plugins from outside the project."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from typer.testing import CliRunner

from support import make_distribution
from pipeline.cli import app

runner = CliRunner()


def write(tmp_path, text, name="p.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_run_writes_the_run_directory(tmp_path, toy_registry):
    path = write(tmp_path, "stages:\n  - {kind: produce}\n  - {kind: total}\n")
    result = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "ran  stages[0] produce" in result.output
    assert (tmp_path / "run" / "manifest.json").is_file()


def test_bad_field_exits_2_with_one_line_and_no_traceback(tmp_path, toy_registry):
    path = write(tmp_path, "stages:\n  - kind: produce\n    count: -3\n")
    result = runner.invoke(app, ["run", str(path)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert lines == [f"error: {path}:3: stages[0].count: must be greater than 0 (got -3)"]
    assert "Traceback" not in result.output


def test_run_failure_exits_1(tmp_path, toy_registry):
    path = write(tmp_path, "stages:\n  - {kind: liar}\n")
    result = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "run")])
    assert result.exit_code == 1
    assert "declares outputs" in result.output


def test_validate_reports_ok_and_wiring(tmp_path, toy_registry):
    good = write(tmp_path, "stages:\n  - {kind: produce}\n  - {kind: total}\n")
    result = runner.invoke(app, ["validate", str(good)])
    assert result.exit_code == 0 and "ok (2 stages: produce, total)" in result.output
    bad = write(tmp_path, "stages:\n  - {kind: total}\n", "bad.yaml")
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 2 and "needs 'numbers'" in result.output


def test_schema_lists_the_installed_kinds(toy_registry):
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    text = json.dumps(schema)
    for kind in ("produce", "double", "total", "reads_file"):
        assert f'"const": "{kind}"' in text or f'"{kind}"' in text
    assert schema["title"] == "nnpipe pipeline file"


def test_plugins_lists_every_builtin_with_its_distribution():
    result = runner.invoke(app, ["plugins"])
    assert result.exit_code == 0
    assert "nnpipe.stages" in result.output and "nnpipe.activations" in result.output
    line = next(l for l in result.output.splitlines() if l.strip().startswith("mlp_train"))
    assert "nnpipe 0.1.0" in line and "BROKEN" not in line


STAGE_MODULE = '''
from typing import Literal
from pipeline.spec import StageSpec

class Constant(StageSpec):
    kind: Literal["constant"] = "constant"
    value: int = 1
    outputs = ("numbers",)

    def run(self, inputs, context):
        return {"numbers": [self.value] * 3}
'''


def test_a_stage_from_another_distribution_runs_from_a_pipeline_file(tmp_path):
    """A third party's stage, installed as its own distribution, used with no change to nnpipe."""
    site = tmp_path / "site"
    make_distribution(site, "nnpipe-constant", "0.3.0",
                      {"nnpipe.stages": {"constant": "nnpipe_constant:Constant"}},
                      {"nnpipe_constant.py": STAGE_MODULE})
    path = write(tmp_path, "stages:\n  - {kind: constant, value: 5}\n")
    env = dict(os.environ, PYTHONPATH=str(site))
    command = [sys.executable, "-m", "pipeline.cli"]
    done = subprocess.run(command + ["run", str(path), "--out", str(tmp_path / "run")],
                          env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "ran  stages[0] constant" in done.stdout
    listed = subprocess.run(command + ["plugins"], env=env, capture_output=True, text=True)
    assert "nnpipe-constant 0.3.0" in listed.stdout
    schema = subprocess.run(command + ["schema"], env=env, capture_output=True, text=True)
    assert "constant" in json.loads(schema.stdout)["$defs"]["Constant"]["properties"]["kind"]["const"]
