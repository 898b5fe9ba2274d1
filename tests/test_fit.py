"""The fit path: what a run writes, schedules, divergence, and real MNIST."""

from __future__ import annotations

import json
import math

import pytest

from conftest import FAKE_FAST, compose_config
from sweeplab.runs.fit import fit

RESULT_KEYS = {
    "test_acc",
    "test_loss",
    "best_val_acc",
    "best_val_loss",
    "best_epoch",
    "epochs_run",
    "stopped_early",
    "duration_s",
    "num_params",
    "seed",
    "git_commit",
    "status",
}


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    cfg = compose_config(FAKE_FAST + ["model=mlp", "logger=tensorboard", "trainer.max_epochs=3"])
    return run_dir, fit(cfg, run_dir)


def test_a_run_writes_results_checkpoints_and_events(fake_run):
    run_dir, results = fake_run
    on_disk = json.loads((run_dir / "results.json").read_text())
    assert set(on_disk) >= RESULT_KEYS
    assert on_disk["status"] == "completed" and on_disk == json.loads(json.dumps(results.to_dict()))
    assert on_disk["epochs_run"] == 3 and len(on_disk["history"]) == 3
    assert [row["epoch"] for row in on_disk["history"]] == [1, 2, 3]
    assert on_disk["best_val_loss"] == min(row["val_loss"] for row in on_disk["history"])
    assert on_disk["num_params"] == (784 * 200 + 200) + (200 * 200 + 200) + (200 * 10 + 10)
    assert sum(map(sum, on_disk["test_confusion"])) == on_disk["test_size"] == 64
    assert {p.name for p in (run_dir / "checkpoints").iterdir()} == {"best.ckpt", "last.ckpt"}
    assert list(run_dir.glob("events.out.tfevents.*"))
    assert "Linear" in (run_dir / "model_summary.txt").read_text()


def test_history_keeps_every_epoch_even_when_the_best_is_earlier(tmp_path):
    # checkpointing the *highest* validation loss makes the first epoch the "best" one
    cfg = compose_config(
        FAKE_FAST + ["model=mlp", "trainer.max_epochs=4", "early_stopping.patience=10", "callbacks.checkpoint.mode=max"]
    )
    results = fit(cfg, tmp_path)
    losses = [r["val_loss"] for r in results.history]
    assert losses.index(max(losses)) < 3  # the evaluated checkpoint is not the last epoch's
    assert results.epochs_run == 4 and [r["epoch"] for r in results.history] == [1, 2, 3, 4]


def test_learnable_data_is_learned(fake_run):
    _, results = fake_run
    assert results.test_acc > 0.5  # chance is 0.1


def _lrs(results):
    return [row["lr"] for row in results.history]


@pytest.mark.parametrize(
    "scheduler, check",
    [
        ("none", lambda lrs: lrs == [1e-2] * 3),
        ("step", lambda lrs: lrs == pytest.approx([1e-2, 1e-2, 1e-3])),  # step_size=2, gamma=0.1
        ("cosine", lambda lrs: lrs[0] > lrs[1] > lrs[2] >= 0),
        ("onecycle", lambda lrs: lrs[0] == pytest.approx(1e-2 / 25) and lrs[0] < lrs[1] > lrs[2]),  # warm-up, anneal
    ],
)
def test_schedulers_shape_the_learning_rate(tmp_path, scheduler, check):
    extra = ["scheduler.step_size=2"] if scheduler == "step" else []
    cfg = compose_config(
        FAKE_FAST
        + [
            "model=mlp",
            "optimizer=sgd",
            "optimizer.lr=0.01",
            "trainer.max_epochs=3",
            f"scheduler={scheduler}",
            "early_stopping.patience=10",
            *extra,
        ]
    )
    results = fit(cfg, tmp_path)
    assert results.status == "completed"
    assert check(_lrs(results)), _lrs(results)


def test_plateau_scheduler_monitors_validation_loss(tmp_path):
    # threshold=1: only halving val_loss counts as improvement, so every epoch after the first plateaus
    cfg = compose_config(
        FAKE_FAST
        + [
            "model=mlp",
            "scheduler=plateau",
            "scheduler.patience=0",
            "+scheduler.threshold=1.0",
            "optimizer=sgd",
            "optimizer.lr=0.05",
            "trainer.max_epochs=3",
            "early_stopping.patience=10",
        ]
    )
    results = fit(cfg, tmp_path)
    assert _lrs(results) == pytest.approx([0.05, 0.005, 0.0005])


def test_a_diverging_loss_stops_the_run_with_status_diverged(tmp_path):
    cfg = compose_config(FAKE_FAST + ["model=mlp", "optimizer=sgd", "optimizer.lr=1e6", "trainer.max_epochs=5"])
    results = fit(cfg, tmp_path)
    assert results.status == "diverged"
    assert "loss became" in results.error
    assert results.epochs_run <= 1
    assert json.loads((tmp_path / "results.json").read_text())["status"] == "diverged"


def test_lenet_learns_real_mnist_and_is_reproducible(tmp_path, mnist_dir):
    """Three epochs of LeNet-5 on the 7,200 real training images, twice with one seed."""
    overrides = [
        f"data.data_dir={mnist_dir}",
        "model=lenet",
        "trainer.max_epochs=3",
        "seed=1",
        "logger=csv",
        "progress_bar=false",
    ]
    first = fit(compose_config(overrides), tmp_path / "a")
    second = fit(compose_config(overrides), tmp_path / "b")
    assert first.status == "completed" and first.test_size == 2000
    assert first.test_acc >= 0.95, first.test_acc
    assert first.test_acc == second.test_acc
    assert [r["val_loss"] for r in first.history] == [r["val_loss"] for r in second.history]
    assert math.isfinite(first.test_loss)
