"""Statistics over seeds: Welch's t-test against scipy and against the formula worked by hand;
``runs compare`` grouping runs that differ only in seed."""

from __future__ import annotations

import json
import math

import pytest
import yaml
from scipy import stats

from pipeline.runs.rundirs import load_run, seed_groups
from pipeline.runs.seedstats import compare_best, mean_std, welch_p

A = [0.912, 0.931, 0.925, 0.948]
B = [0.897, 0.905, 0.921]


def t_pdf(x: float, df: float) -> float:
    """Student's t density, from its definition with the gamma function."""
    return (math.gamma((df + 1) / 2) / (math.sqrt(df * math.pi) * math.gamma(df / 2))
            * (1 + x * x / df) ** (-(df + 1) / 2))


def hand_welch(a, b) -> float:
    """Welch's two-sided p-value from the textbook formulas: t = (ma - mb) / sqrt(va/na + vb/nb),
    Welch-Satterthwaite degrees of freedom, and 1 - the integral of the t density over [-|t|,
    |t|] by Simpson's rule (no scipy)."""
    (ma, sa), (mb, sb) = mean_std(a), mean_std(b)
    qa, qb = sa ** 2 / len(a), sb ** 2 / len(b)
    t = (ma - mb) / math.sqrt(qa + qb)
    df = (qa + qb) ** 2 / (qa ** 2 / (len(a) - 1) + qb ** 2 / (len(b) - 1))
    n, h = 20000, abs(t) / 20000
    inner = sum((4 if i % 2 else 2) * t_pdf(i * h, df) for i in range(1, n))
    half = h / 3 * (t_pdf(0, df) + inner + t_pdf(abs(t), df))
    return 1 - 2 * half


def test_mean_and_sample_std():
    assert mean_std([1.0, 2.0, 3.0, 4.0]) == (2.5, pytest.approx(math.sqrt(5 / 3)))
    assert mean_std([0.5]) == (0.5, None)
    assert mean_std([]) == (None, None)


def test_welch_p_equals_scipy_and_the_formula_by_hand():
    p = welch_p(A, B)
    assert p == stats.ttest_ind(A, B, equal_var=False).pvalue
    assert p == pytest.approx(hand_welch(A, B), abs=1e-7)
    assert 0.01 < p < 0.2  # these two samples: a gap comparable to their spread


def test_degenerate_samples():
    assert welch_p([0.9], [0.8, 0.7]) is None  # one seed: no variance
    assert welch_p([0.5, 0.5], [0.5, 0.5]) == 1.0
    assert welch_p([0.5, 0.5], [0.4, 0.4]) == 0.0


def test_the_sentence_says_whether_the_gap_is_noise():
    close = compare_best([("lr=0.1", A), ("lr=0.01", B)])
    assert close.p_value == welch_p(A, B)
    assert "within the noise of 4 and 3 seeds" in close.sentence()
    far = compare_best([("a", [0.95, 0.951, 0.949]), ("b", [0.80, 0.81, 0.79])])
    assert far.significant and "larger than the noise of 3 seeds" in far.sentence()
    assert compare_best([("a", A)]) is None


def make_run(root, name, lr, seed, accuracy):
    path = root / name
    path.mkdir()
    (path / "manifest.json").write_text(json.dumps({"created": "2026-01-01T00:00:00"}))
    (path / "pipeline.yaml").write_text(yaml.safe_dump({"name": "m", "seed": seed, "stages": [
        {"kind": "mlp_train", "optimizer": {"kind": "sgd", "lr": lr}}]}))
    (path / "metrics.json").write_text(json.dumps({"accuracy": accuracy}))
    return load_run(path)


def test_runs_compare_groups_runs_that_differ_only_in_seed(tmp_path):
    runs = [make_run(tmp_path, f"r{lr}-{seed}", lr, seed, value)
            for lr, values in ((0.1, A), (0.01, B)) for seed, value in enumerate(values)]
    text = seed_groups(runs)
    lines = text.splitlines()
    assert lines[2].split()[:2] == ["mlp_train.optimizer.lr=0.1000", "4"]  # best group first
    assert f"{mean_std(A)[0]:.4f}" in lines[2] and f"{mean_std(B)[0]:.4f}" in lines[3]
    assert f"Welch p = {stats.ttest_ind(A, B, equal_var=False).pvalue:.3g}" in text
    # no two runs share their settings: nothing to group
    assert seed_groups(runs[:1] + runs[-1:]) is None
