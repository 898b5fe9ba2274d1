"""sweep.warm_start: earlier results seed a new study, count toward n_trials, and TPE proposes from them at once."""

from __future__ import annotations

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from conftest import FAKE_FAST
from sweeplab.cli.sweep import run as sweep_command
from sweeplab.sweeps.settings import load_settings
from sweeplab.sweeps.space import SearchSpace
from sweeplab.sweeps.study import build_sampler
from sweeplab.sweeps.warm_start import IMPORTED_FROM, as_trial

OVERRIDES = [o for o in FAKE_FAST if not o.startswith("trainer.max_epochs")] + [
    "model=mlp",
    "trainer.max_epochs=1",
    "evaluate_test=false",
    "data.noise=4.0",
]
SPACE = {
    "optimizer.lr": {"type": "float", "low": 1e-4, "high": 0.1, "log": True},
    "model.dropout": {"type": "float", "low": 0.0, "high": 0.5},
}


def write_sweep(path, sampler: dict, space: dict = SPACE):
    path.write_text(
        yaml.safe_dump({"overrides": OVERRIDES, "space": space, "sampler": sampler, "pruner": {"name": "none"}})
    )
    return path


def trials_of(study_dir, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{study_dir / 'study.db'}").get_trials()


def test_a_warm_start_imports_a_finished_study_counts_it_toward_n_trials_and_tpe_uses_it(tmp_path):
    first = write_sweep(tmp_path / "first.yaml", {"name": "random", "seed": 0})
    assert sweep_command([f"sweep={first}", f"sweep.dir={tmp_path / 'first'}", "sweep.n_trials=6"]) == 0
    earlier = trials_of(tmp_path / "first", "first")
    assert [t.state for t in earlier] == [TrialState.COMPLETE] * 6

    tpe = {"name": "tpe", "seed": 3, "n_startup_trials": 5}
    second = write_sweep(tmp_path / "second.yaml", tpe)
    argv = [
        f"sweep={second}",
        f"sweep.dir={tmp_path / 'second'}",
        "sweep.n_trials=8",
        f"sweep.warm_start={tmp_path / 'first'}",
    ]
    assert sweep_command(argv) == 0
    trials = trials_of(tmp_path / "second", "second")
    imported, new = trials[:6], trials[6:]
    assert len(new) == 2 and all(t.state == TrialState.COMPLETE for t in trials)  # 6 imported + 2 trained = 8
    assert [(t.params, t.value) for t in imported] == [(t.params, t.value) for t in earlier]
    assert all(IMPORTED_FROM in t.user_attrs and "dir" not in t.user_attrs for t in imported)
    assert all((tmp_path / "second" / f"trial_{t.number:04d}").is_dir() for t in new)
    assert not (tmp_path / "second" / "trial_0000").exists()  # the imported ones trained nothing here
    report = (tmp_path / "second" / "report.md").read_text()
    assert f"- warm start: 6 of 6 earlier results imported from `{tmp_path / 'first'}`" in report

    # TPE's first new proposal comes from its model of the 6 imported trials (6 >= n_startup_trials), not at random:
    # the same sampler, seeded as the worker seeds it, proposes the same parameters from them, and a study without
    # them (random start-up) would propose others
    settings = load_settings(second, [])
    replay = optuna.create_study(direction="maximize", sampler=build_sampler(settings.sampler, (0, 6)))
    for trial in imported:
        replay.add_trial(trial)
    assert settings.space.sample(replay.ask()) == new[0].params
    startup = optuna.create_study(direction="maximize", sampler=build_sampler(settings.sampler, (0, 0)))
    assert settings.space.sample(startup.ask()) != new[0].params

    # running the same command again imports nothing more
    assert sweep_command(argv) == 0
    assert len(trials_of(tmp_path / "second", "second")) == 8


def test_an_earlier_result_outside_the_space_is_left_out_and_missing_keys_stay_out():
    space = SearchSpace.from_config(
        {
            "optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-2},
            "data.batch_size": {"type": "categorical", "choices": [32, 64]},
        }
    )
    assert as_trial(space, {"optimizer.lr": 0.5, "data.batch_size": 32}, [0.9], "x") is None  # lr out of range
    assert as_trial(space, {"optimizer.lr": 0.005, "data.batch_size": 16}, [0.9], "x") is None  # not a choice
    assert as_trial(space, {"model.dropout": 0.1}, [0.9], "x") is None  # no key of the space
    kept = as_trial(space, {"optimizer.lr": 0.005, "data.batch_size": 64, "seed": 1}, [0.9], "x")
    assert kept.params == {"optimizer.lr": 0.005, "data.batch_size": 64} and kept.value == 0.9
    assert as_trial(space, {"optimizer.lr": 0.005}, [0.9], "x").params == {"optimizer.lr": 0.005}


def test_a_warm_start_that_names_nothing_readable_is_refused_in_one_line(tmp_path, capsys):
    second = write_sweep(tmp_path / "second.yaml", {"name": "tpe", "seed": 0})
    with pytest.raises(SystemExit) as stop:
        sweep_command(
            [f"sweep={second}", f"sweep.dir={tmp_path / 'second'}", f"sweep.warm_start={tmp_path / 'nothing'}"]
        )
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1
    assert err[0].startswith(f"error: sweep.warm_start='{tmp_path / 'nothing'}' is invalid: must be a sweep folder")
    assert not (tmp_path / "second" / "study.db").exists()  # refused before the study was opened
