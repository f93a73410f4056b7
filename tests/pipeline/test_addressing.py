"""Stage addressing: every stage name the tool prints is accepted wherever a stage is named."""

from __future__ import annotations

import json
import re
import textwrap

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.engine.addressing import find_stage, stage_names
from pipeline.errors import UserError
from pipeline.sweep.grid import parse_grid

runner = CliRunner()

#: Two stages of one kind (double), so their printed names cannot be the kind.
TWO_DOUBLES = """\
    name: twins
    stages:
      - {kind: produce, count: 4}
      - {kind: double, factor: 2}
      - {kind: double, factor: 3}
      - {kind: total}
    """
KINDS = ["produce", "double", "double", "total"]


def cli(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def twins(tmp_path, toy_registry):
    path = tmp_path / "twins.yaml"
    path.write_text(textwrap.dedent(TWO_DOUBLES))
    return path


def printed_names(tmp_path, path) -> dict[str, set[str]]:
    """Every stage name ``run`` (its stage lines and manifest), ``plan`` and ``runs compare``
    print, by source."""
    cache = tmp_path / "cache"
    first = cli("run", path, "--cache-dir", cache, "--out", tmp_path / "runs" / "a")
    assert first.exit_code == 0, first.output
    stage_lines = [line.split()[1:-1] for line in first.output.splitlines()
                   if line.split()[:1] == ["ran"]]  # ran  stages[N] [name]  0.00s
    second = cli("run", path, "--cache-dir", cache, "--out", tmp_path / "runs" / "b",
                 "--set", "stages[1].factor=5", "--set", "stages[2].factor=7")
    assert second.exit_code == 0, second.output
    manifest = json.loads((tmp_path / "runs" / "a" / "manifest.json").read_text())
    plan = cli("plan", path, "--cache-dir", cache)
    assert plan.exit_code == 0, plan.output
    compare = cli("runs", "compare", tmp_path / "runs" / "a", tmp_path / "runs" / "b")
    assert compare.exit_code == 0, compare.output
    settings = compare.output.split("\n\n")[0].splitlines()[2:]  # under the header and rule
    return {
        "run": {name for names in stage_lines for name in names},
        "manifest": {stage["id"] for stage in manifest["stages"]},
        "plan": {name for line in plan.output.splitlines()
                 for name in re.match(r"^(stages\[\d+\])(?: (\S+))?:", line).groups() if name},
        "runs compare": {line.split()[0].rpartition(".")[0] for line in settings},
    }


def test_every_printed_stage_name_is_accepted_by_set_and_from(tmp_path, twins):
    names = printed_names(tmp_path, twins)
    assert names["runs compare"] == {"stages[1]", "stages[2]"}  # the two factors differ
    assert {"stages[1]", "stages[2]"} <= names["manifest"] and names["plan"] >= names["manifest"]
    assert names["run"] == {"stages[0]", "produce", "stages[1]", "stages[2]", "stages[3]", "total"}
    for source, found in names.items():
        for name in found:
            index = find_stage(name, [{"kind": k} for k in KINDS], "test")
            # --set NAME.field reaches that stage: a wrong value is reported at stages[index]
            result = cli("validate", twins, "--set", f"{name}.kind=nosuch")
            assert result.exit_code == 2, (source, name, result.output)
            assert f"stages[{index}].kind: unknown stage kind 'nosuch'" in result.output
            assert cli("validate", twins, "--set", f"{name}.kind={KINDS[index]}").exit_code == 0
            # --from NAME forces exactly that stage and what follows it
            plan = cli("plan", twins, "--cache-dir", tmp_path / "cache", "--from", name)
            assert plan.exit_code == 0, (source, name, plan.output)
            lines = plan.output.splitlines()
            assert f"stages[{index}]" in lines[index] and "forced by --from" in lines[index]
            assert all(": cached" in line for line in lines[:index]), plan.output


@pytest.mark.parametrize("name, index", [
    ("stages[2]", 2), ("stages.2", 2), ("2", 2), ("double#2", 2), ("double#1", 1),
    ("produce", 0), ("total", 3), ("prep", 1),
])
def test_every_form_of_a_stage_name_resolves(name, index):
    stages = [{"kind": "produce"}, {"kind": "double", "id": "prep"}, {"kind": "double"},
              {"kind": "total"}]
    assert find_stage(name, stages, "--from x") == index


def test_printed_names_are_id_then_unique_kind_then_position():
    stages = [{"kind": "produce"}, {"kind": "double", "id": "prep"}, {"kind": "double"},
              {"kind": "total", "id": "produce"}]
    # "produce" is stage 3's id, so it cannot also name stage 0; "double" is the kind of two
    # stages, but of one without an id
    assert stage_names(stages) == ["stages[0]", "prep", "double", "produce"]
    assert find_stage("double", stages, "--from double") == 2
    assert stage_names([{"kind": "a"}, {"kind": "a"}]) == ["stages[0]", "stages[1]"]


def test_an_ambiguous_kind_or_an_unknown_name_lists_the_valid_names(twins):
    result = cli("validate", twins, "--set", "double.factor=4")
    assert result.exit_code == 2
    assert result.output.strip() == ("error: --set double.factor=4: 2 stages are of kind "
                                     "'double'; name one of them: stages[1], stages[2]")
    result = cli("plan", twins, "--from", "totl")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: --from totl: unknown stage 'totl'; the stages are 0:produce, 1:stages[1], "
        "2:stages[2], 3:total (did you mean 'total'?)"]
    result = cli("validate", twins, "--set", "stages[9].factor=1")
    assert result.exit_code == 2 and "there is no stages[9] (the pipeline has 4 stages" in \
        result.output


@pytest.mark.parametrize("override, message", [
    ("stages.0.count.x=1", "--set stages.0.count.x=1: stages[0].count is 4, not a mapping; "
                           "there is no field 'x' inside it"),
    ("produce.count.x.y=1", "stages[0].count is 4, not a mapping"),
    ("stages.0=5", "--set stages.0=5: replaces stages[0] with 5; a stage is a mapping"),
    ("stages[3]=[1]", "replaces stages[3] with [1]"),
    ("name.x=1", "--set name.x=1: name is 'twins', not a mapping"),
    ("stages.7x.factor=1", "unknown stage 'stages'"),
])
def test_an_override_into_a_scalar_is_exit_2_naming_it(twins, override, message):
    result = cli("run", twins, "--set", override)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_a_whole_stage_may_be_replaced_by_a_mapping_and_a_missing_field_is_created(twins):
    result = cli("validate", twins, "--set", "stages[3]={kind: total}")
    assert result.exit_code == 0, result.output
    result = cli("validate", twins, "--set", "stages.1.extra.deep=1")
    assert result.exit_code == 2 and "stages[1].extra: unknown field" in result.output


def test_grid_paths_take_every_printed_form():
    for path in ("stages[1].factor", "stages.1.factor", "double#1.factor", "prep.factor"):
        assert parse_grid(f"{path}=1,2").path == path
    with pytest.raises(UserError):
        parse_grid("stages[1].factor")
