"""Is one config really better than another? Seed groups with intervals, and Welch's t-test between two.

``compare.py PATHS --group-seeds`` groups runs that differ only in their seed. Below the
table it gives each group's mean, standard deviation, n and 95% Student-t interval of the
metric, and compares the best two groups: the difference of their means, its 95% interval
(Welch-Satterthwaite degrees of freedom) and Welch's t-test p-value, saying plainly whether
the seeds tell them apart at the 5% level. Runs that did not complete are left out.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats as scipy_stats

from sweeplab.metrics import metric as metric_named

CONFIDENCE = 0.95
ALPHA = 1 - CONFIDENCE


@dataclass(frozen=True)
class Group:
    name: str
    values: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.values) if self.n > 1 else None

    def interval(self) -> tuple[float, float] | None:
        if self.n < 2:
            return None
        half = float(scipy_stats.t.ppf(0.5 + CONFIDENCE / 2, self.n - 1)) * self.std / math.sqrt(self.n)
        return self.mean - half, self.mean + half


@dataclass(frozen=True)
class Welch:
    difference: float
    low: float
    high: float
    dof: float
    p_value: float

    @property
    def significant(self) -> bool:
        return self.p_value < ALPHA


def welch(a: Group, b: Group) -> Welch | None:
    """``a.mean - b.mean``, its interval and Welch's p-value; None when a group has fewer than two values
    or neither varies."""
    if a.n < 2 or b.n < 2:
        return None
    va, vb = a.std**2 / a.n, b.std**2 / b.n
    if va + vb == 0:
        return None
    dof = (va + vb) ** 2 / (va**2 / (a.n - 1) + vb**2 / (b.n - 1))
    half = float(scipy_stats.t.ppf(0.5 + CONFIDENCE / 2, dof)) * math.sqrt(va + vb)
    p_value = float(scipy_stats.ttest_ind(a.values, b.values, equal_var=False).pvalue)
    difference = a.mean - b.mean
    return Welch(difference, difference - half, difference + half, dof, p_value)


def describe_group(group: Group, metric: str) -> str:
    interval = group.interval()
    spread = f" ± {group.std:.4f}" if group.std is not None else ""
    shown = f", 95% interval [{interval[0]:.4f}, {interval[1]:.4f}]" if interval else " (one seed: no interval)"
    return f"{group.name}: {metric} {group.mean:.4f}{spread} over n={group.n}{shown}"


def compare_best_two(groups: Sequence[Group], metric: str) -> list[str]:
    """Lines for people: each group, then the best two compared (``groups`` best first)."""
    groups = [group for group in groups if group.n]
    lines = [describe_group(group, metric) for group in groups]
    if len(groups) < 2:
        return lines
    best, second = groups[0], groups[1]
    test = welch(best, second)
    if test is None:
        lines.append(f"{best.name} vs {second.name}: a test needs at least 2 completed seeds in each group, and some "
                     "spread; train more seeds (train.py -m seed=1,2,3 ...)")
        return lines
    word = "higher" if test.difference >= 0 else "lower"
    verdict = (f"significant at the 5% level: {best.name} is {'better' if _better(test, metric) else 'worse'}"
               if test.significant else "not significant at the 5% level: these seeds do not tell the two apart")
    lines.append(f"{best.name} vs {second.name}: {metric} {abs(test.difference):.4f} {word} (95% interval of the "
                 f"difference [{test.low:+.4f}, {test.high:+.4f}]), Welch's t-test p={test.p_value:.3g} "
                 f"(df {test.dof:.1f}): {verdict}")
    return lines


def _better(test: Welch, metric: str) -> bool:
    return (test.difference > 0) == metric_named(metric).higher_is_better
