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
    subprocess.run([sys.executable, str(SCRIPT), "--data-dir", str(mnist_dir), "--ways", "ac", "--max-epochs", "2",
                    "--target", "1.01", "--results", str(tmp_path / "results"), "--work", str(tmp_path / "work")],
                   check=True, cwd=tmp_path, timeout=600, capture_output=True)
    a, c = epochs(tmp_path / "work" / "a.jsonl"), epochs(tmp_path / "work" / "c.jsonl")
    assert [epoch for epoch, _ in a] == [1, 2]
    assert a == c
    assert 0.9 < a[-1][1] < 1.0  # it learned: a test accuracy over the real test images, not a constant
    table = (tmp_path / "results" / "time_to_accuracy.md").read_text()
    assert "- c/a: n/a (a way never reached the target)" in table
    assert f"| {a[-1][1]:.4f} |" in table
