"""Sweeps: grid parsing, shared stages run once, failed runs reported, loky and Dask agree.

The runs are real (the built-in plugins on the 4x4 fixtures of tests/data/good), in real worker
processes: a sweep's workers find stages through the installed entry points, not a test registry.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.errors import UserError
from pipeline.sweep.grid import Axis, configurations, parse_grid, split_values
from pipeline.sweep.metric import read_metric
from pipeline.sweep.run import run_sweep
from pipeline.sweep.shared import shared_prefixes

cli = CliRunner()


@pytest.fixture(autouse=True)
def no_lingering_loky_workers():
    """Shut loky's reusable workers down after each test: no processes left behind."""
    yield
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True)


# --- grid syntax ---------------------------------------------------------------------------

def test_values_split_on_commas_outside_brackets():
    assert split_values("0.1,0.01") == ["0.1", "0.01"]
    assert split_values("[64],[128, 64]") == ["[64]", "[128, 64]"]
    assert parse_grid("mlp_train.hidden=[8],[8,4]") == Axis("mlp_train.hidden", ("[8]", "[8,4]"))


@pytest.mark.parametrize("text", ["lr", "=1,2", "mlp_train.epochs=1,,2", "a b=1", "x=[1,2"])
def test_bad_grid_is_a_user_error(text):
    with pytest.raises(UserError, match="--grid"):
        parse_grid(text)


def test_configurations_are_the_cartesian_product():
    axes = [parse_grid("a.x=1,2"), parse_grid("b.y=3,4,5")]
    assert len(configurations(axes)) == 6
    assert configurations(axes)[0] == ("a.x=1", "b.y=3")
    with pytest.raises(UserError, match="more than once"):
        configurations([parse_grid("a.x=1"), parse_grid("a.x=2")])


def test_shared_prefixes_stop_where_runs_differ():
    keys = {0: ["r", "s0", "t0"], 1: ["r", "s0", "t1"], 2: ["r", "s1", "t2"]}
    # runs 0 and 1 share two stages, run 2 only the first: two prefixes to warm
    assert shared_prefixes(keys) == {"s0": (0, 2), "r": (2, 1)}
    assert shared_prefixes({0: ["a"]}) == {}


def test_read_metric_prefers_the_last_epoch_then_metrics(tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps({"accuracy": 0.5}))
    (tmp_path / "history.json").write_text(json.dumps(
        [{"val_accuracy": 0.1}, {"val_accuracy": 0.3}, {"val_accuracy": None}]))
    assert read_metric(tmp_path, "val_accuracy") == 0.3
    assert read_metric(tmp_path, "accuracy") == 0.5
    assert read_metric(tmp_path, "f1") is None


# --- real sweeps ---------------------------------------------------------------------------

def sweep(tiny, tmp_path, backend="loky", **options):
    return run_sweep(tiny, [parse_grid("mlp_train.optimizer.lr=0.1,0.01")], seeds=2, jobs=2,
                     backend=backend, out=tmp_path / f"sweep-{backend}",
                     cache_dir=tmp_path / "cache", **options)


@pytest.fixture(scope="module")
def loky_result(tiny, tmp_path_factory):
    """2 learning rates x 2 seeds on loky with 2 workers, in a fresh cache."""
    result = sweep(tiny, tmp_path_factory.mktemp("loky"))
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True)
    return result


def test_loky_sweep_runs_shared_stages_once_and_writes_the_results(loky_result):
    result = loky_result
    assert [r["status"] for r in result.runs] == ["ok"] * 4
    # Per seed, reader/split/normalize/one_hot are shared by both learning rates; the reader
    # by all four runs: 1 + 3 * 2 = 7 stage results, each computed once in the parent.
    assert result.shared["ids"] == ["idx_reader", "split", "normalize", "one_hot"]
    assert result.shared["stages"] == 7 and result.shared["ran"] == 7
    assert result.shared["ran_per_stage_max"] == 1
    assert result.shared["runs_loading_all_shared_from_cache"] == 4
    for run in result.runs:
        statuses = [s["status"] for s in run["stages"]]
        assert statuses == ["cached"] * 4 + ["ran", "ran"]
    rows = result.rows
    assert len(rows) == 2 and all(r["runs"] == 2 and r["ok"] == 2 for r in rows)
    assert rows[0]["mean"] >= rows[1]["mean"]
    for row in rows:  # mean and sample standard deviation over the two seeds
        a, b = row["values"]
        assert row["mean"] == pytest.approx((a + b) / 2)
        assert row["std"] == pytest.approx(abs(a - b) / 2 ** 0.5)
    out = result.out
    table = list(csv.DictReader((out / "sweep.csv").open()))
    assert [t["mlp_train.optimizer.lr"] for t in table] == [
        r["overrides"][0].partition("=")[2] for r in rows]
    saved = json.loads((out / "sweep.json").read_text())
    assert saved["configurations"][0]["mean"] == rows[0]["mean"]
    best = yaml.safe_load((out / "best.yaml").read_text())
    assert best["stages"][4]["optimizer"]["lr"] == float(rows[0]["overrides"][0].split("=")[1])
    assert all(Path(r["run_dir"], "metrics.json").is_file() for r in result.runs)


