"""The entry-point registry: discovery, loading, errors that list what exists."""

from __future__ import annotations


import pytest

from support import entry_points
from pipeline.engine.config import check_stage_class
from pipeline.errors import PluginError
from pipeline.registry import Registry, unknown_name_message


def test_names_are_discovered_without_loading():
    # The target module does not exist: discovery must not import it.
    registry = Registry(entry_points("nnpipe.stages", {"ghost": "no_such_module:Ghost"}))
    assert registry.names("stages") == ["ghost"]


def test_load_returns_the_registered_object(toy_registry):
    from toy_stages import Produce

    assert toy_registry.load("stages", "produce") is Produce


def test_unknown_name_lists_installed_and_closest(toy_registry):
    with pytest.raises(PluginError) as caught:
        toy_registry.entry("stages", "dubble")
    message = str(caught.value)
    assert "unknown stage 'dubble'" in message
    assert "double, liar, produce, reads_file, total" in message
    assert "did you mean 'double'" in message


def test_broken_import_names_the_plugin():
    registry = Registry(entry_points("nnpipe.stages", {"ghost": "no_such_module:Ghost"}))
    with pytest.raises(PluginError, match="stage 'ghost'.*failed to load.*no_such_module"):
        registry.load("stages", "ghost")


def test_wrong_object_type_is_refused():
    registry = Registry(entry_points("nnpipe.stages", {"num": "toy_stages:NOT_A_STAGE"}))
    with pytest.raises(PluginError, match="not usable: expected a StageSpec subclass"):
        registry.load("stages", "num", check=check_stage_class)


def test_other_groups_are_ignored():
    eps = entry_points("console_scripts", {"x": "a:b"}) + entry_points(
        "nnpipe.losses", {"l1": "m:l1"})
    registry = Registry(eps)
    assert registry.names("stages") == []
    assert registry.names("losses") == ["l1"]


def test_installed_builtins_are_found_through_entry_points():
    registry = Registry()  # the real installed metadata, as a user's machine has it
    assert {"idx_reader", "split", "normalize", "one_hot", "mlp_train", "evaluate"} <= set(
        registry.names("stages"))
    assert {"relu", "sigmoid", "tanh"} <= set(registry.names("activations"))
    entry = registry.entry("stages", "mlp_train")
    assert entry.distribution == "nnpipe"


def test_unknown_name_message_without_close_match():
    message = unknown_name_message("loss", "zzz", ["mse", "cross_entropy"])
    assert message == "unknown loss 'zzz'; installed: cross_entropy, mse"


def test_a_plugin_records_its_distribution(tmp_path):
    from support import installed_entry_points, make_distribution

    make_distribution(tmp_path, "nnpipe-toy", "1.2.3", {"nnpipe.losses": {"huber": "toy:huber"}})
    entry = Registry(installed_entry_points(tmp_path)).entry("losses", "huber")
    assert (entry.distribution, entry.version) == ("nnpipe-toy", "1.2.3")


def test_same_name_from_two_distributions_names_both(tmp_path):
    from support import installed_entry_points, make_distribution

    make_distribution(tmp_path, "alpha", "1.0", {"nnpipe.activations": {"swish": "alpha:swish"}})
    make_distribution(tmp_path, "beta", "2.0", {"nnpipe.activations": {"swish": "beta:swish"}})
    registry = Registry(installed_entry_points(tmp_path))
    with pytest.raises(PluginError) as caught:
        registry.load("activations", "swish")
    message = str(caught.value)
    assert "registered twice" in message and "alpha 1.0" in message and "beta 2.0" in message


def test_a_strict_check_after_a_lenient_one_is_still_run():
    """Registry.load caches the object, not the verdict of whichever check loaded it first."""
    registry = Registry(entry_points("nnpipe.stages", {"num": "toy_stages:NOT_A_STAGE"})
                        + entry_points("nnpipe.predictors", {"p": "toy_stages:Produce"}))
    assert registry.load("predictors", "p") is not None  # callable: the group's type check
    with pytest.raises(PluginError, match="predictor 'p' .* is not usable: strict says no"):
        registry.load("predictors", "p", check=lambda obj: "strict says no")
    assert registry.load("predictors", "p", check=lambda obj: None) is registry.load(
        "predictors", "p")


