"""Optuna sweeps: search space, settings, pruning, resuming, workers, reports and best.yaml."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from conftest import FAKE_FAST, compose_config, run_cli
from sweeplab.cli.sweep import run as sweep_command
from sweeplab.errors import ConfigError
from sweeplab.runs.fit import fit
from sweeplab.sweeps.objective import SurplusTrial, TrialObjective
from sweeplab.sweeps.plan import plan_sweep
from sweeplab.sweeps.pruning import EpochPruningCallback
from sweeplab.sweeps.settings import load_settings
from sweeplab.sweeps.space import SearchSpace, override
from sweeplab.sweeps.study import FINISHED, open_storage
from sweeplab.sweeps.workers import StopAfterFailures

# noisy synthetic data, so that hyperparameters make a difference within two epochs
TRIAL_OVERRIDES = [o for o in FAKE_FAST if not o.startswith("logger=")] + ["data.noise=4.0", "model=mlp"]
SPACE = {
    "optimizer": {"type": "categorical", "choices": ["sgd", "adam"]},
    "optimizer.lr": {"type": "float", "low": 1e-4, "high": 0.1, "log": True},
    "optimizer.momentum": {"type": "float", "low": 0.5, "high": 0.95, "when": {"optimizer": "sgd"}},
    "model.dropout": {"type": "float", "low": 0.0, "high": 0.5},
}
PNGS = ("optimization_history.png", "parallel_coordinate.png", "param_importances.png", "intermediate_values.png")


def write_sweep_file(folder: Path, **settings) -> Path:
    content = {
        "overrides": TRIAL_OVERRIDES,
        "space": SPACE,
        "n_trials": 6,
        "pruner": {"name": "median", "n_startup_trials": 2},
        **settings,
    }
    path = folder / "fake_sweep.yaml"
    path.write_text(yaml.safe_dump(content, sort_keys=False))
    return path


def finished(storage_url: str, study_name: str = "fake_sweep") -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name=study_name, storage=open_storage(storage_url, heartbeat_s=60))
    return study.get_trials(states=FINISHED)


def cells(line: str) -> list[str]:
    """The cells of a Markdown table row (sweeplab.reports.table_render pads them to the column's width)."""
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def refused(capsys, *argv: str) -> str:
    """Run the sweep command in this process; it must exit with status 2. Returns stderr."""
    with pytest.raises(SystemExit) as stop:
        sweep_command(list(argv))
    assert stop.value.code == 2
    return capsys.readouterr().err


# --- the search space -------------------------------------------------------------------
def test_conditional_parameters_are_sampled_only_when_their_condition_holds():
    space = SearchSpace.from_config(SPACE)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    samples = [space.sample(study.ask()) for _ in range(30)]
    assert {s["optimizer"] for s in samples} == {"sgd", "adam"}
    for sample in samples:
        assert ("optimizer.momentum" in sample) == (sample["optimizer"] == "sgd")
        assert 1e-4 <= sample["optimizer.lr"] <= 0.1
        if "optimizer.momentum" in sample:
            assert 0.5 <= sample["optimizer.momentum"] <= 0.95


def test_int_and_log_parameters_follow_their_bounds_and_step():
    space = SearchSpace.from_config({"data.batch_size": {"type": "int", "low": 16, "high": 64, "step": 16}})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    values = {space.sample(study.ask())["data.batch_size"] for _ in range(40)}
    assert values == {16, 32, 48, 64}


def test_overrides_keep_every_digit_of_a_float():
    value = 0.0012345678901234567
    text = override("optimizer.lr", value)
    assert float(text.split("=", 1)[1]) == value
    assert compose_config([text]).optimizer.lr == value
    assert override("scheduler", "none") == "scheduler=none"
    assert override("x", True) == "x=true" and override("x", None) == "x=null"


@pytest.mark.parametrize(
    "space, key",
    [
        ({"optimizer.lr": {"type": "loguniform", "low": 1, "high": 2}}, "sweep.space.optimizer.lr.type"),
        # Optuna's distributions check the range as a whole: the entry is named, with Optuna's reason
        ({"optimizer.lr": {"type": "float", "low": 0.1, "high": 0.01}}, "sweep.space.optimizer.lr"),
        ({"optimizer.lr": {"type": "float", "low": 0, "high": 1, "log": True}}, "sweep.space.optimizer.lr"),
        ({"data.batch_size": {"type": "int", "low": 1.5, "high": 8}}, "sweep.space.data.batch_size.low"),
        ({"optimizer": {"type": "categorical", "choices": []}}, "sweep.space.optimizer.choices"),
        ({"optimizer.lr": {"type": "float", "low": 0.1, "high": 1, "bins": 3}}, "sweep.space.optimizer.lr.bins"),
        (
            {"optimizer.momentum": {"type": "float", "low": 0.1, "high": 0.9, "when": {"optimizer": "sgd"}}},
            "sweep.space.optimizer.momentum.when.optimizer",
        ),
    ],
)
def test_a_bad_search_space_entry_is_refused_naming_its_key(space, key):
    with pytest.raises(ConfigError) as error:
        SearchSpace.from_config(space)
    assert error.value.key == key


# --- settings and refusals ----------------------------------------------------------------
def test_command_line_settings_override_the_sweep_file(tmp_path):
    source = write_sweep_file(tmp_path)
    settings = load_settings(
        source,
        [
            "sweep.n_trials=9",
            "sweep.space.optimizer.lr.high=0.5",
            "sweep.pruner.name=hyperband",
            "sweep.storage=postgresql://u:p@h/db",
        ],
    )
    assert settings.n_trials == 9 and settings.study_name == "fake_sweep"
    assert settings.space.params[1].distribution.high == 0.5
    assert settings.pruner == {"name": "hyperband"}  # another pruner starts from its own defaults
    assert settings.sampler == {"name": "tpe", "seed": 0} and settings.metric == "val_acc"
    assert settings.storage == "postgresql://u:p@h/db"


def test_a_missing_or_unknown_sweep_name_exits_2_naming_the_key(tmp_path):
    missing = run_cli("sweep.py", "trainer.max_epochs=1", cwd=tmp_path)
    assert missing.returncode == 2, missing.stderr
    assert "sweep=None" in missing.stderr and "mnist_lenet" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    unknown = run_cli("sweep.py", "sweep=no_such_sweep", cwd=tmp_path)
    assert unknown.returncode == 2 and "sweep='no_such_sweep'" in unknown.stderr
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize(
    "settings, argv, expected",
    [
        ({"space": {"optimizer.lr": {"type": "gaussian", "low": 0.1, "high": 1}}}, [], "sweep.space.optimizer.lr.type"),
        ({"n_trial": 3}, [], "sweep.n_trial"),
        ({}, ["sweep.metric=accuracy"], "sweep.metric='accuracy'"),
        ({}, ["sweep.direction=maximize", "sweep.metric=val_loss"], "sweep.direction='maximize'"),
        ({}, ["sweep.pruner.name=sometimes"], "sweep.pruner.name='sometimes'"),
        ({}, ["sweep.workers=0"], "sweep.workers=0"),
        ({"space": {"model.dropout": {"type": "float", "low": 0.0, "high": 1.0}}}, [], "model.dropout=1.0"),
        (
            {"space": {"optimizer.momentum": {"type": "float", "low": 0.1, "high": 0.9}}},
            [],
            "sweep.space.optimizer.momentum",
        ),
        ({}, ["trainer.max_epoch=2"], "trainer.max_epoch"),
        (
            {},
            ["sweep.objective=cv"],
            "sweep.objective='cv' is invalid: no longer a setting; a sweep cross-validates "
            "each trial when cv.folds >= 2",
        ),
        (
            {"metric": ["val_acc", "num_params"], "direction": ["maximize", "minimize"]},
            ["cv.folds=2"],
            "cv.folds=2 is invalid: cross-validates each trial, scored by one fold metric",
        ),
        ({}, ["sweep.report_only=true"], "run the sweep before asking for its report"),
    ],
)
def test_bad_sweep_input_is_refused_with_exit_2_before_any_trial(tmp_path, capsys, settings, argv, expected):
    source = write_sweep_file(tmp_path, **settings)
    err = refused(capsys, f"sweep={source}", f"sweep.dir={tmp_path / 'study'}", *argv)
    assert expected in err, err
    assert not (tmp_path / "study").exists()


def test_an_unreadable_sweep_file_is_refused(tmp_path, capsys):
    source = tmp_path / "broken.yaml"
    source.write_text("space: [unclosed\n")
    err = refused(capsys, f"sweep={source}")
    assert "broken.yaml" in err


# --- per-epoch pruning, the objective, surplus trials -------------------------------------------
def test_pruning_reports_each_training_epoch_once_and_not_the_final_validation(tmp_path):
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    trial = study.ask()
    cfg = compose_config(TRIAL_OVERRIDES + ["trainer.max_epochs=3", "early_stopping.patience=10"])
    results = fit(cfg, tmp_path, callbacks=[EpochPruningCallback(trial, monitor="val_acc")])
    reported = study.trials[0].intermediate_values
    assert sorted(reported) == [0, 1, 2]  # 0-based epochs; fit's last validation of the best checkpoint is not one
    assert [reported[step] for step in sorted(reported)] == pytest.approx([row["val_acc"] for row in results.history])


def test_a_pruned_trial_is_a_run_folder_marked_pruned(tmp_path):
    source = write_sweep_file(tmp_path, overrides=TRIAL_OVERRIDES + ["trainer.max_epochs=3"])
    plan = plan_sweep(load_settings(source, [f"sweep.dir={tmp_path / 'study'}"]))
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=1.5))  # prunes all
    study.optimize(TrialObjective(plan), n_trials=1)
    trial = study.trials[0]
    assert trial.state == TrialState.PRUNED and list(trial.intermediate_values) == [0]
    trial_dir = plan.trial_dir(0)
    results = json.loads((trial_dir / "results.json").read_text())
    assert results["status"] == "pruned" and "after epoch 1" in results["error"]
    assert not (trial_dir / "error.txt").exists()
    recorded = yaml.safe_load((trial_dir / ".hydra" / "overrides.yaml").read_text())
    assert recorded == trial.user_attrs["overrides"] and recorded[: len(TRIAL_OVERRIDES)] == TRIAL_OVERRIDES
    config = yaml.safe_load((trial_dir / ".hydra" / "config.yaml").read_text())
    assert config["optimizer"]["lr"] == trial.params["optimizer.lr"]
    assert config["model"]["dropout"] == trial.params["model.dropout"]