def test_dask_local_cluster_gives_the_loky_results(tiny, tmp_path, loky_result):
    """A real LocalCluster (2 worker processes on 127.0.0.1) gives the loky figures bit for bit.

    The cluster is started here and its address passed as ``--scheduler`` would; the sweep's own
    local cluster (``--backend dask`` with no address) is the same code path plus its start."""
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        dask = sweep(tiny, tmp_path, backend="dask", scheduler=cluster.scheduler_address)
        assert len(cluster.workers) == 2
    assert [r["status"] for r in dask.runs] == ["ok"] * 4
    assert [(r["overrides"], r["seed"], r["metric"]) for r in dask.runs] == \
           [(r["overrides"], r["seed"], r["metric"]) for r in loky_result.runs]
    for ours, theirs in zip(dask.runs, loky_result.runs):
        ours_m = json.loads(Path(ours["run_dir"], "metrics.json").read_text())
        theirs_m = json.loads(Path(theirs["run_dir"], "metrics.json").read_text())
        assert ours_m["accuracy"] == theirs_m["accuracy"] and ours_m["loss"] == theirs_m["loss"]


def test_dask_backend_starts_and_closes_its_own_local_cluster(tiny, tmp_path, loky_result):
    """``--backend dask`` without ``--scheduler``: a local cluster on 127.0.0.1, gone afterwards."""
    pytest.importorskip("dask.distributed")
    import psutil

    before = {p.pid for p in psutil.Process().children(recursive=True)}
    dask = run_sweep(tiny, [parse_grid("mlp_train.optimizer.lr=0.1,0.01")], seeds=1, jobs=2,
                     backend="dask", out=tmp_path / "s", cache_dir=tmp_path / "cache")
    after = {p.pid for p in psutil.Process().children(recursive=True) if p.is_running()
             and p.status() != psutil.STATUS_ZOMBIE}
    assert after <= before  # the cluster's worker processes were shut down
    seed0 = [(r["overrides"], r["metric"]) for r in loky_result.runs if r["seed"] == 0]
    assert [(r["overrides"], r["metric"]) for r in dask.runs] == seed0


def test_a_diverging_value_fails_its_row_and_the_others_complete(tiny, tmp_path):
    result = run_sweep(tiny, [parse_grid("mlp_train.optimizer.lr=0.1,1e30,-1")], jobs=2,
                       out=tmp_path / "s", cache_dir=tmp_path / "cache")
    by_lr = {r["overrides"][0]: r for r in result.rows}
    assert by_lr["mlp_train.optimizer.lr=0.1"]["status"] == "ok"
    assert by_lr["mlp_train.optimizer.lr=1e30"]["status"] == "failed"
    assert "diverged" in by_lr["mlp_train.optimizer.lr=1e30"]["error"]
    assert by_lr["mlp_train.optimizer.lr=-1"]["status"] == "failed"
    assert "greater than 0" in by_lr["mlp_train.optimizer.lr=-1"]["error"]
    assert result.rows[0]["overrides"] == ["mlp_train.optimizer.lr=0.1"]
    assert (result.out / "best.yaml").is_file()


# --- the command line ----------------------------------------------------------------------

