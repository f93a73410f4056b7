"""One broken plugin must not break the tool: broken imports, wrong object types and duplicate
names are listed by ``nnpipe plugins``, and fail only the pipelines that use them, naming the
plugin and its distribution. Each test installs real distributions with ``make_distribution``."""

from __future__ import annotations

import json
import textwrap
from importlib import metadata

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.engine.config import load_pipeline
from pipeline.errors import ConfigError
from pipeline.registry import Registry, plugin_entry_points, set_default_registry
from support import installed_entry_points, make_distribution

runner = CliRunner()

STAGE = '''
from typing import Literal
from pipeline.spec import StageSpec

class Echo(StageSpec):
    """Repeats a word."""
    kind: Literal["echo"] = "echo"
    word: str = "hi"
    times: int = 2
    outputs = ("words",)

    def run(self, inputs, context):
        return {"words": [self.word] * self.times}
'''

WRONG_ACTIVATION = '''
import numpy as np
from types import SimpleNamespace
# The derivative of softplus is the sigmoid; this one is off by 10% at every point.
softplus = SimpleNamespace(value=lambda z: np.logaddexp(0, z).astype(z.dtype),
                           derivative=lambda z, a: (1.1 / (1 + np.exp(-z))).astype(z.dtype))
'''


def builtin_entry_points() -> list[metadata.EntryPoint]:
    return plugin_entry_points()