def test_a_trial_started_after_all_places_were_taken_stands_back(tmp_path):
    plan = plan_sweep(load_settings(write_sweep_file(tmp_path), ["sweep.n_trials=1", f"sweep.dir={tmp_path}"]))
    study = optuna.create_study()
    study.ask()  # another worker's trial, still running: it holds the only place
    study.optimize(TrialObjective(plan), n_trials=3, catch=(SurplusTrial,))
    late = study.trials[1]
    assert len(study.trials) == 2  # the surplus trial stopped this worker
    assert late.state == TrialState.FAIL and late.user_attrs["surplus"] is True
    assert not list(tmp_path.glob("trial_*"))


def test_a_worker_stops_after_failures_in_a_row():
    values = iter([float("nan"), 0.5, float("nan"), float("nan"), float("nan"), 0.7])
    study = optuna.create_study()
    study.optimize(lambda trial: next(values), n_trials=6, callbacks=[StopAfterFailures(limit=3)])
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.COMPLETE] + [TrialState.FAIL] * 3


# --- a whole study: report, resume, best.yaml ------------------------------------------------
@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A 6-trial study on synthetic data, run by the sweep command in this process."""
    folder = tmp_path_factory.mktemp("sweep")
    source = write_sweep_file(folder)
    study_dir = folder / "study"
    argv = [f"sweep={source}", f"sweep.dir={study_dir}"]
    assert sweep_command(argv) == 0
    return source, study_dir, argv


def test_a_study_ends_with_n_trials_finished_each_a_run_folder(study):
    _, study_dir, _ = study
    trials = finished(f"sqlite:///{study_dir / 'study.db'}")
    assert len(trials) == 6
    assert sorted(t.user_attrs["dir"] for t in trials) == sorted(str(p) for p in study_dir.glob("trial_*"))
    for trial in trials:
        trial_dir = Path(trial.user_attrs["dir"])
        results = json.loads((trial_dir / "results.json").read_text())
        assert results["status"] == ("completed" if trial.state == TrialState.COMPLETE else "pruned")
        assert (trial_dir / ".hydra" / "config.yaml").is_file()
        record = json.loads((trial_dir / "run.json").read_text())
        assert record["parent"] == {
            "kind": "sweep",
            "dir": str(study_dir.resolve()),
            "index": trial.number,
            "study": "fake_sweep",
        }
        events = b"".join(path.read_bytes() for path in trial_dir.glob("events.out.tfevents.*"))
        assert b"_hparams_/session_start_info" in events and b"hp/best_val_acc" in events
        assert results["status"].encode() in events and b"failed" not in events  # HParams' status column
        for row in results["history"]:  # each epoch reported its val_acc to the pruner (step = epoch - 1)
            assert trial.intermediate_values[row["epoch"] - 1] == pytest.approx(row["val_acc"])
        if trial.state == TrialState.COMPLETE:
            assert trial.value == results["best_val_acc"] == max(row["val_acc"] for row in results["history"])


def test_the_report_files_describe_the_study(study):
    _, study_dir, _ = study
    trials = finished(f"sqlite:///{study_dir / 'study.db'}")
    complete = sorted((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: -t.value)
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    with open(study_dir / "trials.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["number"]) for row in rows] == sorted(t.number for t in trials)
    assert {row["state"] for row in rows} <= {"COMPLETE", "PRUNED"}
    assert {"val_acc", "optimizer", "optimizer.lr", "optimizer.momentum", "model.dropout"} <= set(rows[0])
    for row in rows:
        assert (row["optimizer.momentum"] != "") == (row["optimizer"] == "sgd")
    report = (study_dir / "report.md").read_text()
    assert f"{len(trials)} finished of 6 wanted: {len(complete)} complete, {len(pruned)} pruned, 0 failed" in report
    assert f"Trial {complete[0].number}: val_acc = {complete[0].value:.4f}" in report
    top_rows = [cells(line) for line in report.split("## Top")[1].splitlines() if line.startswith("|")]
    assert top_rows[0][:3] == ["rank", "trial", "val_acc"]
    assert [int(row[1]) for row in top_rows[2 : 2 + len(complete)]] == [t.number for t in complete]
    assert [row[2] for row in top_rows[2 : 2 + len(complete)]] == [f"{t.value:.4f}" for t in complete]
    assert "## Parameter importances" in report and "--config-name best" in report
    for name in PNGS:
        assert (study_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    best = yaml.safe_load((study_dir / "best.yaml").read_text())
    assert best["optimizer"]["lr"] == complete[0].params["optimizer.lr"]
    assert best["hydra"]["run"]["dir"].endswith("_mlp-fake_${unique:}")


def test_running_again_adds_no_trial_and_a_larger_n_trials_adds_the_difference(study):
    source, study_dir, argv = study
    url = f"sqlite:///{study_dir / 'study.db'}"
    assert sweep_command(argv) == 0
    assert len(finished(url)) == 6
    assert sweep_command([*argv, "sweep.n_trials=8"]) == 0
    trials = finished(url)
    assert len(trials) == 8 and sorted(t.number for t in trials) == list(range(8))
    assert len(list(study_dir.glob("trial_*"))) == 8
    (study_dir / "report.md").unlink()
    assert sweep_command([*argv, "sweep.n_trials=8", "sweep.report_only=true"]) == 0
    assert "8 finished of 8 wanted" in (study_dir / "report.md").read_text()


def test_best_yaml_trains_again_to_the_best_trials_value(study, tmp_path):
    _, study_dir, _ = study
    best = optuna.load_study(study_name="fake_sweep", storage=f"sqlite:///{study_dir / 'study.db'}").best_trial
    result = run_cli("train.py", "--config-path", str(study_dir), "--config-name", "best", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    run_dirs = [path.parent for path in (tmp_path / "outputs" / "runs").rglob("results.json")]
    assert len(run_dirs) == 1 and run_dirs[0].name.split("_")[1] == "mlp-fake"
    retrained = json.loads((run_dirs[0] / "results.json").read_text())
    assert retrained["best_val_acc"] == best.value


@pytest.mark.slow  # spawns two workers; tests/test_postgres.py runs two workers in the default suite
def test_two_workers_finish_exactly_n_trials_in_distinct_folders(tmp_path):
    source = write_sweep_file(tmp_path, n_trials=4, overrides=TRIAL_OVERRIDES + ["evaluate_test=false"])
    study_dir = tmp_path / "study"
    result = run_cli("sweep.py", f"sweep={source}", f"sweep.dir={study_dir}", "sweep.workers=2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    study = optuna.load_study(study_name="fake_sweep", storage=f"sqlite:///{study_dir / 'study.db'}")
    trials = study.get_trials(states=FINISHED)
    assert len(trials) == 4 and not study.get_trials(states=(TrialState.RUNNING,))
    folders = [t.user_attrs["dir"] for t in trials]
    assert len(set(folders)) == 4 and all((Path(f) / "results.json").is_file() for f in folders)
    assert "4 of 4 trials finished" in result.stdout


@pytest.mark.slow
def test_a_cross_validated_sweep_scores_each_trial_by_its_folds(tmp_path):
    source = write_sweep_file(tmp_path, n_trials=2, pruner={"name": "wilcoxon"})
    study_dir = tmp_path / "study"
    assert sweep_command([f"sweep={source}", f"sweep.dir={study_dir}", "cv.folds=2", "trainer.max_epochs=1"]) == 0
    trials = finished(f"sqlite:///{study_dir / 'study.db'}")
    assert len(trials) == 2
    for trial in trials:
        report = json.loads((Path(trial.user_attrs["dir"]) / "cv_report.json").read_text())
        assert trial.value == pytest.approx(report["summary"]["val_acc"]["mean"])
        record = json.loads((Path(trial.user_attrs["dir"]) / "run.json").read_text())
        assert record["parent"]["kind"] == "sweep" and record["parent"]["index"] == trial.number
