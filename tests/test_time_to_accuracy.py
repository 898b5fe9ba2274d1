"""benchmarks/time_to_accuracy.py compares pipelines, not luck: its ways train the same steps."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "time_to_accuracy.py"


def epochs(path: Path) -> list[tuple[int, float]]:
    return [(row["epoch"], row["test_acc"]) for row in map(json.loads, path.read_text().splitlines())]


def test_the_plain_loop_and_train_py_end_each_epoch_with_the_same_test_accuracy(mnist_dir, tmp_path):
    """(a) and (c) share split, standardization, initial weights, batch order, augmentation and kernels:
    after each epoch the same test accuracy, to the last image (a target no run reaches keeps every epoch)."""
    subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--data-dir",
            str(mnist_dir),
            "--ways",
            "ac",
            "--max-epochs",
            "2",
            "--target",
            "1.01",
            "--repeats",
            "1",
            "--results",
            str(tmp_path / "results"),
            "--work",
            str(tmp_path / "work"),
        ],
        check=True,
        cwd=tmp_path,
        timeout=600,
        capture_output=True,
    )
    a, c = epochs(tmp_path / "work" / "a_1.jsonl"), epochs(tmp_path / "work" / "c_1.jsonl")
    assert [epoch for epoch, _ in a] == [1, 2]
    assert a == c
    assert 0.9 < a[-1][1] < 1.0  # it learned: a test accuracy over the real test images, not a constant
    table = (tmp_path / "results" / "time_to_accuracy.md").read_text()
    assert "- c/a: n/a (a way never reached the target)" in table
    assert f"| {a[-1][1]:.4f} |" in table


def test_the_table_gives_medians_and_the_median_of_each_rounds_ratio(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import time_to_accuracy

    def run(way: str, seconds: float, epoch_s: float) -> dict:
        return {
            "way": way,
            "pipeline": time_to_accuracy.WAYS[way],
            "best_test_acc": 0.9924,
            "seconds": seconds,
            "epoch_reached": 8,
            "first_epoch_s": seconds / 4,
            "startup_s": seconds - 8 * epoch_s,
            "epoch_s": epoch_s,
        }

    runs = {
        "a": [run("a", 70.0, 8.0), run("a", 100.0, 11.0), run("a", 80.0, 9.0)],
        "c": [run("c", 84.0, 9.5), run("c", 90.0, 10.0), run("c", 80.0, 9.0)],
    }
    text = time_to_accuracy.table(runs, 0.99)
    assert "| a | plain PyTorch loop over tensors | 80.0 | 70.0-100.0 | 8 |" in text
    assert "| c | python train.py | 84.0 | 80.0-90.0 | 8 |" in text
    # each round's ratio (1.20, 0.90, 1.00), not the ratio of the medians (84 / 80 = 1.05)
    assert "- c/a = 1.00 (goal <= 1.1: meets); each run: 1.20, 0.90, 1.00" in text
    assert "c/b" not in text  # (b) did not run
