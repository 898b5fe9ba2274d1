"""Is one config really better than another? Seed groups with intervals, and Welch's t-test between two.

``compare.py PATHS --group-seeds`` groups runs that differ only in their seed. Below the
table it gives each group's mean, standard deviation, n and 95% Student-t interval of the
metric, and compares the best two groups: the difference of their means, its 95% interval
(Welch-Satterthwaite degrees of freedom) and Welch's t-test p-value, saying plainly whether
the seeds tell them apart at the 5% level. Runs that did not complete are left out. The
arithmetic is :mod:`sweeplab.stats`'s; an accuracy's interval is clipped to [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sweeplab import stats
from sweeplab.metrics import metric as metric_named
from sweeplab.stats import WelchTest

LEVEL, SIGNIFICANCE = stats.percent(stats.CONFIDENCE), stats.percent(1 - stats.CONFIDENCE)  # "95%", "5%"


@dataclass(frozen=True)
class Group:
    name: str
    values: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return stats.mean(self.values)

    @property
    def std(self) -> float | None:
        return stats.std(self.values)

    def interval(self, bounds: stats.Bounds | None = None) -> stats.Interval | None:
        return stats.mean_interval(self.values, bounds=bounds)


def bounds_of(metric: str) -> stats.Bounds | None:
    """Where ``metric``'s values lie (an accuracy in [0, 1]); None for a metric not known or not bounded."""
    try:
        return metric_named(metric).bounds
    except KeyError:
        return None


def difference_test(a: Group, b: Group, metric: str | None = None) -> WelchTest | None:
    """``a.mean - b.mean``, its interval and Welch's p-value; None when a group has fewer than two values
    or neither varies."""
    return stats.welch_test(a.values, b.values, bounds=bounds_of(metric) if metric else None)


def describe_group(group: Group, metric: str) -> str:
    interval = group.interval(bounds_of(metric))
    spread = f" ± {group.std:.4f}" if group.std is not None else ""
    shown = f", {LEVEL} interval {interval.text()}" if interval else " (one seed: no interval)"
    return f"{group.name}: {metric} {group.mean:.4f}{spread} over n={group.n}{shown}"


def compare_two(a: Group, b: Group, metric: str) -> str:
    """One line for people: ``a`` against ``b``, the difference, its interval, Welch's p and a verdict."""
    test = difference_test(a, b, metric)
    if test is None:
        return (
            f"{a.name} vs {b.name}: a test needs at least 2 completed seeds in each group, and some "
            "spread; train more seeds (train.py -m seed=1,2,3 ...)"
        )
    word = "higher" if test.difference >= 0 else "lower"
    verdict = (
        f"significant at the {SIGNIFICANCE} level: {a.name} is {'better' if _better(test, metric) else 'worse'}"
        if test.significant
        else f"not significant at the {SIGNIFICANCE} level: these seeds do not tell the two apart"
    )
    return (
        f"{a.name} vs {b.name}: {metric} {abs(test.difference):.4f} {word} ({LEVEL} interval of the "
        f"difference {test.interval.text(signed=True)}), Welch's t-test p={test.p_value:.3g} "
        f"(df {test.dof:.1f}): {verdict}"
    )


def compare_best_two(groups: Sequence[Group], metric: str) -> list[str]:
    """Lines for people: each group, then the best two compared (``groups`` best first)."""
    groups = [group for group in groups if group.n]
    lines = [describe_group(group, metric) for group in groups]
    if len(groups) < 2:
        return lines
    return [*lines, compare_two(groups[0], groups[1], metric)]


def _better(test: WelchTest, metric: str) -> bool:
    return (test.difference > 0) == metric_named(metric).higher_is_better
