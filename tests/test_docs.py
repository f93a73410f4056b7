"""The plugin guide's complete code examples run, and pass the checks the guide recommends."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

from pipeline.testing import check_activation, check_initializer, check_optimizer
from plugins.mlp.layers.gradcheck import check_layer

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
    check_initializer(examples["orthogonal"])
    check_initializer(examples["orthogonal"], fan_in=3, fan_out=5)
    check_layer(examples["GaussianNoise"])


def test_the_readme_links_the_guide():
    readme = (GUIDE.parent.parent / "README.md").read_text()
    assert "(docs/plugins.md)" in readme


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
