"""The plugin guide's complete code examples run, and pass the checks the guide recommends."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

from pipeline.testing import check_activation, check_initializer, check_optimizer

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