def test_the_group_type_check_runs_without_a_check_argument():
    registry = Registry(entry_points("nnpipe.stages", {"num": "toy_stages:NOT_A_STAGE"}))
    with pytest.raises(PluginError, match="stage 'num' .* expected a StageSpec subclass"):
        registry.load("stages", "num")


def test_a_member_of_an_undeclared_group_does_not_load():
    registry = Registry(entry_points("nnpipe.gadgets", {"g": "toy_stages:Produce"}))
    assert registry.names("gadgets") == ["g"] and "gadgets" in registry.groups()
    with pytest.raises(PluginError, match="no installed distribution declares the plugin group "
                                          "'gadgets'"):
        registry.load("gadgets", "g")


def test_the_network_declares_its_own_groups():
    from plugins.mlp import activations, groups, losses, optim

    registry = Registry()
    assert registry.group("activations") is groups.ACTIVATIONS
    assert registry.group("losses").type_check is losses.check
    assert registry.group("optimizers").type_check is optim.check
    assert registry.group("activations").type_check is activations.check
    from pipeline.groups import FRAMEWORK_GROUPS

    assert set(FRAMEWORK_GROUPS) == {"stages", "datasets", "predictors", "exporters", "groups"}


def test_only_names_the_one_installed_plugin_and_refuses_a_choice_it_cannot_make():
    from pipeline.errors import UserError

    one = Registry(entry_points("nnpipe.predictors", {"net": "toy_stages:Produce"}))
    assert one.only("predictors", "--predictor") == "net"
    two = Registry(entry_points("nnpipe.predictors", {"net": "a:b", "tree": "c:d"}))
    with pytest.raises(UserError, match=r"--predictor: choose one of the installed predictors "
                                        r"\(net, tree\)"):
        two.only("predictors", "--predictor")
    with pytest.raises(UserError, match="none is installed"):
        Registry(entry_points("nnpipe.stages", {})).only("predictors", "--predictor")


def _as_entry_points_gives_them() -> list[tuple[str, str, str]]:
    """The nnpipe.* entry points as ``metadata.entry_points()`` lists them (an oracle)."""
    from importlib import metadata

    from pipeline.registry import PREFIX

    found = metadata.entry_points()
    return [(ep.group, ep.name, ep.value) for group in sorted(found.groups)
            if group.startswith(PREFIX) for ep in found.select(group=group)]


def test_the_scan_finds_what_entry_points_finds_first_distribution_winning(tmp_path, monkeypatch):
    """The registry reads only the entry-point files naming an nnpipe group and no METADATA;
    it must find the same entry points, in the same order, as importlib.metadata's own scan:
    a distribution on two sys.path entries counts once (the first), other groups are left out,
    a section line spelt [[nnpipe.x]] still counts."""
    import sys

    from support import make_distribution

    from pipeline.registry import plugin_entry_points

    first, second = tmp_path / "first", tmp_path / "second"
    make_distribution(first, "nnpipe-toy", "1.0", {"nnpipe.losses": {"huber": "toy1:huber"},
                                                   "console_scripts": {"toy": "toy1:main"}})
    make_distribution(second, "nnpipe-toy", "2.0", {"nnpipe.losses": {"huber": "toy2:huber"}})
    make_distribution(second, "other", "1.0", {"console_scripts": {"other": "other:main"},
                                               "nnpipe_like": {"x": "other:x"}})
    odd = make_distribution(second, "odd", "1.0", {})
    (odd / "entry_points.txt").write_text("[[nnpipe.activations]]\nswish = odd:swish\n")
    monkeypatch.setattr(sys, "path", [str(first), str(second), *sys.path])
    found = [(ep.group, ep.name, ep.value) for ep in plugin_entry_points()]
    assert found == _as_entry_points_gives_them()
    assert ("nnpipe.losses", "huber", "toy1:huber") in found
    assert ("nnpipe.losses", "huber", "toy2:huber") not in found
    assert ("nnpipe.activations", "swish", "odd:swish") in found


def test_a_distribution_is_read_only_when_a_message_or_key_needs_it(tmp_path):
    from support import installed_entry_points, make_distribution

    info = make_distribution(tmp_path, "nnpipe-toy", "1.2.3",
                             {"nnpipe.losses": {"huber": "toy:huber"}})
    registry = Registry(installed_entry_points(tmp_path))
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: nnpipe-toy\nVersion: 9.9\n")
    assert registry.entry("losses", "huber").version == "9.9"  # read now, not at discovery
