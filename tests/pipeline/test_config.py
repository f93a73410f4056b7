"""Pipeline files: formats, overrides, relative paths and error messages with paths and lines."""

from __future__ import annotations

import json
import textwrap

import pytest

from pipeline.engine.config import Override, format_loc, load_pipeline
from pipeline.errors import ConfigError, UserError

GOOD = """\
name: toy
seed: 7
stages:
  - kind: produce
    count: 4
  - kind: double
  - kind: total
"""


def write(tmp_path, text, name="p.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_yaml_loads_into_stage_models(tmp_path, toy_registry):
    pipeline = load_pipeline(write(tmp_path, GOOD))
    assert [s.kind for s in pipeline.stages] == ["produce", "double", "total"]
    assert pipeline.stages[0].count == 4 and pipeline.spec.seed == 7
    assert pipeline.stage_ids() == ["produce", "double", "total"]


def test_toml_and_json_read_the_same(tmp_path, toy_registry):
    document = {"name": "toy", "seed": 7,
                "stages": [{"kind": "produce", "count": 4}, {"kind": "double"}, {"kind": "total"}]}
    toml = 'name = "toy"\nseed = 7\n[[stages]]\nkind = "produce"\ncount = 4\n' \
           '[[stages]]\nkind = "double"\n[[stages]]\nkind = "total"\n'
    from_yaml = load_pipeline(write(tmp_path, GOOD)).resolved()
    from_json = load_pipeline(write(tmp_path, json.dumps(document), "p.json")).resolved()
    from_toml = load_pipeline(write(tmp_path, toml, "p.toml")).resolved()
    assert from_yaml == from_json == from_toml


def test_every_problem_is_reported_with_path_and_line(tmp_path, toy_registry):
    path = write(tmp_path, """\
        stages:
          - kind: produce
            count: -1
          - kind: dubble
          - kind: double
            factr: 3
        """)
    with pytest.raises(ConfigError) as caught:
        load_pipeline(path)
    problems = caught.value.problems
    assert len(problems) == 3
    assert problems[0] == f"{path}:3: stages[0].count: must be greater than 0 (got -1)"
    assert problems[1].startswith(f"{path}:4: stages[1].kind: unknown stage kind 'dubble'; "
                                  "installed: affine, double, liar, produce, reads_file, total")
    assert "did you mean 'double'" in problems[1]
    assert problems[2] == f"{path}:6: stages[2].factr: unknown field (did you mean 'factor'?)"


def test_missing_kind_and_wrong_type(tmp_path, toy_registry):
    path = write(tmp_path, "stages:\n  - count: 3\n  - kind: produce\n    count: many\n")
    with pytest.raises(ConfigError) as caught:
        load_pipeline(path)
    text = str(caught.value)
    assert "stages[0]: missing 'kind'" in text
    assert "stages[1].count: must be a valid integer" in text and "'many'" in text


def test_yaml_syntax_error_names_file_and_line(tmp_path, toy_registry):
    path = write(tmp_path, "stages:\n  - kind: produce\n   count: [1, 2\n")
    with pytest.raises(UserError) as caught:
        load_pipeline(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:") and "YAML syntax error" in message
    assert "\n" not in message


def test_missing_file_and_directory(tmp_path, toy_registry):
    with pytest.raises(UserError, match="no such pipeline file"):
        load_pipeline(tmp_path / "nope.yaml")
    with pytest.raises(UserError, match="is a directory"):
        load_pipeline(tmp_path)


def test_not_a_mapping(tmp_path, toy_registry):
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_pipeline(write(tmp_path, "- 1\n- 2\n"))


def test_overrides_by_kind_id_and_position(tmp_path, toy_registry):
    path = write(tmp_path, GOOD)
    pipeline = load_pipeline(path, ["produce.count=9", "stages.1.factor=5", "seed=3"])
    assert pipeline.stages[0].count == 9
    assert pipeline.stages[1].factor == 5
    assert pipeline.spec.seed == 3


def test_override_values_are_validated_and_named(tmp_path, toy_registry):
    path = write(tmp_path, GOOD)
    with pytest.raises(ConfigError) as caught:
        load_pipeline(path, ["produce.count=0"])
    assert "stages[0].count: must be greater than 0 (got 0) (from --set produce.count=0)" in str(
        caught.value)
    with pytest.raises(ConfigError, match=r"stages\[0\].cont: unknown field .*did you mean 'count'"):
        load_pipeline(path, ["produce.cont=3"])
    with pytest.raises(UserError, match="unknown stage 'prodce'.*did you mean 'produce'"):
        load_pipeline(path, ["prodce.count=3"])
    with pytest.raises(UserError, match="expected PATH=VALUE"):
        load_pipeline(path, ["produce.count"])
    # an empty name in the path read as 'stages[0].: unknown field' before
    for text in ("produce..count=3", "produce.count.=3", ".count=3"):
        with pytest.raises(UserError, match=r"PATH has an empty name \(two dots in a row"):
            load_pipeline(path, [text])


def test_override_values_are_typed():
    assert Override.parse("a.b=3").value == 3
    assert Override.parse("a.b=[64, 32]").value == [64, 32]
    assert Override.parse("a.b=he_normal").value == "he_normal"


def test_relative_paths_resolve_against_the_file(tmp_path, toy_registry):
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "data.txt").write_text("hello")
    path = write(folder, "stages:\n  - kind: reads_file\n    path: data.txt\n")
    pipeline = load_pipeline(path)
    assert pipeline.stages[0].path == folder / "data.txt"


def test_duplicate_ids_are_refused(tmp_path, toy_registry):
    path = write(tmp_path, "stages:\n  - kind: produce\n    id: a\n  - kind: double\n    id: a\n")
    with pytest.raises(ConfigError, match="'a' is already the id of stages\\[0\\]"):
        load_pipeline(path)


def test_format_loc():
    assert format_loc(("stages", 4, "batch_size")) == "stages[4].batch_size"
    assert format_loc(("seed",)) == "seed"
