"""sweeplab.stats: the one home of every mean, interval and test; scipy's numbers, accuracies clipped to [0, 1]."""

from __future__ import annotations

import math
import re
import statistics
from pathlib import Path

import pytest
from scipy import stats as scipy_stats

from sweeplab import stats
from sweeplab.cv.report import interval_text, summarize
from sweeplab.reports.seed_groups import Group, compare_two, describe_group

SRC = Path(__file__).resolve().parents[1] / "src" / "sweeplab"


def _hand_welch(a, b):
    """Welch-Satterthwaite by hand: the difference, its 95% interval, the degrees of freedom."""
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = scipy_stats.t.ppf(0.975, dof) * math.sqrt(va + vb)
    difference = statistics.fmean(a) - statistics.fmean(b)
    return difference, difference - half, difference + half, dof


def test_welch_test_agrees_with_the_hand_written_formula():
    a, b = [0.981, 0.983, 0.979, 0.984], [0.970, 0.975, 0.968]
    test = stats.welch_test(a, b, bounds=(0.0, 1.0))
    difference, low, high, dof = _hand_welch(a, b)
    assert (test.difference, test.low, test.high, test.dof) == pytest.approx((difference, low, high, dof))
    assert test.p_value == pytest.approx(scipy_stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert test.significant and not test.interval.clipped


def test_welch_test_needs_two_values_a_side_and_some_spread():
    assert stats.welch_test([0.9], [0.8, 0.85]) is None
    assert stats.welch_test([0.9, 0.9], [0.8, 0.8]) is None


def test_mean_interval_is_the_student_t_interval():
    values = [0.95, 0.97, 0.96, 0.99]
    interval = stats.mean_interval(values)
    half = scipy_stats.t.ppf(0.975, 3) * statistics.stdev(values) / 2
    assert (interval.low, interval.high) == pytest.approx(
        (statistics.fmean(values) - half, statistics.fmean(values) + half)
    )
    assert stats.mean_interval([0.9]) is None


def test_an_accuracy_interval_past_1_is_clipped_and_says_so():
    values = [0.90, 0.99, 1.0]  # mean 0.963, the t-interval reaches 1.09
    unclipped = stats.mean_interval(values)
    clipped = stats.mean_interval(values, bounds=(0.0, 1.0))
    assert unclipped.high > 1.0 and not unclipped.clipped
    assert clipped.high == 1.0 and clipped.low == pytest.approx(unclipped.low) and clipped.clipped
    assert clipped.text() == f"[{unclipped.low:.4f}, 1.0000] (clipped to [0, 1])"
    line = describe_group(Group("model=lenet", tuple(values)), "test_acc")
    assert line.endswith(f"95% interval [{unclipped.low:.4f}, 1.0000] (clipped to [0, 1])")
    assert "clipped" not in describe_group(Group("model=lenet", (1.0, 3.0, 2.0)), "duration_s")  # not an accuracy


def test_cv_corrected_interval_below_0_is_clipped_and_the_report_says_so():
    folds = [
        {"status": "completed", "train_size": 80, "val_size": 20, "val_acc": acc, "val_loss": 1.0, "best_epoch": 1}
        for acc in (0.0, 0.2, 0.1)
    ]
    summary = summarize(folds)
    acc = summary["val_acc"]
    corrected = stats.describe([0.0, 0.2, 0.1], n_train=80, n_test=20)  # unbounded: reaches below 0
    assert corrected["corrected_ci_low"] < 0 and corrected["ci_low"] < 0
    assert acc["corrected_ci_low"] == 0.0 and acc["corrected_ci_clipped"] and acc["ci_clipped"]
    assert acc["corrected_ci_high"] == pytest.approx(corrected["corrected_ci_high"])
    assert interval_text(acc, "corrected_") == f"[0.0000, {corrected['corrected_ci_high']:.4f}] (clipped to [0, 1])"
    assert not summary["val_loss"]["ci_clipped"] and "clipped" not in interval_text(summary["val_loss"])


def test_the_verdict_line_keeps_its_words():
    line = compare_two(
        Group("model=lenet", (0.991, 0.990, 0.992)), Group("model=mlp", (0.981, 0.983, 0.980)), "test_acc"
    )
    assert re.fullmatch(
        r"model=lenet vs model=mlp: test_acc 0\.0097 higher \(95% interval of the difference "
        r"\[\+0\.\d{4}, \+0\.\d{4}\]\), Welch's t-test p=\S+ \(df \d+\.\d\): significant at the 5% level: "
        r"model=lenet is better",
        line,
    ), line


def test_no_statistics_outside_the_stats_module():
    """Acceptance 3: no other t.ppf, stdev or hand-written Welch, and one confidence level."""
    offenders, confidences = [], []
    for path in SRC.rglob("*.py"):
        if path == SRC / "stats.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"t\.ppf|stdev|welch", line) and not re.search(r"stats\.welch_test\(", line):
                offenders.append(f"{path.relative_to(SRC)}:{number}: {line.strip()}")
            if re.match(r"\s*CONFIDENCE\s*=", line):
                confidences.append(f"{path.relative_to(SRC)}:{number}")
    assert offenders == [] and confidences == []
    assert re.search(r"^CONFIDENCE = 0\.95", (SRC / "stats.py").read_text(), re.MULTILINE)
