"""A study in a real PostgreSQL server, shared by two workers (``.ci/run`` starts the server).

Set SWEEPLAB_TEST_POSTGRES_URL (``postgresql+psycopg2://user:pw@127.0.0.1:PORT/DB``) to run
it; without it the test is skipped, except on CI (``CI`` set), where that is an error.
"""

from __future__ import annotations

import uuid

import optuna
import pytest
import yaml
from optuna.trial import TrialState
from test_sweep import TRIAL_OVERRIDES, write_sweep_file

from conftest import run_cli


@pytest.fixture
def study_name(postgres_url):
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    if name in optuna.get_all_study_names(postgres_url):
        optuna.delete_study(study_name=name, storage=postgres_url)


def test_two_workers_share_one_postgres_study(tmp_path, postgres_url, study_name):
    source = write_sweep_file(tmp_path, n_trials=4, overrides=TRIAL_OVERRIDES + ["evaluate_test=false"])
    args = [
        f"sweep={source}",
        f"sweep.storage={postgres_url}",
        f"sweep.study_name={study_name}",
        f"sweep.dir={tmp_path / 'study'}",
    ]
    result = run_cli("sweep.py", *args, "sweep.workers=2", cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-1000:] + result.stderr[-3000:]
    study = optuna.load_study(study_name=study_name, storage=postgres_url)
    finished = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert len(finished) == 4 and len(study.trials) == 4
    assert len({t.user_attrs["dir"] for t in finished}) == 4
    assert len({t.user_attrs["worker"] for t in finished}) == 2  # both workers ran trials of the one study
    assert postgres_url.split("@")[0].split(":")[-1] not in (tmp_path / "study" / "report.md").read_text()  # password
    best = yaml.safe_load((tmp_path / "study" / "best.yaml").read_text())
    assert best["model"]["dropout"] == study.best_trial.params["model.dropout"]
