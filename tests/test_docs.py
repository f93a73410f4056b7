"""The plugin guide's complete code examples run, and pass the checks the guide recommends."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import numpy as np

from pipeline.testing import check_dataset, check_stage, tiny_dataset
from plugins.mlp.checks import (check_activation, check_initializer, check_layer, check_optimizer,
                                check_schedule)

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"


def complete_examples() -> dict[str, object]:
    """Run every ```python block of the guide without an elided part (``...``); return the names
    they define."""
    module = types.ModuleType("plugins_guide")  # a real module, so pydantic can resolve annotations
    sys.modules[module.__name__] = module
    try:
        for block in re.findall(r"```python\n(.*?)```", GUIDE.read_text(), flags=re.S):
            if "..." not in block:
                exec(compile(block, str(GUIDE), "exec"), module.__dict__)
    finally:
        del sys.modules[module.__name__]
    return module.__dict__


def test_the_guides_plugins_pass_their_checks():
    examples = complete_examples()
    check_activation(examples["swish"])
    check_optimizer(examples["SignSGD"])
    check_optimizer(examples["SignSGDW"])
    check_initializer(examples["orthogonal"])
    check_initializer(examples["orthogonal"], fan_in=3, fan_out=5)
    check_layer(examples["GaussianNoise"])
    check_schedule(examples["Halving"])
    check_schedule(examples["LinearDecay"])
    check_dataset(examples["KMNIST"])


def test_the_guides_plugin_group_is_declared_checked_and_listed(monkeypatch):
    from importlib import metadata

    from pipeline.registry import Registry
    from pipeline.testing import plugin_status

    module = types.ModuleType("guide_groups")
    module.METRICS = complete_examples()["METRICS"]
    module.right = lambda y, p: float(np.mean(np.equal(y, p)))
    module.wrong = lambda y, p: 0.5
    module.not_one = 42
    monkeypatch.setitem(sys.modules, module.__name__, module)
    registry = Registry([metadata.EntryPoint("metrics", "guide_groups:METRICS", "nnpipe.groups")] + [
        metadata.EntryPoint(name, f"guide_groups:{name}", "nnpipe.metrics")
        for name in ("right", "wrong", "not_one")])
    assert "metrics" in registry.groups() and registry.group("metrics").singular == "metric"
    assert plugin_status(registry, "metrics", "right", check=True) == ("PASS", "")
    assert plugin_status(registry, "metrics", "wrong", check=True)[0] == "FAIL"
    status, problem = plugin_status(registry, "metrics", "not_one", check=False)
    assert status == "BROKEN" and "metric 'not_one'" in problem and "expected a function" in problem


def test_the_guides_transform_stage_fits_on_train_and_reads_back(tmp_path):
    examples = complete_examples()
    stage_class = examples["Centre"]
    out = check_stage(stage_class())  # on pipeline.testing.tiny_dataset()
    train = tiny_dataset().split("train").x.astype(np.float64)  # (n, 6, 6), the same every call
    fitted = out["centring"]
    np.testing.assert_allclose(fitted.mean, train.mean(axis=0))  # the train split's mean only
    np.testing.assert_allclose(out["data"].split("train").x.mean(axis=0), 0, atol=1e-5)
    files = fitted.save(tmp_path)
    assert sorted(files) == ["centring.json", "centring.npz"]
    again = stage_class.load_transform(tmp_path)
    x = train[:2] * 0.5
    np.testing.assert_array_equal(again.apply(x), fitted.apply(x))
    assert stage_class.transform_output in stage_class.outputs


def test_the_guides_schedules_give_the_rates_they_promise():
    from plugins.mlp.schedules import epoch_rates

    examples = complete_examples()
    assert epoch_rates(examples["Halving"](), 3, 0.8, 5, 2, []) == [0.2, 0.2]
    assert epoch_rates(examples["LinearDecay"](), 2, 1.0, 2, 4, []) == [0.5, 0.375, 0.25, 0.125]


def test_the_guides_decaying_optimizer_honours_the_mask():
    import numpy as np

    optimizer = complete_examples()["SignSGDW"](lr=0.1, weight_decay=0.5)
    params = np.array([1.0, 1.0])
    optimizer.step(params, np.zeros(2), optimizer.start(params, np.array([True, False])), 0.1)
    assert params.tolist() == [0.95, 1.0]  # the masked entry decays by lr * wd * p, sign(0) = 0


def test_the_readme_links_the_guide():
    readme = (GUIDE.parent.parent / "README.md").read_text()
    assert "(docs/plugins.md)" in readme


ROOT = GUIDE.parent.parent
#: "This is `examples/mnist.yaml`:" followed by a fenced block: the block claims to be the file.
FILE_CLAIM = re.compile(r"This is `([^`]+)`:\s*\n```[\w-]*\n(.*?)```", flags=re.S)


def test_every_readme_block_that_claims_to_be_a_file_is_that_file():
    claims = FILE_CLAIM.findall((ROOT / "README.md").read_text())
    assert [name for name, _ in claims] == ["examples/mnist.yaml"]
    for name, block in claims:
        assert block == (ROOT / name).read_text(), f"the README's {name} is not the file"


def readme_commands(*commands: str) -> list[list[str]]:
    """The arguments of every ``$ nnpipe COMMAND ...`` line of the README's console blocks
    (continuation lines joined, comments dropped), for the given commands."""
    import shlex

    text = (ROOT / "README.md").read_text().replace("\\\n", " ")
    found = []
    for line in re.findall(r"^\$ nnpipe (.*)$", text, flags=re.M):
        args = shlex.split(line, comments=True)
        if args and args[0] in commands:
            found.append(args)
    return found


def test_every_readme_run_and_sweep_names_real_fields_and_stages():
    from typer.testing import CliRunner

    from pipeline.cli import app

    checked = 0
    for args in readme_commands("run", "sweep"):
        file = ROOT / args[1]
        if not file.is_file():  # bad.yaml, fashion.yaml: illustrations, not files of the repo
            continue
        sets = [value for option, value in zip(args, args[1:]) if option in ("--set", "--grid")]
        overrides = [f"{path}={values.split(',')[0]}" for path, _, values in
                     (s.partition("=") for s in sets)]
        command = ["validate", str(file)] + [a for o in overrides for a in ("--set", o)]
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 0, (args, result.output)
        checked += 1
    assert checked >= 3


def test_the_readmes_pipeline_snippets_validate(tmp_path):
    """Every ```yaml block of the README validates: whole pipeline files as they are, a list of
    stages inside a pipeline of an idx_reader, a split and those stages."""
    from pipeline.engine.config import load_pipeline

    readme = (GUIDE.parent.parent / "README.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", readme, flags=re.S)
    assert len(blocks) >= 2
    for index, block in enumerate(blocks):
        if not block.lstrip().startswith("- kind:"):
            text = block
        else:
            text = ("stages:\n  - {kind: idx_reader, dataset: mnist-10k}\n  - {kind: split}\n"
                    + block)
        path = tmp_path / f"block-{index}.yaml"
        path.write_text(text)
        load_pipeline(path)  # raises with every problem if the snippet does not validate


def test_the_readmes_layer_stack_is_the_one_examples_layers_trains():
    import yaml

    from plugins.mlp.trainer import MLPTrain

    readme = (GUIDE.parent.parent / "README.md").read_text()
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", readme, flags=re.S) if "layers:" in b)
    spec = MLPTrain.model_validate(yaml.safe_load(block)[0])
    example = yaml.safe_load((GUIDE.parent.parent / "examples" / "layers.yaml").read_text())
    trained = next(s for s in example["stages"] if s["kind"] == "mlp_train")
    assert spec.layers == MLPTrain.model_validate(trained).layers
    assert [layer.kind for layer in spec.layers] == ["dense", "batch_norm", "relu", "dropout",
                                                     "dense", "layer_norm", "gelu"]


def test_the_guide_documents_the_contract_of_every_installed_group():
    """Each group the installed distributions declare (and the framework's) has its row in the
    guide's table of contracts, naming its full check (or saying it has none)."""
    from pipeline.registry import Registry

    registry = Registry()
    text = GUIDE.read_text()
    for name in registry.groups():
        if name not in registry.names("groups") and name not in ("stages", "datasets",
                                                                  "predictors", "exporters",
                                                                  "groups"):
            continue  # a third party's undeclared group: not nnpipe's to document
        row = next((line for line in text.splitlines() if line.startswith(f"| `nnpipe.{name}` |")),
                   None)
        assert row is not None, f"docs/plugins.md has no contract row for nnpipe.{name}"
        check = registry.group(name).check
        if check is None:
            assert "LOADED" in row
        elif getattr(check, "__module__", "").startswith("plugins.mlp"):
            assert f"`plugins.mlp.checks.{check.__name__}`" in row
