"""How far a cross-validated score can be trusted: mean, spread and Student-t intervals.

Two intervals are given. The plain one treats the fold scores as independent
samples. They are not: every two folds share most of their training data, so
the plain interval is too narrow. Nadeau & Bengio (2003, "Inference for the
generalization error") correct the variance of the mean of J resampled scores
from ``s²/J`` to ``(1/J + n_test/n_train) s²``; the corrected interval uses it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

from scipy import stats as scipy_stats

CONFIDENCE = 0.95


def t_quantile(dof: int, confidence: float = CONFIDENCE) -> float:
    """The two-sided Student-t critical value for ``confidence`` with ``dof`` degrees of freedom."""
    return float(scipy_stats.t.ppf(0.5 + confidence / 2, dof))


def nadeau_bengio_factor(count: int, n_train: float, n_test: float) -> float:
    """``1/J + n_test/n_train``: multiplies the sample variance for the variance of the mean."""
    return 1.0 / count + n_test / n_train


def describe(
    values: Sequence[float],
    *,
    n_train: float | None = None,
    n_test: float | None = None,
    confidence: float = CONFIDENCE,
) -> dict[str, Any]:
    """Mean, std (ddof=1), standard error and Student-t intervals of fold scores.

    With ``n_train``/``n_test`` (mean fold sizes) the Nadeau-Bengio corrected
    interval is added. Statistics that need two values are ``None`` with one.
    """
    values = [float(v) for v in values]
    count = len(values)
    summary: dict[str, Any] = {"n": count, "mean": statistics.fmean(values) if values else None,
                               "min": min(values, default=None), "max": max(values, default=None),
                               "std": None, "sem": None, "ci_low": None, "ci_high": None,
                               "corrected_sem": None, "corrected_ci_low": None, "corrected_ci_high": None,
                               "confidence": confidence}
    if count < 2:
        return summary
    std = statistics.stdev(values)
    critical = t_quantile(count - 1, confidence)
    sem = std / math.sqrt(count)
    summary.update(std=std, sem=sem, ci_low=summary["mean"] - critical * sem, ci_high=summary["mean"] + critical * sem)
    if n_train and n_test:
        corrected_sem = std * math.sqrt(nadeau_bengio_factor(count, n_train, n_test))
        summary.update(corrected_sem=corrected_sem, corrected_ci_low=summary["mean"] - critical * corrected_sem,
                       corrected_ci_high=summary["mean"] + critical * corrected_sem)
    return summary
