"""``pipeline.tables``: the one renderer of plain-text and HTML tables, and the tables built on it
(runs, sweep, tune) keep their look. Expected strings are written out by hand."""

from __future__ import annotations

from pipeline.sweep.grid import Axis
from pipeline.sweep.results import table as sweep_table
from pipeline.tables import html_table, text_table
from pipeline.tune.results import table as tune_table
from pipeline.tune.space import parse_param


def test_columns_are_padded_to_their_widest_cell_without_trailing_blanks():
    assert text_table(["a", "bb"], [["xxx", "y"], ["z", ""]]).splitlines() == [
        "a    bb", "xxx  y", "z"]


def test_a_rule_goes_under_the_header():
    assert text_table(["a", "bb"], [["xxx", "y"]], rule=True).splitlines() == [
        "a    bb", "---  --", "xxx  y"]


def test_a_row_may_carry_one_more_cell_than_the_header_a_mark():
    assert text_table(["n", "v"], [["1", "0.5", "*"], ["10", "0.25"]]).splitlines() == [
        "n   v", "1   0.5   *", "10  0.25"]


def test_cells_go_through_the_callers_formatter():
    assert text_table(["x"], [[0.5]], cell=lambda v: f"{v:.2f}") == "x\n0.50"


def test_html_escapes_every_cell_and_header():
    html = html_table(["<h>"], [["a&b"], [None]], cell=lambda v: "-" if v is None else str(v))
    assert html == ("<table><thead><tr><th>&lt;h&gt;</th></tr></thead><tbody><tr><td>a&amp;b"
                    "</td></tr><tr><td>-</td></tr></tbody></table>")


def test_the_sweep_table_reads_as_before():
    rows = [{"overrides": ["t.rate=0.1"], "ok": 2, "runs": 2, "mean": 0.9, "std": 0.01,
             "status": "ok", "error": None},
            {"overrides": ["t.rate=10"], "ok": 0, "runs": 2, "mean": None, "std": None,
             "status": "failed", "error": "diverged"}]
    assert sweep_table(rows, "val_accuracy", [Axis("t.rate", ("0.1", "10"))]).splitlines() == [
        "#  t.rate  runs  val_accuracy  ±       status",
        "1  0.1     2/2   0.9000        0.0100  ok",
        "2  10      0/2                         failed: diverged"]


def test_the_tune_table_marks_the_best_trial():
    params = [parse_param("t.rate=float(0.01,1)")]
    best = {"number": 0, "optuna": 0, "state": "COMPLETE", "params": {"t.rate": 0.5},
            "value": 0.75, "std": None, "epochs": 3, "seconds": 1.5}
    other = {**best, "number": 1, "optuna": 1, "state": "PRUNED", "value": 0.5, "epochs": 1}
    assert tune_table([best, other], params, "val_accuracy", best).splitlines() == [
        "trial  optuna  state     t.rate  val_accuracy  ±  epochs  seconds",
        "0      0       complete  0.5     0.75             3       1.5      *",
        "1      1       pruned    0.5     0.5              1       1.5"]
