"""A trial whose worker was killed is retried from its last checkpoint: same folder, same seed, same final metrics."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import yaml
from optuna.trial import TrialState

from conftest import FAKE_FAST, HELPERS, REPO

EPOCHS = 4
BASE = [*FAKE_FAST, "model=mlp", f"trainer.max_epochs={EPOCHS}", "evaluate_test=true", "early_stopping.patience=10"]
# holds trial 0 after one batch of its third epoch (epochs 1 and 2 are in last.ckpt), once per folder
HOLD = [
    "+callbacks.hold._target_=stop_points.HoldMidEpoch",
    "+callbacks.hold.epoch=2",
    "+callbacks.hold.batches=1",
    "+callbacks.hold.folder=trial_0000",
]


def write_sweep(folder: Path, overrides: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    content = {
        "overrides": overrides,
        "n_trials": 1,
        "sampler": {"name": "random", "seed": 0},
        "pruner": {"name": "none"},
        "space": {"optimizer.lr": {"type": "float", "low": 1e-3, "high": 0.1, "log": True}},
    }
    path = folder / "retry.yaml"
    path.write_text(yaml.safe_dump(content, sort_keys=False))
    return path


def start_sweep(source: Path, study_dir: Path, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(HELPERS), os.environ.get("PYTHONPATH")])),
    }
    with open(log, "w") as out:
        return subprocess.Popen(
            [sys.executable, str(REPO / "sweep.py"), f"sweep={source}", f"sweep.dir={study_dir}"],
            cwd=source.parent,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_for(path: Path, process: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        ended = process.poll()
        assert ended is None, f"the sweep ended (exit {ended}) before {path}:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"no {path} after {timeout} s:\n{log.read_text()[-3000:]}"
        time.sleep(0.05)


def finished(process: subprocess.Popen, log: Path) -> str:
    try:
        assert process.wait(timeout=300) == 0, log.read_text()[-3000:]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    return log.read_text()


def trials_of(study_dir: Path) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name="retry", storage=f"sqlite:///{study_dir / 'study.db'}").get_trials()


def test_a_killed_trial_is_retried_from_its_last_checkpoint_with_the_metrics_of_one_never_killed(tmp_path):
    killed_dir = tmp_path / "killed" / "study"
    source = write_sweep(tmp_path / "killed", [*BASE, *HOLD])
    first_log = tmp_path / "first.log"
    first = start_sweep(source, killed_dir, first_log)
    try:
        wait_for(killed_dir / "trial_0000" / "stop_here.1", first, first_log)  # in epoch 3
        os.killpg(first.pid, signal.SIGKILL)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    assert re.findall(r"\] - epoch (\d)/4 ", first_log.read_text()) == ["1", "2"]

    again_log = tmp_path / "again.log"
    again = finished(start_sweep(source, killed_dir, again_log), again_log)  # the same command
    assert re.findall(r"\] - epoch (\d)/4 ", again) == ["3", "4"], again[-3000:]  # the epochs this process trained
    assert "resuming after epoch 2 of 4" in again

    trials = trials_of(killed_dir)
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE]
    original, retry = trials
    assert retry.system_attrs["failed_trial"] == 0 and retry.params == original.params
    assert retry.user_attrs["resumed_from_trial"] == 0 and retry.user_attrs["resumed_from_epoch"] == 2
    assert Path(retry.user_attrs["dir"]) == killed_dir / "trial_0000"
    assert sorted(retry.intermediate_values) == [0, 1, 2, 3]  # the original's pruning reports, then its own
    assert not (killed_dir / "trial_0001").exists()
    resumed = json.loads((killed_dir / "trial_0000" / "results.json").read_text())
    assert resumed["status"] == "completed" and resumed["resumed_from_epoch"] == 2 and resumed["epochs_run"] == EPOCHS
    report = (killed_dir / "report.md").read_text()
    assert "resumed" in report

    # the same trial never killed: same seed, same sampled learning rate, another study folder
    plain_dir = tmp_path / "plain" / "study"
    plain_source = write_sweep(tmp_path / "plain", BASE)
    plain_log = tmp_path / "plain.log"
    finished(start_sweep(plain_source, plain_dir, plain_log), plain_log)
    plain = json.loads((plain_dir / "trial_0000" / "results.json").read_text())
    assert plain["hparams"]["optimizer.lr"] == resumed["hparams"]["optimizer.lr"]
    assert plain["resumed_from_epoch"] is None
    for key in ("test_acc", "test_loss", "best_val_acc", "best_val_loss", "best_epoch"):
        assert resumed[key] == plain[key], key
    for mine, theirs in zip(resumed["history"], plain["history"], strict=True):
        assert {k: v for k, v in mine.items() if k != "epoch_s"} == {k: v for k, v in theirs.items() if k != "epoch_s"}
    assert retry.value == trials_of(plain_dir)[0].value
