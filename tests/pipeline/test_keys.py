"""Stage keys: equal specs share a key, any change that matters makes a new one."""

from __future__ import annotations

import importlib
import json
import sys

from pipeline.engine.keys import FileHasher, code_fingerprint, stage_key
from pipeline.spec import StageContext
from toy_stages import Double, Produce, ReadsFile


def key(stage, previous=None, seed=0):
    return stage_key(stage, previous, StageContext(seed=seed))


def test_equal_specs_written_differently_share_a_key():
    spelled_out = Double.model_validate({"factor": 2, "kind": "double"})
    defaulted = Double.model_validate({"kind": "double"})
    with_id = Double(id="twice")  # an id is a label, not a setting
    assert key(spelled_out) == key(defaulted) == key(with_id)


def test_a_changed_field_seed_or_previous_key_changes_the_key():
    base = key(Double())
    assert key(Double(factor=3)) != base
    assert key(Double(), seed=1) != base
    assert key(Double(), previous="abc") != base


def test_a_stage_that_ignores_the_seed_keeps_its_key(monkeypatch):
    monkeypatch.setattr(Produce, "uses_seed", False)
    assert key(Produce(), seed=1) == key(Produce(), seed=2)


def test_file_content_is_part_of_the_key_not_its_time(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("one")
    stage = ReadsFile(path=path)
    stage.__class__.input_files = lambda self, context: [self.path]
    try:
        first = key(stage)
        path.touch()
        assert key(stage) == first
        path.write_text("two")
        assert key(stage) != first
    finally:
        del stage.__class__.input_files


def test_file_hashes_are_reused_while_size_and_mtime_hold(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"x" * 100)
    memo = tmp_path / "memo.json"
    hasher = FileHasher(memo)
    digest = hasher.hash(path)
    hasher.flush()
    again = FileHasher(memo)
    assert again.memo[str(path.resolve())][2] == digest
    assert again.hash(path) == digest


def test_editing_a_helper_module_changes_the_fingerprint(tmp_path, monkeypatch):
    package = tmp_path / "toyplug"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "helper.py").write_text("def f(x):\n    return x + 1\n")
    (package / "stage.py").write_text("from .helper import f\n")
    (package / "other.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    before = code_fingerprint(["toyplug.stage"])
    assert set(before) == {"toyplug.stage", "toyplug.helper"}
    (package / "other.py").write_text("X = 2\n")  # not imported by the stage
    assert code_fingerprint(["toyplug.stage"]) == before
    (package / "helper.py").write_text("def f(x):\n    return x + 20\n")
    assert code_fingerprint(["toyplug.stage"]) != before
    for name in [m for m in sys.modules if m.startswith("toyplug")]:
        del sys.modules[name]


def test_imports_are_found_in_every_nested_statement_as_ast_walk_finds_them():
    import ast
    from pathlib import Path

    from pipeline.engine.keys import _statements

    root = Path(__file__).resolve().parents[2]
    sources = [*root.glob("pipeline/**/*.py"), *root.glob("plugins/**/*.py")]
    sources.append(Path(__file__))
    nested = ("def f():\n    if x:\n        import a\n    else:\n        from b import c\n"
              "class K:\n    try:\n        import d\n    except E:\n        import e\n"
              "    finally:\n        import f\n"
              "with w:\n    for i in y:\n        while z:\n            import g\n"
              "match m:\n    case 1:\n        import h\n")
    for text in [nested, *(path.read_text() for path in sources)]:
        tree = ast.parse(text)
        by_walk = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
        by_statements = [n for n in _statements(tree)
                         if isinstance(n, (ast.Import, ast.ImportFrom))]
        assert sorted(map(ast.dump, by_walk)) == sorted(map(ast.dump, by_statements))
    assert len([n for n in _statements(ast.parse(nested))
                if isinstance(n, (ast.Import, ast.ImportFrom))]) == 7


def test_a_plugins_distribution_comes_from_the_registry_as_metadata_gives_it():
    from importlib import metadata

    from pipeline.engine.keys import distribution_of

    for module in ("plugins.idx", "plugins.mlp.trainer", "pipeline.engine.runner"):
        (name,) = set(metadata.packages_distributions()[module.partition(".")[0]])
        assert distribution_of(module) == f"{name} {metadata.version(name)}"
    assert distribution_of("no_such_package_anywhere.x") == "unknown"


def test_the_module_index_is_kept_between_runs_and_a_stale_or_damaged_one_is_reparsed(tmp_path):
    from pipeline.engine.keys import FileHasher

    memo = tmp_path / "file-hashes.json"
    hasher = FileHasher(memo)
    truth = code_fingerprint(["plugins.split"], hasher.modules)
    hasher.flush()
    index = tmp_path / "module-index.json"
    slots = json.loads(index.read_text())
    (slot,) = [s for s in slots if s.startswith("plugins.split|")]
    # the next process reads the index instead of the file (shown by planting another hash)
    slots[slot][2] = "f" * 64
    index.write_text(json.dumps(slots))
    planted = code_fingerprint(["plugins.split"], FileHasher(memo).modules)
    assert planted["plugins.split"] == "f" * 64
    slots[slot][0] += 1  # a different size: the file changed, so it is read again
    index.write_text(json.dumps(slots))
    assert code_fingerprint(["plugins.split"], FileHasher(memo).modules) == truth
    for damage in ("{not json", "[1]", json.dumps({slot: [1, 2]}), json.dumps({slot: "x"})):
        index.write_text(damage)
        assert code_fingerprint(["plugins.split"], FileHasher(memo).modules) == truth


def test_the_modules_a_plugin_imports_on_first_use_are_part_of_its_code():
    """The built-ins import what only running needs inside functions, or name it to
    ``pipeline.lazy`` (imported on first use, to keep validation fast): their code still
    shapes the stage's result, so it is still in the stage's fingerprint."""
    assert {"plugins.augment.distort", "plugins.augment.epochs"} <= set(
        code_fingerprint(["plugins.augment"]))
    assert {"plugins.mlp.layers.dense", "plugins.mlp.layers.dropout",
            "plugins.mlp.layers.activation"} <= set(code_fingerprint(["plugins.mlp.layers"]))
