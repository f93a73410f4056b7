"""pipeline.userfiles: every refusal is a UserError naming the source (and line), never another
exception; what a real pipeline file holds is read unchanged."""

from __future__ import annotations

import json

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from pipeline.errors import UserError
from pipeline.userfiles import load_json, load_yaml, read_bytes


@pytest.mark.parametrize("text, where, fragment", [
    ("seed: " + "1" * 5000, ":1:7:", "cannot read the value"),
    ("d: 2024-13-45", ":1:4:", "month must be in 1..12"),
    ("x: !!timestamp 'zz'", ":1:4:", "cannot read the value"),
    ("a:\n  b: [1, {c: 2024-02-30}]", ":2:14:", "day is out of range"),
    ("x: !!python/object:os.system {}", ":1:4:", "YAML syntax error"),
    ("a: 1\na: 2", ":2:1:", "duplicate key 'a' (first given on line 1)"),
    ("1: x\n01: y", ":2:1:", "duplicate key 1"),
    ("a: *nowhere", ":1:4:", "YAML syntax error"),
])
def test_yaml_values_that_cannot_be_built(text, where, fragment):
    with pytest.raises(UserError) as caught:
        load_yaml(text, "p.yaml")
    message = str(caught.value)
    assert message.startswith(f"p.yaml{where}") and fragment in message, message
    assert "\n" not in message


def test_merge_keys_may_be_overridden_and_equal_anchors_share():
    document, _ = load_yaml("base: &b {lr: 0.1, m: 0.9}\nopt:\n  <<: *b\n  lr: 0.01\n", "p.yaml")
    assert document == {"base": {"lr": 0.1, "m": 0.9}, "opt": {"lr": 0.01, "m": 0.9}}


@pytest.mark.parametrize("text, fragment", [
    ('{"seed": ' + "1" * 5000 + "}", "cannot read a value"),
    ('{"a": 1,\n"a": 2}', "p.json:2: duplicate key 'a'"),
    ('{"a": {"b": 1, "c": {"b": 2}},\n "a": 3}', "p.json:2: duplicate key 'a'"),
    ('[{"k": 1}, {"k": 1,\n\n "k": 2}]', "p.json:3: duplicate key 'k'"),
    ("[" * 100000, "JSON nested too deeply"),
    ('{"a": 1', "p.json:1: JSON syntax error"),
])
def test_json_refusals(text, fragment):
    with pytest.raises(UserError) as caught:
        load_json(text, "p.json")
    assert fragment in str(caught.value) and "\n" not in str(caught.value)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=25)


@settings(max_examples=150, deadline=None)
@given(value=JSON)
def test_any_json_without_duplicates_reads_back_unchanged(value):
    text = json.dumps(value, indent=1)
    assert load_json(text, "v.json") == value
    assert load_yaml(yaml.safe_dump(value), "v.yaml")[0] == value


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=200))
def test_any_text_is_a_document_or_one_user_error(text):
    for load in (load_json, load_yaml):
        try:
            load(text, "t")
        except UserError as exc:
            assert str(exc).startswith("t") and "\n" not in str(exc)


def test_read_bytes_reads_a_regular_file_and_caps_it(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_bytes(b"x" * 100)
    assert read_bytes(path, limit=100) == b"x" * 100
    with pytest.raises(UserError, match="may be at most 99 bytes"):
        read_bytes(path, limit=99)
