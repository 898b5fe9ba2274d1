"""Nothing lost: a killed run resumes to the same result; checkpoints load safely."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import run_cli

# dropout and augmentation draw random numbers every step: resuming must restore them too
OVERRIDES = [
    "data=fake",
    "data.num_samples=400",
    "data.num_test_samples=200",
    "data.noise=4",
    "data.batch_size=32",
    "data.augment.rotation=10",
    "model=mlp",
    "model.dropout=0.3",
    "optimizer=sgd",
    "optimizer.lr=0.05",
    "scheduler=step",
    "scheduler.step_size=1",
    "scheduler.gamma=0.7",
    "trainer.max_epochs=4",
    "early_stopping.patience=10",
    "logger=csv",
    "seed=7",
]


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    full, killed = root / "full", root / "killed"
    uninterrupted = run_cli("train.py", *OVERRIDES, f"hydra.run.dir={full}", cwd=root)
    kill = run_cli(
        "train.py",
        *OVERRIDES,
        f"hydra.run.dir={killed}",
        "+callbacks.kill._target_=kill_after_epoch.KillAfterEpoch",
        "+callbacks.kill.epoch=2",
        cwd=root,
    )
    state_after_kill = {
        "returncode": kill.returncode,
        "has_results": (killed / "results.json").exists(),
        "checkpoint_epoch": torch.load(killed / "checkpoints" / "last.ckpt", weights_only=True)["epoch"],
    }
    resumed = run_cli("train.py", *OVERRIDES, f"hydra.run.dir={killed}", "resume=true", cwd=root)
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-2000:]
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    return (
        json.loads((full / "results.json").read_text()),
        json.loads((killed / "results.json").read_text()),
        state_after_kill,
        killed,
    )


def test_the_kill_happened_after_two_saved_epochs(killed_and_resumed):
    _, _, state, _ = killed_and_resumed
    assert state["returncode"] == -9
    assert not state["has_results"]  # no results.json claims anything for a killed run
    assert state["checkpoint_epoch"] == 1  # Lightning counts from 0: two epochs done


def test_resumed_run_ends_exactly_like_the_uninterrupted_one(killed_and_resumed):
    full, resumed, _, _ = killed_and_resumed
    assert resumed["status"] == "completed" and resumed["epochs_run"] == 4
    assert resumed["test_acc"] == full["test_acc"]
    assert resumed["test_loss"] == full["test_loss"]
    assert [r["val_loss"] for r in resumed["history"]] == [r["val_loss"] for r in full["history"]]
    assert [r["lr"] for r in resumed["history"]] == [r["lr"] for r in full["history"]]


def test_checkpoints_hold_plain_values_only(killed_and_resumed):
    *_, run_dir = killed_and_resumed
    for path in (run_dir / "checkpoints").glob("*.ckpt"):
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        assert checkpoint["hyper_parameters"]["optimizer.lr"] == 0.05
        assert len(checkpoint["sweeplab_history"]) >= 1


def test_a_checkpoint_of_another_shape_is_refused_naming_the_file(killed_and_resumed, tmp_path):
    """Allowed to change the config, a resume still cannot load weights of another shape (refusals of a
    changed config, a corrupt checkpoint or a missing one: tests/test_bad_input.py)."""
    *_, run_dir = killed_and_resumed
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    allowed = run_cli(
        "train.py",
        *OVERRIDES,
        "model.hidden=[50]",
        f"ckpt_path={ckpt}",
        "resume_allow_changes=true",
        f"hydra.run.dir={tmp_path / 'run'}",
        cwd=tmp_path,
    )
    assert allowed.returncode == 2
    assert str(ckpt) in allowed.stderr and "does not match" in allowed.stderr
    assert not (tmp_path / "run").exists()  # a refused start leaves no folder
