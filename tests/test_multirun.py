"""`train.py -m`: every combination runs in its own folder, and the root gets compare.py's table as a summary."""

from __future__ import annotations

import csv
import json
from itertools import product
from pathlib import Path

import yaml
from omegaconf import OmegaConf

from conftest import FAKE_FAST, run_cli
from sweeplab.reports.multirun_summary import SUMMARY_CSV, SUMMARY_MD, MultirunSummary


def read_summary(root: Path) -> list[dict[str, str]]:
    with open(root / SUMMARY_CSV) as handle:
        return list(csv.DictReader(handle))


def test_a_grid_runs_every_combination_and_writes_a_summary_best_first(tmp_path):
    root = tmp_path / "grid"
    result = run_cli(
        "train.py",
        "-m",
        *FAKE_FAST,
        "data.noise=4.0",
        "model=mlp",
        "trainer.max_epochs=1",
        "evaluate_test=false",
        "optimizer=sgd,adam",
        "optimizer.lr=0.01,0.001",
        f"hydra.sweep.dir={root}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    job_dirs = sorted(path for path in root.iterdir() if path.is_dir())
    assert [path.name for path in job_dirs] == ["0", "1", "2", "3"]
    rows = read_summary(root)
    assert len(rows) == 4
    assert {(row["optimizer"], row["optimizer.lr"]) for row in rows} == set(product(["sgd", "adam"], ["0.01", "0.001"]))
    accuracies = [float(row["best_val_acc"]) for row in rows]
    assert accuracies == sorted(accuracies, reverse=True)
    for row in rows:  # each row is its own run's results
        results = json.loads((root / row["run"] / "results.json").read_text())
        assert float(row["best_val_acc"]) == results["best_val_acc"] and row["status"] == results["status"]
        overrides = yaml.safe_load((root / row["run"] / ".hydra" / "overrides.yaml").read_text())
        assert f"optimizer={row['optimizer']}" in overrides and f"optimizer.lr={row['optimizer.lr']}" in overrides
    table = (root / SUMMARY_MD).read_text().splitlines()
    assert sum(line.startswith("| ") for line in table) == 1 + 4  # header + one row per run


def fake_job(root: Path, job: str, dropout: float, results: dict | None) -> None:
    (root / job / ".hydra").mkdir(parents=True)
    (root / job / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"seed": 1, "model": {"dropout": dropout}}))
    if results is not None:
        (root / job / "results.json").write_text(json.dumps({**results, "hparams": {"model.dropout": dropout}}))


def test_runs_without_the_metric_come_last_and_a_cv_job_is_one_row_of_fold_means(tmp_path):
    fake_job(tmp_path, "0", 0.1, {"status": "diverged", "best_val_acc": None})
    fake_job(tmp_path, "1", 0.2, {"status": "completed", "best_val_acc": 0.5})
    fake_job(tmp_path, "2", 0.3, None)  # a job that never wrote results
    fake_job(tmp_path, "10", 0.4, {"status": "completed", "best_val_acc": 0.75})
    fake_job(tmp_path, "3", 0.5, None)  # a cross-validated job: fold means in cv_report.json, folds below it
    (tmp_path / "3" / "cv_report.json").write_text(
        json.dumps({"status": "completed", "best_val_acc": 0.6, "hparams": {"model.dropout": 0.5}})
    )
    (tmp_path / "3" / "fold_0").mkdir()
    (tmp_path / "3" / "fold_0" / "results.json").write_text(json.dumps({"status": "completed", "best_val_acc": 0.9}))
    MultirunSummary().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}}))
    rows = read_summary(tmp_path)
    assert [row["run"] for row in rows] == ["10", "3", "1", "0", "2"]
    assert [row["status"] for row in rows] == ["completed", "completed", "completed", "diverged", "no results"]
    assert [row["model.dropout"] for row in rows] == ["0.4", "0.5", "0.2", "0.1", "0.3"]


def test_the_summary_can_rank_by_a_loss(tmp_path):
    for job, loss in (("0", 0.9), ("1", 0.3), ("2", 0.6)):
        fake_job(tmp_path, job, float(job), {"status": "completed", "best_val_loss": loss})
    MultirunSummary(sort_by="best_val_loss").on_multirun_end(
        OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}})
    )
    assert [row["run"] for row in read_summary(tmp_path)] == ["1", "2", "0"]