@pytest.fixture
def third_party(tmp_path, monkeypatch):
    """Install plugin distributions under tmp_path (importable) beside the built-ins, as the
    default registry; call it with make_distribution's arguments after root."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))

    def install(*args, **kwargs):
        make_distribution(site, *args, **kwargs)
        registry = Registry(builtin_entry_points() + installed_entry_points(site))
        set_default_registry(registry)
        return registry

    yield install
    set_default_registry(None)


def write(tmp_path, text):
    path = tmp_path / "p.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_a_broken_import_is_listed_and_other_commands_keep_working(tmp_path, third_party):
    third_party("nnpipe-broken", "0.1", {"nnpipe.stages": {"shaky": "shaky_mod:Shaky"}},
                {"shaky_mod.py": "raise ImportError('needs scipy')\n"})
    listed = runner.invoke(app, ["plugins"])
    assert listed.exit_code == 0
    line = next(l for l in listed.output.splitlines() if l.strip().startswith("shaky"))
    assert "nnpipe-broken 0.1" in line and "BROKEN" in line and "needs scipy" in line
    # A pipeline that does not use it validates; the schema still lists every working kind.
    good = write(tmp_path, "stages:\n  - {kind: idx_reader, dataset: mnist-10k}\n")
    assert runner.invoke(app, ["validate", str(good)]).exit_code == 0
    assert "mlp_train" in runner.invoke(app, ["schema"]).output


def test_a_pipeline_using_a_broken_stage_names_plugin_distribution_and_error(tmp_path, third_party):
    third_party("nnpipe-broken", "0.1", {"nnpipe.stages": {"shaky": "shaky_mod2:Shaky"}},
                {"shaky_mod2.py": "raise ImportError('needs scipy')\n"})
    with pytest.raises(ConfigError) as caught:
        load_pipeline(write(tmp_path, "stages:\n  - kind: shaky\n"))
    message = str(caught.value)
    assert "unknown stage kind" not in message
    assert "stage 'shaky' from nnpipe-broken 0.1 failed to load" in message
    assert "ImportError: needs scipy" in message
    result = runner.invoke(app, ["run", str(write(tmp_path, "stages:\n  - kind: shaky\n"))])
    assert result.exit_code == 2 and "nnpipe-broken 0.1" in result.output


def test_a_pipeline_using_a_broken_activation_names_plugin_and_distribution(tmp_path, third_party):
    third_party("nnpipe-badact", "0.2", {"nnpipe.activations": {"mish": "mish_mod:mish"}},
                {"mish_mod.py": "import no_such_dependency\n"})
    with pytest.raises(ConfigError) as caught:
        load_pipeline(write(tmp_path, "stages:\n  - {kind: mlp_train, activation: mish}\n"))
    message = str(caught.value)
    assert "stages[0].activation" in message
    assert "activation 'mish' from nnpipe-badact 0.2 failed to load" in message
    assert "no_such_dependency" in message


def test_a_wrong_object_type_is_broken_in_every_group(tmp_path, third_party):
    third_party("nnpipe-wrong", "1.0", {"nnpipe.stages": {"num": "wrong_mod:NUMBER"},
                                        "nnpipe.losses": {"num": "wrong_mod:NUMBER"}},
                {"wrong_mod.py": "NUMBER = 42\n"})
    output = runner.invoke(app, ["plugins"]).output
    lines = [l for l in output.splitlines() if l.strip().startswith("num ")]
    assert len(lines) == 2
    assert all("BROKEN" in l and "nnpipe-wrong 1.0" in l for l in lines)
    assert "expected a StageSpec subclass" in lines[0] and "expected a loss" in lines[1].lower()
    with pytest.raises(ConfigError, match="stage 'num' from nnpipe-wrong 1.0 .* not usable"):
        load_pipeline(write(tmp_path, "stages:\n  - kind: num\n"))


def test_the_same_stage_kind_from_two_distributions_names_both(tmp_path, third_party):
    third_party("alpha", "1.0", {"nnpipe.stages": {"echo": "echo_a:Echo"}}, {"echo_a.py": STAGE})
    third_party("beta", "2.0", {"nnpipe.stages": {"echo": "echo_b:Echo"}}, {"echo_b.py": STAGE})
    with pytest.raises(ConfigError) as caught:
        load_pipeline(write(tmp_path, "stages:\n  - kind: echo\n"))
    message = str(caught.value)
    assert "registered twice" in message and "alpha 1.0" in message and "beta 2.0" in message
    listed = runner.invoke(app, ["plugins"]).output
    assert listed.count("registered twice") == 2


def test_a_third_party_stage_is_validated_and_in_the_schema(tmp_path, third_party):
    third_party("nnpipe-echo", "0.5", {"nnpipe.stages": {"echo": "echo_c:Echo"}},
                {"echo_c.py": STAGE})
    pipeline = load_pipeline(write(tmp_path, "stages:\n  - {kind: echo, word: yo, times: 3}\n"))
    assert pipeline.stages[0].run({}, None) == {"words": ["yo"] * 3}
    with pytest.raises(ConfigError) as caught:
        load_pipeline(write(tmp_path, "stages:\n  - kind: echo\n    times: many\n    wrd: x\n"))
    assert [p.split(": ", 1)[1] for p in caught.value.problems] == [
        "stages[0].times: must be a valid integer, unable to parse string as an integer "
        "(got 'many')",
        "stages[0].wrd: unknown field (did you mean 'word'?)"]
    schema = json.loads(runner.invoke(app, ["schema"]).output)
    assert schema["$defs"]["Echo"]["properties"]["times"]["type"] == "integer"
    assert schema["$defs"]["Echo"]["properties"]["kind"]["const"] == "echo"


def failed_check(name: str) -> tuple[list[str], int]:
    """``nnpipe plugins --check``'s lines (it must exit 1) and the index of ``name``'s line."""
    result = runner.invoke(app, ["plugins", "--check"])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    return lines, next(i for i, l in enumerate(lines) if name in l)


def test_plugins_check_catches_a_wrong_derivative(tmp_path, third_party):
    third_party("nnpipe-softplus", "0.1", {"nnpipe.activations": {"softplus_bad": "sp_mod:softplus"}},
                {"sp_mod.py": WRONG_ACTIVATION})
    lines, at = failed_check("softplus_bad")
    assert lines[at].split()[:3] == ["FAIL", "softplus_bad", "nnpipe-softplus"]
    assert "relative error" in lines[at + 1] and "worst at element" in lines[at + 1]
    assert any(l.split()[:2] == ["PASS", "relu"] for l in lines)
    assert lines[-1] == "1 plugin(s) failed"


def test_plugins_check_passes_on_the_builtins():
    result = runner.invoke(app, ["plugins", "--check"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "every plugin passed"


MUTATING_STAGE = '''
from typing import Literal
from pipeline.spec import StageSpec

class Invert(StageSpec):
    """Inverts the images, in place (wrong: its input may be a cached artifact)."""
    kind: Literal["invert"] = "invert"
    inputs = ("data",)
    outputs = ("data",)

    def run(self, inputs, context):
        for split in inputs["data"].splits.values():
            split.x[...] = 255 - split.x
        return {"data": inputs["data"]}
'''


def test_plugins_check_runs_stages_on_a_tiny_dataset(tmp_path, third_party):
    third_party("nnpipe-invert", "0.1", {"nnpipe.stages": {"invert": "invert_mod:Invert"}},
                {"invert_mod.py": MUTATING_STAGE})
    result = runner.invoke(app, ["plugins", "--check"])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    at = next(i for i, l in enumerate(lines) if l.split()[1:2] == ["invert"])
    assert lines[at].split()[0] == "FAIL" and "nnpipe-invert 0.1" in lines[at]
    assert "Invert.run modified input array #0 of shape (24, 6, 6) in place" in lines[at + 1]


WRONG_LAYER = '''
from typing import Literal
from plugins.mlp.layers import Layer, Shapes

class Scale(Layer):
    """y = x * s per feature; its backward forgets x in the gradient of s."""
    kind: Literal["scale_bad"] = "scale_bad"

    def shapes(self, fan_in):
        return Shapes(fan_in, {"s": (fan_in,)})

    def forward(self, x, params, state, ctx):
        return x * params["s"], x

    def backward(self, dy, x, params, grads, ctx):
        grads["s"][...] = dy.sum(axis=0)
        return dy * params["s"]

class NotALayer:
    pass
'''


def test_plugins_check_catches_a_wrong_layer_gradient_and_a_non_layer(tmp_path, third_party):
    third_party("nnpipe-scale", "0.1", {"nnpipe.layers": {"scale_bad": "scale_mod:Scale",
                                                          "not_a_layer": "scale_mod:NotALayer"}},
                {"scale_mod.py": WRONG_LAYER})
    lines, at = failed_check("scale_bad")
    assert lines[at].split()[:3] == ["FAIL", "scale_bad", "nnpipe-scale"]
    assert "backward: dL/ds: relative error" in lines[at + 1]
    at = next(i for i, l in enumerate(lines) if "not_a_layer" in l)
    assert lines[at].split()[0] in ("FAIL", "BROKEN") and "expected a layer class" in lines[at + 1].lower()
    assert any(l.split()[:2] == ["PASS", "batch_norm"] for l in lines)
    assert lines[-1] == "2 plugin(s) failed"


GROUP_DECLARATION = '''
from pipeline.registry import PluginGroup

def _is_text(obj):
    return None if isinstance(obj, str) else f"expected a string, got {type(obj).__name__}"

def check_greeting(obj):
    if not obj.endswith("!"):
        raise AssertionError("a greeting ends with '!'")

GREETINGS = PluginGroup("greetings", "greeting", "a string", _is_text, check_greeting)
NOT_A_GROUP = 42
WRONG_NAME = PluginGroup("salutations", "salutation")
STAGES_AGAIN = PluginGroup("stages", "stage")
HELLO, MEH, NUMBER = "hello!", "meh", 7
'''


def test_a_distribution_declares_its_own_group(tmp_path, third_party):
    """A group declared under nnpipe.groups by a third party: listed, type-checked on every
    load, its full check run by --check; without a full check its members are LOADED."""
    third_party("nnpipe-greet", "0.3", {
        "nnpipe.groups": {"greetings": "greet_mod:GREETINGS"},
        "nnpipe.greetings": {"hello": "greet_mod:HELLO", "meh": "greet_mod:MEH",
                             "number": "greet_mod:NUMBER"}}, {"greet_mod.py": GROUP_DECLARATION})
    result = runner.invoke(app, ["plugins", "--check"])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert "nnpipe.greetings (3)" in lines
    status = {l.split()[1]: l.split()[0] for l in lines
              if l.startswith("  ") and not l.startswith("   ") and "greet_mod" in l}
    assert status == {"hello": "PASS", "meh": "FAIL", "number": "BROKEN", "greetings": "LOADED"}
    assert any("greeting 'number' from nnpipe-greet 0.3" in l and "expected a string" in l
               for l in lines)
    assert any(l.split()[:2] == ["LOADED", "mlp"] for l in lines)  # predictors: no full check


def test_broken_and_missing_declarations_break_their_members_only(tmp_path, third_party):
    third_party("nnpipe-odd", "0.1", {
        "nnpipe.groups": {"odd": "greet_mod2:NOT_A_GROUP", "salute": "greet_mod2:WRONG_NAME",
                          "stages": "greet_mod2:STAGES_AGAIN"},
        "nnpipe.odd": {"one": "greet_mod2:HELLO"}, "nnpipe.salute": {"two": "greet_mod2:HELLO"},
        "nnpipe.nobody": {"three": "greet_mod2:HELLO"}}, {"greet_mod2.py": GROUP_DECLARATION})
    result = runner.invoke(app, ["plugins"])
    assert result.exit_code == 0
    line = {l.split()[0]: l for l in result.output.splitlines() if "greet_mod2" in l}
    assert "BROKEN" in line["one"] and "expected a pipeline.registry.PluginGroup" in line["one"]
    assert "BROKEN" in line["two"] and "declared by a PluginGroup named 'salutations'" in line["two"]
    assert "BROKEN" in line["three"] and "no installed distribution declares the plugin group " \
                                         "'nobody'" in line["three"]
    assert "BROKEN" in line["stages"] and "the framework's own" in line["stages"]
    assert "PASS" in runner.invoke(app, ["plugins", "--check"]).output  # the rest still checks