def test_cli_sweep_prints_the_table(tiny, tmp_path):
    result = cli.invoke(app, ["sweep", str(tiny), "--grid", "mlp_train.epochs=1,2", "--jobs", "1",
                              "--set", "mlp_train.hidden=[4]", "--out", str(tmp_path / "s"),
                              "--cache-dir", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    best = yaml.safe_load((tmp_path / "s" / "best.yaml").read_text())
    assert best["stages"][4]["hidden"] == [4]  # --set applies to every run and to best.yaml
    assert "mlp_train.epochs" in result.output and "val_accuracy" in result.output
    assert "shared stages (idx_reader, split, normalize, one_hot): ran once each" in result.output
    assert "best configuration:" in result.output


@pytest.mark.parametrize("arguments, message", [
    (["--grid", "mlp_train.epochs"], "expected PATH=V1,V2"),
    (["--grid", "mlp_tran.epochs=1,2"], "--grid mlp_tran.epochs=1: unknown stage 'mlp_tran'"),
    (["--grid", "mlp_train.epoch=1,2"], "unknown field (did you mean 'epochs'?) (from --grid"),
    (["--grid", "mlp_train.epochs=-1,0"], "every configuration is invalid"),
    (["--grid", "seed=1,2", "--seeds", "2"], "one way only"),
    (["--grid", "mlp_train.epochs=1", "--backend", "spark"], "unknown backend"),
    (["--grid", "mlp_train.epochs=1", "--jobs", "0"], "at least 1"),
    (["--grid", "mlp_train.epochs=1", "--threads", "0"], "--threads 0: must be at least 1"),
    # a run per seed is planned up front: 10**11 of them ran out of memory (a traceback)
    (["--grid", "mlp_train.epochs=1", "--seeds", "100000000000"], "at most 1000"),
    # the product is counted before a configuration is made (10**12 of them filled 19 GB)
    (["--grid", "mlp_train.epochs=" + ",".join(map(str, range(1, 101))),
      "--grid", "mlp_train.batch_size=" + ",".join(map(str, range(1, 101))),
      "--grid", "mlp_train.seed=" + ",".join(map(str, range(100)))],
     "--grid: 100 x 100 x 100 configurations = 1000000 runs; a sweep runs at most 10000"),
    (["--grid", "mlp_train.epochs=1,2", "--seeds", "1000", "--grid",
      "mlp_train.batch_size=" + ",".join(map(str, range(1, 11)))],
     "2 x 10 configurations x 1000 seeds = 20000 runs"),
    (["--grid", "mlp_train.epochs=1", "--scheduler", "tcp://127.0.0.1:1"], "needs --backend dask"),
])
def test_cli_user_mistakes_are_one_line_exit_2(tiny, tmp_path, arguments, message):
    result = cli.invoke(app, ["sweep", str(tiny), *arguments, "--out", str(tmp_path / "s"),
                              "--cache-dir", str(tmp_path / "c")])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert not (tmp_path / "s").exists()  # nothing written for a sweep that cannot start


def test_dask_backend_without_dask_is_a_user_error(tiny, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # as if not installed
    result = cli.invoke(app, ["sweep", str(tiny), "--grid", "mlp_train.epochs=1",
                              "--backend", "dask", "--cache-dir", str(tmp_path / "c")])
    assert result.exit_code == 2
    assert result.output.strip() == ("error: --backend dask: dask is not installed "
                                     "(pip install 'nnpipe[dask]')")


def test_sweep_seeds_compare_the_two_best_configurations_with_welch(loky_result):
    from scipy import stats

    best, second = loky_result.rows[:2]
    sentence = loky_result.info["seed_comparison"]
    assert sentence.startswith(f"{' '.join(best['overrides'])} ({best['mean']:.4f}) vs "
                               f"{' '.join(second['overrides'])}")
    p = stats.ttest_ind(best["values"], second["values"], equal_var=False).pvalue
    if p == p:  # scipy gives nan for two constant samples; nnpipe then says 1 or 0
        assert f"p = {p:.3g}" in sentence
    assert "noise of 2 seeds" in sentence


def test_a_sweep_whose_every_run_failed_exits_1_after_writing_its_table(tiny, tmp_path):
    # every run diverges: the sweep failed (runs that end without the metric do not count:
    # tests/pipeline/test_kill.py's metric-less sweep exits 0)
    result = cli.invoke(app, ["sweep", str(tiny), "--grid", "mlp_train.epochs=1,2", "--set",
                              "mlp_train.optimizer={kind: sgd, lr: 1e30}",
                              "--out", str(tmp_path / "s"), "--cache-dir", str(tmp_path / "c")])
    assert result.exit_code == 1, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("error: no run completed; the first error: training diverged"), last
    assert "2 runs, 2 failed" in result.output
    runs = json.loads((tmp_path / "s" / "sweep.json").read_text())["runs"]
    assert [r["completed"] for r in runs] == [False, False]


def test_a_sweep_of_runs_that_left_no_metric_still_exits_0(tiny, tmp_path):
    result = cli.invoke(app, ["sweep", str(tiny), "--grid", "mlp_train.epochs=1,2", "--metric",
                              "no_such_metric", "--out", str(tmp_path / "s"),
                              "--cache-dir", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    assert "2 runs, 2 failed" in result.output
