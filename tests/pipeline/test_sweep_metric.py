"""What a search ranks by: the metrics stages declare (``StageSpec.metric_directions``), their
direction, ``--metric``/``--mode`` over them, and messages naming the option a value came from."""

from __future__ import annotations

import json
import re
from typing import Literal

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.engine.config import load_pipeline
from pipeline.errors import UserError
from pipeline.spec import StageSpec
from pipeline.sweep.grid import parse_grid
from pipeline.sweep.metric import FALLBACK_METRIC, choose, declared
from pipeline.sweep.run import run_sweep

cli = CliRunner()


class Scorer(StageSpec):
    kind: Literal["scorer"] = "scorer"
    metric_directions = {"error_rate": "min", "hits": "max"}


class Other(StageSpec):
    kind: Literal["other"] = "other"
    metric_directions = {"hits": "min", "score": "max"}


def test_the_first_declared_metric_is_the_default_and_the_first_declaration_wins():
    stages = [StageSpec(kind="plain"), Scorer(), Other()]
    assert declared(stages) == {"error_rate": "min", "hits": "max", "score": "max"}
    assert choose(stages, None, None) == ("error_rate", "min")
    assert choose(stages, "score", None) == ("score", "max")
    assert choose(stages, "hits", "min") == ("hits", "min")  # --mode over the declaration


def test_an_undeclared_metric_ranks_highest_first_unless_mode_says_otherwise():
    assert choose([Scorer()], "mse", None) == ("mse", "max")
    assert choose([Scorer()], "mse", "min") == ("mse", "min")
    assert choose([StageSpec(kind="plain")], None, None) == (FALLBACK_METRIC, "max")
    with pytest.raises(UserError, match="--mode best: choose min or max"):
        choose([Scorer()], None, "best")


def test_the_built_in_pipeline_ranks_by_what_its_stages_declare(tiny):
    stages = load_pipeline(tiny).stages
    assert choose(stages, None, None) == ("val_accuracy", "max")
    assert choose(stages, "val_loss", None) == ("val_loss", "min")
    assert choose(stages, "loss", None) == ("loss", "min")  # evaluate's metrics.json


def test_a_sweep_by_a_declared_lower_is_better_metric_ranks_the_lowest_first(tiny, tmp_path):
    result = run_sweep(tiny, [parse_grid("mlp_train.epochs=1,3")], jobs=1, metric="val_loss",
                       out=tmp_path / "s", cache_dir=tmp_path / "c")
    assert (result.info["metric"], result.info["mode"]) == ("val_loss", "min")
    saved = json.loads((result.out / "sweep.json").read_text())
    means = [row["mean"] for row in saved["configurations"]]
    assert means == sorted(means) and means[0] < means[1]  # the lowest validation loss first


def test_messages_name_the_option_the_value_came_from(tiny, tmp_path):
    """--set, --grid and --param values reach the same override code; each message names the
    option the user typed."""
    common = ["--out", str(tmp_path / "o"), "--cache-dir", str(tmp_path / "c")]
    result = cli.invoke(app, ["sweep", str(tiny), "--grid", "mlp_train.epochs=1",
                              "--set", "mlp_train.epoch=2", *common])
    assert result.exit_code == 2 and "(from --set mlp_train.epoch=2)" in result.output
    result = cli.invoke(app, ["sweep", str(tiny), "--grid", "mlp_train.epoch=1,2", *common])
    assert result.exit_code == 2 and "(from --grid mlp_train.epoch=1)" in result.output
    result = cli.invoke(app, ["tune", str(tiny), "--param", "nostage.x=int(1,3)", *common])
    assert result.exit_code == 2
    assert re.search(r"--param nostage\.x=int\(1,3\): value nostage\.x=1: unknown stage",
                     result.output), result.output
    assert "--set" not in result.output


def test_a_metric_no_stage_declares_is_warned_of_with_the_closest_declared_one():
    said: list[str] = []
    assert choose([Scorer(), Other()], "scor", None, said.append) == ("scor", "max")
    assert said == ["--metric scor: no stage of the pipeline declares it (did you mean score? "
                    "declared: error_rate, hits, score); a run that leaves no scor cannot be ranked"]
    said.clear()
    choose([Scorer()], "hits", None, said.append)  # declared: nothing to say
    choose([StageSpec(kind="plain")], "anything", None, said.append)  # nothing declared at all
    choose([Scorer()], None, None, said.append)  # the default is a declared one
    assert said == []


def test_sweep_and_tune_warn_of_an_undeclared_metric_before_running(tiny, tmp_path):
    common = ["--cache-dir", str(tmp_path / "c")]
    result = cli.invoke(app, ["sweep", str(tiny), "--grid", "mlp_train.epochs=1", "--metric",
                              "val_acc", "--out", str(tmp_path / "s"), *common])
    assert "warning: --metric val_acc: no stage of the pipeline declares it (did you mean " \
           "val_accuracy?" in result.output, result.output
    assert result.exit_code == 0  # the run completed; it left no val_acc to rank by
    result = cli.invoke(app, ["tune", str(tiny), "--param", "mlp_train.epochs=int(1,2)",
                              "--trials", "1", "--metric", "val_acc", "--out",
                              str(tmp_path / "t"), *common])
    assert "warning: --metric val_acc: no stage of the pipeline declares it" in result.output
    assert result.exit_code == 1 and "no trial completed" in result.output  # all 3 attempts failed
