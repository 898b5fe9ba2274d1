"""sweep.trial_timeout_min: a trial past its limit is stopped, recorded as timed out, and the study goes on."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import yaml
from optuna.trial import TrialState

from conftest import FAKE_FAST
from sweeplab.cli.sweep import run as sweep_command

LIMIT_MIN = 0.02  # 1.2 s
# a slow-ish trial: up to 200 epochs of 2,048 images in batches of 8 (about a second an epoch here, often more)
SLOW = [o for o in FAKE_FAST if not o.startswith(("trainer.max_epochs", "data.num_samples", "data.batch_size"))] + [
    "model=mlp",
    "data.num_samples=2048",
    "data.batch_size=8",
    "trainer.max_epochs=200",
    "evaluate_test=false",
    "early_stopping.patience=1000",
]


def test_a_trial_past_its_time_limit_is_stopped_recorded_as_timed_out_and_the_study_goes_on(tmp_path):
    source = tmp_path / "slow.yaml"
    source.write_text(
        yaml.safe_dump(
            {
                "overrides": SLOW,
                "n_trials": 2,
                "sampler": {"name": "random", "seed": 0},
                "pruner": {"name": "none"},
                "space": {"optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}},
            }
        )
    )
    study_dir = tmp_path / "study"
    assert sweep_command([f"sweep={source}", f"sweep.dir={study_dir}", f"sweep.trial_timeout_min={LIMIT_MIN}"]) == 0

    trials = optuna.load_study(study_name="slow", storage=f"sqlite:///{study_dir / 'study.db'}").get_trials()
    assert [t.state for t in trials] == [TrialState.PRUNED, TrialState.PRUNED]  # both stopped, one after the other
    for trial in trials:
        assert trial.user_attrs["status"] == "timed_out" and "timed out" in trial.user_attrs["error"]
        results = json.loads((Path(trial.user_attrs["dir"]) / "results.json").read_text())
        assert results["status"] == "timed_out" and "sweep.trial_timeout_min" in results["error"]
        assert results["epochs_run"] < 200
        # stopped at the batch that crossed the limit: training took the limit plus at most about one epoch
        spent = sum(row["epoch_s"] for row in results["history"])
        longest = max((row["epoch_s"] for row in results["history"]), default=0.0)
        assert spent <= LIMIT_MIN * 60 + longest + 1.0
        assert not (Path(trial.user_attrs["dir"]) / "error.txt").exists()  # stopped on purpose: no failure
    report = (study_dir / "report.md").read_text()
    assert "- timed out: trials 0, 1 (sweep.trial_timeout_min)" in report
