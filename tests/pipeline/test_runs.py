"""Reading run directories: flattening specs, differences, the tables, the HTML report, bad paths."""

from __future__ import annotations

import json

import yaml
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.runs.report import render
from pipeline.runs.rundirs import differences, find_runs, flatten, load_run, show, table

runner = CliRunner()


def fake_run(root, name, epochs=3, accuracy=0.9, extra_stage=None):
    """A run directory with the files a real run writes (no plots)."""
    run = root / name
    run.mkdir(parents=True)
    stages = [{"kind": "reader", "id": None, "path": "x"},
              {"kind": "train", "id": None, "epochs": epochs, "hidden": [8, 4]}]
    if extra_stage:
        stages.append(extra_stage)
    (run / "pipeline.yaml").write_text(yaml.safe_dump({"name": name, "seed": 0, "stages": stages}))
    (run / "manifest.json").write_text(json.dumps({
        "created": "2026-11-28T15:00:00", "overrides": [], "command": "nnpipe run p.yaml",
        "stages": [{"index": 0, "id": "reader", "kind": "reader", "status": "ran", "seconds": 1.5}]}))
    (run / "metrics.json").write_text(json.dumps({"split": "test", "accuracy": accuracy, "loss": 0.3}))
    return run


def test_flatten_names_stages_as_overrides_do():
    spec = {"name": "n", "stages": [{"kind": "a", "x": {"y": 1}}, {"kind": "b", "id": "mine", "z": [1, 2]},
                                    {"kind": "c"}, {"kind": "c", "w": 2}]}
    assert flatten(spec) == {"name": "n", "a.kind": "a", "a.x.y": 1, "mine.kind": "b", "mine.id": "mine",
                             "mine.z": [1, 2], "stages[2].kind": "c", "stages[3].kind": "c",
                             "stages[3].w": 2}


def test_differences_keep_only_what_differs_and_missing_fields(tmp_path):
    a = load_run(fake_run(tmp_path, "a", epochs=3))
    b = load_run(fake_run(tmp_path, "b", epochs=5, extra_stage={"kind": "plots"}))
    assert differences([a, b]) == {"train.epochs": [3, 5], "plots.kind": [None, "plots"]}
    assert differences([a, a]) == {}


def test_table_pads_columns():
    assert table(["a", "bb"], [["xxx", "y"]]).splitlines() == ["a    bb", "---  --", "xxx  y"]


def test_runs_list_shows_the_settings_that_tell_runs_apart(tmp_path):
    fake_run(tmp_path, "a", epochs=3, accuracy=0.91)
    fake_run(tmp_path, "b", epochs=5, accuracy=0.95)
    (tmp_path / "not-a-run").mkdir()
    assert [r.name for r in find_runs(tmp_path)] == ["a", "b"]
    result = runner.invoke(app, ["runs", "list", str(tmp_path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["run", "date", "settings", "test", "accuracy", "time"]
    assert lines[2].split() == ["a", "2026-11-28", "15:00", "epochs=3", "0.9100", "1.5s"]
    assert lines[3].split() == ["b", "2026-11-28", "15:00", "epochs=5", "0.9500", "1.5s"]


def test_bad_run_paths_are_one_line_errors_with_status_2(tmp_path):
    for args in (["report", str(tmp_path / "nope")], ["runs", "list", str(tmp_path / "nope")],
                 ["runs", "compare", str(tmp_path), str(tmp_path)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert len(result.output.strip().splitlines()) == 1 and "error:" in result.output


def test_report_escapes_text_and_loads_nothing_from_elsewhere(tmp_path):
    run = fake_run(tmp_path, "r")
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["command"] = "nnpipe run <script>alert(1)</script>.yaml"
    (run / "manifest.json").write_text(json.dumps(manifest))
    page = render(load_run(run))
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "src=\"http" not in page and "href=" not in page
    assert "0.9000" in page and "No plots in this run." in page


def test_a_layer_stack_shows_as_one_readable_cell():
    stack = [{"kind": "dense", "units": 256, "initializer": None}, {"kind": "batch_norm"},
             {"kind": "relu"}, {"kind": "dropout", "p": 0.25}]
    assert show(stack) == "dense(units=256) batch_norm relu dropout(p=0.2500)"
    assert show([256, 128]) == "[256,128]" and show({"a": 1}) == '{"a":1}'
