"""Statistics over seeds: mean, standard deviation and Welch's t-test between two configurations.

A configuration repeated over seeds 0..N-1 gives N values of its metric. Two configurations'
means differ by chance as well as by merit; Welch's t-test (unequal variances, scipy's
``ttest_ind(equal_var=False)``) says how often a difference this large appears by chance alone.
Used by ``sweep --seeds``, ``tune --seeds`` and ``runs compare``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

#: The significance level of the plain sentence.
ALPHA = 0.05


def mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    """The mean and the sample standard deviation (n - 1); None where undefined."""
    if not values:
        return None, None
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


@dataclass(frozen=True)
class Comparison:
    """Welch's t-test of the best configuration against the runner-up."""

    best: str
    second: str
    best_mean: float
    second_mean: float
    p_value: float | None
    n_best: int
    n_second: int

    @property
    def significant(self) -> bool:
        return self.p_value is not None and self.p_value < ALPHA

    def sentence(self) -> str:
        """One plain sentence a reader acts on."""
        seeds = (f"{self.n_best} seeds" if self.n_best == self.n_second
                 else f"{self.n_best} and {self.n_second} seeds")
        gap = f"{self.best} ({self.best_mean:.4f}) vs {self.second} ({self.second_mean:.4f})"
        if self.p_value is None:
            return f"{gap}: too few seeds for a t-test (at least 2 per configuration)"
        if self.significant:
            return (f"{gap}: Welch p = {self.p_value:.3g} < {ALPHA}, the difference is larger "
                    f"than the noise of {seeds}")
        return (f"{gap}: Welch p = {self.p_value:.3g}, the difference is within the noise of "
                f"{seeds}")


def welch_p(a: Sequence[float], b: Sequence[float]) -> float | None:
    """The two-sided p-value of Welch's t-test; None with fewer than 2 values on a side.

    Two samples without any spread are equal (p = 1) or different beyond doubt (p = 0)."""
    if len(a) < 2 or len(b) < 2:
        return None
    from scipy import stats

    if max(a) == min(a) and max(b) == min(b):  # scipy gives nan: no variance to compare with
        return 1.0 if a[0] == b[0] else 0.0
    return float(stats.ttest_ind(list(a), list(b), equal_var=False).pvalue)


def compare_best(groups: Sequence[tuple[str, Sequence[float]]]) -> Comparison | None:
    """Welch's test between the first two ``(label, values)`` groups (ranked best first);
    None when there are fewer than two groups with values."""
    ranked = [(label, list(values)) for label, values in groups if values]
    if len(ranked) < 2:
        return None
    (best, a), (second, b) = ranked[0], ranked[1]
    return Comparison(best, second, mean_std(a)[0], mean_std(b)[0], welch_p(a, b), len(a), len(b))
