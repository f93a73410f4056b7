"""mlp_train validates against the registry ``load_pipeline`` was given (pydantic's validation
context), not the default one: a custom activation in that registry only validates, in both
forms of the stack, and the default registry refuses it by name."""

from __future__ import annotations

import sys
import types
from importlib import metadata

import pytest
import yaml

from pipeline.engine.config import load_pipeline
from pipeline.errors import ConfigError
from pipeline.registry import Registry
from plugins.mlp.activations import Activation

CUBE = Activation("cube", lambda z: z * z * z, lambda z, a: 3 * z * z)


@pytest.fixture
def own_registry(builtin_registry):
    """nnpipe's plugins (the default registry of the plugin tests) plus ``cube``."""
    module = types.ModuleType("cube_for_the_test")
    module.cube = CUBE
    sys.modules[module.__name__] = module
    extra = metadata.EntryPoint(name="cube", value="cube_for_the_test:cube",
                                group="nnpipe.activations")
    base = [entry.entry_point for group in builtin_registry.groups()
            for entry in builtin_registry.entries(group)]
    yield Registry(base + [extra])
    del sys.modules[module.__name__]


def pipeline_file(tmp_path, train: dict) -> str:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"stages": [
        {"kind": "idx_reader", "dataset": "mnist-10k"}, {"kind": "mlp_train", **train}]}))
    return str(path)


@pytest.mark.parametrize("train", [{"activation": "cube", "hidden": [4]},
                                   {"layers": [{"kind": "dense", "units": 4}, "cube"]}])
def test_the_given_registry_is_the_one_validated_against(tmp_path, own_registry,
                                                         builtin_registry, train):
    path = pipeline_file(tmp_path, train)
    spec = load_pipeline(path, registry=own_registry).stages[1]
    if "layers" in train:
        assert [layer.kind for layer in spec.layers] == ["dense", "cube"]
        assert spec.layers[1].activation is CUBE
    else:
        assert spec.activation == "cube"
    assert "cube" not in builtin_registry.names("activations")
    with pytest.raises(ConfigError) as caught:  # the default registry has no cube
        load_pipeline(path)
    assert "unknown activation 'cube'" in str(caught.value) or \
        "unknown layer 'cube'" in str(caught.value)


def test_a_registry_without_an_optimizer_refuses_it(tmp_path, builtin_registry):
    entries = [entry.entry_point for group in builtin_registry.groups()
               for entry in builtin_registry.entries(group)
               if not (group == "optimizers" and entry.name == "adam")]
    path = pipeline_file(tmp_path, {"optimizer": {"kind": "adam"}})
    load_pipeline(path)  # the default registry has adam
    with pytest.raises(ConfigError, match=r"optimizer\.kind: unknown optimizer 'adam'"):
        load_pipeline(path, registry=Registry(entries))
