"""Every mean, spread, interval and test sweeplab prints: one module, one confidence level.

``compare.py --group-seeds`` and ``--diff`` (seed groups and Welch's test), the
cross-validation report (fold intervals) and the paired test of two CV runs all
compute here, through :mod:`scipy.stats` (``t.interval``, ``ttest_ind(equal_var=False)``
with its ``df`` and ``confidence_interval()``). The one formula scipy lacks is kept
here too: Nadeau & Bengio (2003, "Inference for the generalization error") correct
the variance of the mean of J resampled scores whose training sets overlap from
``s²/J`` to ``(1/J + n_test/n_train) s²``.

An interval of a bounded quantity (an accuracy lies in [0, 1]) is clipped to its
bounds, and says so: a t-interval knows nothing of bounds and can reach 1.02.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from scipy import stats as scipy_stats

CONFIDENCE = 0.95  # every interval and test of sweeplab: 95% intervals, significance at the 5% level
Bounds = tuple[float, float]


def percent(fraction: float) -> str:
    """``0.95`` -> ``"95%"``: how the confidence and significance levels are written."""
    return f"{round(100 * fraction)}%"


@dataclass(frozen=True)
class Interval:
    """``[low, high]``; ``clipped_to`` holds the bounds it was cut to when it reached past them."""

    low: float
    high: float
    clipped_to: Bounds | None = None

    @property
    def clipped(self) -> bool:
        return self.clipped_to is not None

    def text(self, signed: bool = False) -> str:
        """``[0.9612, 0.9688]`` (``signed``: ``[+0.0012, +0.0051]``), with ``(clipped to [0, 1])`` when it was."""
        spec = "+.4f" if signed else ".4f"
        shown = f"[{self.low:{spec}}, {self.high:{spec}}]"
        return shown + clip_note(self.clipped_to)


def clip_note(bounds: Bounds | None) -> str:
    """What an interval cut to ``bounds`` says about it; empty when it was not cut."""
    return "" if bounds is None else f" (clipped to [{bounds[0]:g}, {bounds[1]:g}])"


def clip(low: float, high: float, bounds: Bounds | None = None) -> Interval:
    """``[low, high]`` cut to ``bounds`` (None: unbounded)."""
    if bounds is None or (low >= bounds[0] and high <= bounds[1]):
        return Interval(low, high)
    low_bound, high_bound = float(bounds[0]), float(bounds[1])
    return Interval(max(low, low_bound), min(high, high_bound), (low_bound, high_bound))


def difference_bounds(bounds: Bounds | None) -> Bounds | None:
    """Where ``a - b`` lies when ``a`` and ``b`` lie in ``bounds``: [-1, 1] for two accuracies."""
    return None if bounds is None else (bounds[0] - bounds[1], bounds[1] - bounds[0])


# --- one sample ----------------------------------------------------------------------------


def mean(values: Sequence[float]) -> float:
    """The arithmetic mean; a ValueError (``statistics.StatisticsError``) for no values."""
    return statistics.fmean(values)


def std(values: Sequence[float]) -> float | None:
    """The sample standard deviation (ddof=1); None with fewer than two values."""
    return statistics.stdev(values) if len(values) > 1 else None


def variance(values: Sequence[float]) -> float | None:
    """The sample variance (ddof=1); None with fewer than two values."""
    return statistics.variance(values) if len(values) > 1 else None


@dataclass(frozen=True)
class MeanStd:
    """A metric over the seeds of a group: mean, sample standard deviation (None for one value), count."""

    mean: float
    std: float | None
    count: int

    @classmethod
    def of(cls, values: Sequence[float]) -> MeanStd | None:
        if not values:
            return None
        return cls(statistics.fmean(values), std(values), len(values))


def t_interval(
    center: float, standard_error: float, dof: float, confidence: float = CONFIDENCE, bounds: Bounds | None = None
) -> Interval:
    """``center ± t_{dof} * standard_error``, the two-sided Student-t interval at ``confidence``."""
    if standard_error == 0:  # scipy wants a positive scale; no spread, no width
        return clip(center, center, bounds)
    low, high = scipy_stats.t.interval(confidence, dof, loc=center, scale=standard_error)
    return clip(float(low), float(high), bounds)


def mean_interval(
    values: Sequence[float], confidence: float = CONFIDENCE, bounds: Bounds | None = None
) -> Interval | None:
    """The Student-t interval of the mean of ``values``; None with fewer than two."""
    if len(values) < 2:
        return None
    return t_interval(
        statistics.fmean(values), statistics.stdev(values) / math.sqrt(len(values)), len(values) - 1, confidence, bounds
    )


def two_sided_p(t: float, dof: float) -> float:
    """The two-sided p-value of a Student-t statistic."""
    return float(2 * scipy_stats.t.sf(abs(t), dof))


# --- resampled scores (cross-validation) -----------------------------------------------------


def nadeau_bengio_factor(count: int, n_train: float, n_test: float) -> float:
    """``1/J + n_test/n_train``: multiplies the sample variance for the variance of the mean."""
    return 1.0 / count + n_test / n_train


def describe(
    values: Sequence[float],
    *,
    n_train: float | None = None,
    n_test: float | None = None,
    confidence: float = CONFIDENCE,
    bounds: Bounds | None = None,
) -> dict[str, Any]:
    """Mean, std (ddof=1), standard error and Student-t intervals of fold scores.

    With ``n_train``/``n_test`` (mean fold sizes) the Nadeau-Bengio corrected
    interval is added. Statistics that need two values are ``None`` with one.
    ``ci_clipped``/``corrected_ci_clipped`` say whether an interval was cut to ``bounds``.
    """
    values = [float(v) for v in values]
    count = len(values)
    summary: dict[str, Any] = {
        "n": count,
        "mean": mean(values) if values else None,
        "min": min(values, default=None),
        "max": max(values, default=None),
        "std": None,
        "sem": None,
        "ci_low": None,
        "ci_high": None,
        "ci_clipped": False,
        "corrected_sem": None,
        "corrected_ci_low": None,
        "corrected_ci_high": None,
        "corrected_ci_clipped": False,
        "confidence": confidence,
        "bounds": list(bounds) if bounds is not None else None,
    }
    if count < 2:
        return summary
    spread = statistics.stdev(values)
    sem = spread / math.sqrt(count)
    plain = t_interval(summary["mean"], sem, count - 1, confidence, bounds)
    summary.update(std=spread, sem=sem, ci_low=plain.low, ci_high=plain.high, ci_clipped=plain.clipped)
    if n_train and n_test:
        corrected_sem = spread * math.sqrt(nadeau_bengio_factor(count, n_train, n_test))
        corrected = t_interval(summary["mean"], corrected_sem, count - 1, confidence, bounds)
        summary.update(
            corrected_sem=corrected_sem,
            corrected_ci_low=corrected.low,
            corrected_ci_high=corrected.high,
            corrected_ci_clipped=corrected.clipped,
        )
    return summary


@dataclass(frozen=True)
class CorrectedPairedTest:
    """Nadeau & Bengio's corrected resampled t-test of the mean of paired differences."""

    mean: float
    variance: float  # of the differences, ddof=1
    correction: float  # 1/J + n_test/n_train
    standard_error: float  # sqrt(correction * variance)
    t: float
    dof: int
    p_value: float
    interval: Interval


