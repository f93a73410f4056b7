"""The plugin groups the network consumes, declared here beside the code that uses them.

Each is registered in nnpipe's ``pyproject.toml`` under ``nnpipe.groups`` (as a third party
would declare a group of its own), so the framework learns of them only through the registry:

    activations    elementwise value(z) and derivative(z, a)        check_activation
    losses         value, gradient and link on outputs (n, k)         check_loss
    optimizers     Optimizer subclasses stepping one flat vector      check_optimizer
    initializers   (fan_in, fan_out, rng) -> (W, b)                   check_initializer
    schedules      Schedule subclasses, a rate per epoch or per step  check_schedule
    layers         Layer subclasses of a ``layers:`` stack            check_layer

The type check (run on every load) is the one the trainer relies on; the full check (``nnpipe
plugins --check``) starts with it (``plugins.mlp.checks``).
"""

from __future__ import annotations

from typing import Any, Callable

from pipeline.registry import PluginGroup
from plugins.mlp import activations, init, layers, losses, optim, schedules


def _full_check(name: str) -> Callable[[Any], None]:
    """``plugins.mlp.checks.<name>``, imported when first run: loading a plugin (every
    pipeline) needs only the type checks, ``--check`` and tests the full ones."""
    def check(obj: Any, *args: Any, **kwargs: Any) -> None:
        from plugins.mlp import checks

        getattr(checks, name)(obj, *args, **kwargs)

    # named as the function it stands for, where it lives (pipeline.testing finds it so)
    check.__name__ = check.__qualname__ = name
    check.__module__ = "plugins.mlp.checks"
    return check


ACTIVATIONS = PluginGroup("activations", "activation",
                          "an object with value(z) and derivative(z, a), elementwise",
                          activations.check, _full_check("check_activation"))
LOSSES = PluginGroup("losses", "loss",
                     "an object with value(output, target), gradient(output, target), link(output)",
                     losses.check, _full_check("check_loss"))
OPTIMIZERS = PluginGroup("optimizers", "optimizer", "a subclass of plugins.mlp.optim.Optimizer",
                         optim.check, _full_check("check_optimizer"))
INITIALIZERS = PluginGroup("initializers", "initializer",
                           "a function (fan_in, fan_out, rng) -> (W, b)",
                           init.check, _full_check("check_initializer"))
SCHEDULES = PluginGroup("schedules", "schedule", "a subclass of plugins.mlp.schedules.Schedule",
                        schedules.check, _full_check("check_schedule"))
LAYERS = PluginGroup("layers", "layer", "a subclass of plugins.mlp.layers.Layer",
                     layers.check, _full_check("check_layer"))
