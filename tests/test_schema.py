"""``nnpipe schema`` against an independent validator: the ``jsonschema`` package."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.engine.config import load_pipeline, read_document
from pipeline.errors import ConfigError

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PIPELINE_FILES = sorted(p for pattern in ("*.yaml", "*.yml", "*.toml", "*.json")
                        for p in EXAMPLES.glob(pattern))


@pytest.fixture(scope="module")
def validator():
    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.output)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def mnist() -> dict:
    return yaml.safe_load((EXAMPLES / "mnist.yaml").read_text())


def train_stage(document: dict) -> dict:
    return next(stage for stage in document["stages"] if stage["kind"] == "mlp_train")


def test_there_are_example_pipelines():
    assert {"mnist.yaml", "fashion-mnist.yaml"} <= {p.name for p in PIPELINE_FILES}


@pytest.mark.parametrize("path", PIPELINE_FILES, ids=lambda p: p.name)
def test_every_example_validates_against_the_schema(validator, path):
    document, _ = read_document(path)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]
    assert errors == []


@pytest.mark.parametrize("kind", ["sgd", "adam", "adamw"])
def test_each_optimizer_kind_takes_its_own_fields(validator, kind, tmp_path):
    document = mnist()
    own = {"sgd": {"momentum": 0.9, "nesterov": True}, "adam": {"beta1": 0.8},
           "adamw": {"beta2": 0.99}}[kind]
    train_stage(document)["optimizer"] = {"kind": kind, "lr": 0.01, **own}
    assert list(validator.iter_errors(document)) == []


@pytest.mark.parametrize("field, value", [
    ("optimizer", {"kind": "adam", "lr": 0.01, "momentum": 0.9}),  # SGD's field, not Adam's
    ("optimizer", {"kind": "adam", "lr": -1}),
    ("optimizer", {"kind": "no_such_optimizer", "lr": 0.01}),
    ("optimizer", {"lr": 0.01}),  # no kind
    ("schedule", {"kind": "cosine", "patience": 2}),  # plateau's field
    ("activation", "rleu"),
    ("loss", "hinge"),
    ("init", "zeros"),
])
def test_a_wrong_field_or_name_is_rejected_by_the_schema_and_by_nnpipe(validator, field, value,
                                                                      tmp_path):
    document = mnist()
    train_stage(document)[field] = copy.deepcopy(value)
    assert not validator.is_valid(document)
    # the same document is refused by nnpipe itself: the schema says what validation does
    path = tmp_path / "p.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ConfigError):
        load_pipeline(path)


def test_the_enums_are_the_installed_names(validator):
    from pipeline.registry import default_registry

    train = validator.schema["$defs"]["MLPTrain"]["properties"]
    registry = default_registry()
    assert train["activation"]["enum"] == registry.names("activations")
    assert train["loss"]["enum"] == registry.names("losses")
    assert train["init"]["enum"] == registry.names("initializers")
    kinds = [v["properties"]["kind"]["const"] for v in train["optimizer"]["oneOf"]]
    assert kinds == registry.names("optimizers")
    kinds = [v["properties"]["kind"]["const"] for v in train["schedule"]["oneOf"]]
    assert kinds == registry.names("schedules")