def corrected_paired_test(
    differences: Sequence[float],
    n_train: float,
    n_test: float,
    confidence: float = CONFIDENCE,
    bounds: Bounds | None = None,
) -> CorrectedPairedTest:
    """The test of ``mean(differences) == 0`` over J >= 2 folds that share training data."""
    count = len(differences)
    center, spread = statistics.fmean(differences), statistics.variance(differences)
    correction = nadeau_bengio_factor(count, n_train, n_test)
    standard_error = math.sqrt(correction * spread)
    dof = count - 1
    if standard_error > 0:
        t = center / standard_error
        p_value = two_sided_p(t, dof)
    else:  # every fold differs by the same amount
        t = 0.0 if center == 0 else math.copysign(math.inf, center)
        p_value = 1.0 if center == 0 else 0.0
    return CorrectedPairedTest(
        center,
        spread,
        correction,
        standard_error,
        t,
        dof,
        p_value,
        t_interval(center, standard_error, dof, confidence, bounds),
    )


# --- two independent samples (seed groups) -------------------------------------------------


@dataclass(frozen=True)
class WelchTest:
    """Welch's t-test of ``mean(a) - mean(b)``: the difference, its interval, Welch-Satterthwaite dof, p."""

    difference: float
    interval: Interval
    dof: float
    p_value: float
    confidence: float = CONFIDENCE

    @property
    def low(self) -> float:
        return self.interval.low

    @property
    def high(self) -> float:
        return self.interval.high

    @property
    def significant(self) -> bool:
        return self.p_value < 1 - self.confidence


def welch_test(
    a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE, bounds: Bounds | None = None
) -> WelchTest | None:
    """Welch's test of ``a`` against ``b`` (values within ``bounds``); None when a sample has fewer than two
    values or neither varies (there is no spread to test against)."""
    if len(a) < 2 or len(b) < 2 or (variance(a) == 0 and variance(b) == 0):
        return None
    result = scipy_stats.ttest_ind(list(a), list(b), equal_var=False)
    low, high = result.confidence_interval(confidence)
    interval = clip(float(low), float(high), difference_bounds(bounds))
    return WelchTest(
        statistics.fmean(a) - statistics.fmean(b), interval, float(result.df), float(result.pvalue), confidence
    )
