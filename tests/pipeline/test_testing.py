"""pipeline.testing: the generic checks (stages, datasets, a group's declared checks) pass on a
correct plugin and fail, saying where, on a wrong one."""

from __future__ import annotations

import pytest

from pipeline.registry import Registry
from pipeline.testing import PluginCheckError, check_plugin, check_stage, tiny_dataset
from toy_stages import Double, Liar, Produce


def test_stage_spec_round_trip_and_outputs():
    assert check_stage(Produce) == {"numbers": [0, 1, 2]}
    assert check_stage(Double(factor=3), inputs={"numbers": [1, 2]}) == {"numbers": [3, 6]}
    with pytest.raises(PluginCheckError, match=r"returned \['something_else'\]; declared"):
        check_stage(Liar)
    with pytest.raises(PluginCheckError, match="sample inputs lack numbers"):
        check_stage(Double, inputs={})


def test_a_stage_mutating_its_input_fails():
    from typing import Literal

    from pipeline.spec import StageSpec

    class Zeroes(StageSpec):
        kind: Literal["zeroes"] = "zeroes"
        inputs = ("data",)
        outputs = ("data",)

        def run(self, inputs, context):
            inputs["data"].split("train").x[:] = 0
            return {"data": inputs["data"]}

    with pytest.raises(PluginCheckError, match="modified input array #0 of shape"):
        check_stage(Zeroes)


def test_tiny_dataset_is_small_and_described():
    data = tiny_dataset()
    assert data.sample_shape == (6, 6) and data.split("train").x.shape == (24, 6, 6)


def test_every_installed_plugin_passes_its_check():
    registry = Registry()
    checked = 0
    for group in registry.groups():
        for name in registry.names(group):
            checked += check_plugin(group, registry.load(group, name), registry)
    assert checked >= 40  # the built-ins with a full check, at least


def test_a_stage_refusing_the_sample_says_what_it_was_given():
    from typing import Literal

    from pipeline.errors import DataError
    from pipeline.spec import StageSpec

    class NeedsFlat(StageSpec):
        kind: Literal["needs_flat"] = "needs_flat"
        inputs = ("data",)
        outputs = ("data",)

        def run(self, inputs, context):
            raise DataError("needs flat samples")

    with pytest.raises(PluginCheckError, match=r"NeedsFlat.run failed on .*train: x \(24, 6, 6\) "
                                               r"uint8.*: needs flat samples"):
        check_stage(NeedsFlat)


def test_the_builtin_datasets_pass_and_wrong_sources_fail_saying_what():
    from dataclasses import replace

    from pipeline.testing import check_dataset
    from plugins.datasets import MNIST, MNIST_10K

    check_dataset(MNIST_10K)
    check_dataset(MNIST)
    with pytest.raises(PluginCheckError, match=r"files\['train'\]: expected \(images file name"):
        check_dataset(replace(MNIST_10K, files={"train": ("../escape.gz", "labels.gz")}))
    with pytest.raises(PluginCheckError, match="files: no split"):
        check_dataset(replace(MNIST_10K, files={}))
    with pytest.raises(PluginCheckError, match=r"sha256\['other.gz'\]"):
        check_dataset(replace(MNIST_10K, sha256={"other.gz": "0" * 64}))
    with pytest.raises(PluginCheckError, match="expected a dataset source"):
        check_dataset(object())


def test_a_group_without_a_full_check_is_loaded_not_passed():
    from pipeline.testing import plugin_status
    from support import entry_points

    registry = Registry(entry_points("nnpipe.predictors", {"p": "toy_stages:Produce"})
                        + entry_points("nnpipe.stages", {"produce": "toy_stages:Produce"}))
    assert plugin_status(registry, "predictors", "p", check=True) == ("LOADED", "")
    assert plugin_status(registry, "predictors", "p", check=False) == ("OK", "")
    assert plugin_status(registry, "stages", "produce", check=True) == ("PASS", "")
    assert check_plugin("predictors", registry.load("predictors", "p"), registry) is False


def test_the_moved_checks_stay_importable_here_for_one_release():
    import plugins.mlp.checks

    with pytest.warns(DeprecationWarning, match="moved: import it from plugins.mlp.checks"):
        from pipeline.testing import check_loss
    assert check_loss is plugins.mlp.checks.check_loss
    with pytest.raises(ImportError):
        from pipeline.testing import check_nothing_of_the_kind  # noqa: F401
