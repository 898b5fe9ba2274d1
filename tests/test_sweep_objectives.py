"""Trade-off sweeps: several objectives (a Pareto front), samplers by name, constraints, trial plots as artifacts."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from conftest import FAKE_FAST
from sweeplab.cli.sweep import run as sweep_command
from sweeplab.runs.results import RunResults
from sweeplab.sweeps.artifacts import ARTIFACT_DIR, upload_plots
from sweeplab.sweeps.objectives import parse_constraint, run_metric
from sweeplab.sweeps.plan import plan_sweep
from sweeplab.sweeps.settings import SAMPLER_CLASSES, load_settings
from sweeplab.sweeps.space import SearchSpace
from sweeplab.sweeps.study import build_sampler, open_storage, open_study

OVERRIDES = [o for o in FAKE_FAST if not o.startswith("logger=")] + ["data.noise=4.0", "model=mlp"]
# the MLP's first layer has 8 or 64 units: 10,090 or 65,250 parameters on 28x28 fake images of 10 classes
SPACE = {
    "optimizer.lr": {"type": "float", "low": 1e-3, "high": 0.1, "log": True},
    "model.hidden.0": {"type": "categorical", "choices": [8, 64]},
}
NUM_PARAMS = {8: 10_090, 64: 65_250}
TWO_OBJECTIVES = ["sweep.metric=[val_acc,num_params]", "sweep.direction=[maximize,minimize]"]


def write_sweep_file(folder: Path, **settings) -> Path:
    content = {
        "overrides": OVERRIDES,
        "space": SPACE,
        "n_trials": 4,
        "sampler": {"name": "tpe", "seed": 0, "n_startup_trials": 2},
        **settings,
    }
    path = folder / "tradeoff.yaml"
    path.write_text(yaml.safe_dump(content, sort_keys=False))
    return path


def load(study_dir: Path) -> optuna.Study:
    return optuna.load_study(study_name="tradeoff", storage=open_storage(f"sqlite:///{study_dir / 'study.db'}", 60))


def refused(capsys, *argv: str) -> str:
    """Run the sweep command in this process: exit status 2 and one line on stderr, which is returned."""
    with pytest.raises(SystemExit) as stop:
        sweep_command(list(argv))
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    return err


def non_dominated(trials: list, directions: list[str]) -> set[int]:
    """The Pareto front, computed here from the values."""
    signs = [1 if d == "maximize" else -1 for d in directions]

    def beats(a, b) -> bool:
        pairs = [(s * x, s * y) for s, x, y in zip(signs, a.values, b.values, strict=True)]
        return all(x >= y for x, y in pairs) and any(x > y for x, y in pairs)

    return {t.number for t in trials if not any(beats(other, t) for other in trials if other is not t)}


# --- a two-objective study ------------------------------------------------------------------
@pytest.fixture(scope="module")
def tradeoff(tmp_path_factory):
    """4 trials trading val_acc against num_params, run by the sweep command in this process."""
    folder = tmp_path_factory.mktemp("tradeoff")
    source, study_dir = write_sweep_file(folder), folder / "study"
    argv = [
        f"sweep={source}",
        f"sweep.dir={study_dir}",
        *TWO_OBJECTIVES,
        "sweep.trial_plots=all",
    ]  # every trial's plots
    assert sweep_command(argv) == 0
    return source, study_dir, argv


def test_a_two_objective_study_scores_each_trial_by_both_and_prunes_none(tradeoff):
    _, study_dir, _ = tradeoff
    study = load(study_dir)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert study.metric_names == ["val_acc", "num_params"]
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 4
    for trial in trials:
        results = json.loads((Path(trial.user_attrs["dir"]) / "results.json").read_text())
        assert trial.values == [max(row["val_acc"] for row in results["history"]), results["num_params"]]
        assert results["num_params"] == NUM_PARAMS[trial.params["model.hidden.0"]] == trial.user_attrs["num_params"]
        assert trial.intermediate_values == {}  # no pruner report: Optuna's pruners follow one objective
        assert results["epochs_run"] == 2
    assert "pruning is off: Optuna's pruners follow one objective" in (study_dir / "sweep.log").read_text()


def test_the_report_lists_the_pareto_front_and_writes_one_config_per_front_trial(tradeoff):
    _, study_dir, _ = tradeoff
    study = load(study_dir)
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    front = {t.number for t in study.best_trials}
    assert front == non_dominated(trials, ["maximize", "minimize"]) and front
    report = (study_dir / "report.md").read_text()
    assert "- objectives: maximize `val_acc`, minimize `num_params` (holdout)" in report
    assert "pruning off" in report
    section = report.split("## Pareto front")[1].split("\n## ")[0]
    rows = [[cell.strip() for cell in line.split("|")[1:-1]] for line in section.splitlines() if line.startswith("|")]
    rows = [row for row in rows if row[0].isdigit()]
    assert {int(row[0]) for row in rows} == front
    by_number = {t.number: t for t in trials}
    for row in rows:
        trial = by_number[int(row[0])]
        assert row[1].strip() == f"{trial.values[0]:.4f}" and int(row[2]) == trial.values[1]
        assert f"pareto/trial_{trial.number:04d}.yaml" in row[-2] and trial.user_attrs["dir"] in row[-1]
    assert f"python train.py --config-path {study_dir / 'pareto'} --config-name trial_" in section
    assert (study_dir / "pareto_front.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (study_dir / "best.yaml").exists()
    configs = sorted((study_dir / "pareto").glob("*.yaml"))
    assert [p.name for p in configs] == [f"trial_{n:04d}.yaml" for n in sorted(front)]
    for path in configs:
        trial = by_number[int(path.stem.split("_")[1])]
        text = path.read_text()
        assert (
            f"# Train it again: python train.py --config-path {study_dir / 'pareto'} --config-name {path.stem}" in text
        )
        config = yaml.safe_load(text)
        assert config["optimizer"]["lr"] == trial.params["optimizer.lr"]
        assert config["model"]["hidden"][0] == trial.params["model.hidden.0"]
    with open(study_dir / "trials.csv") as handle:
        table = list(csv.DictReader(handle))
    assert {int(row["number"]) for row in table if row["pareto"] == "yes"} == front
    assert [float(row["num_params"]) for row in table] == [by_number[int(row["number"])].values[1] for row in table]


def test_each_trials_plots_are_optuna_artifacts(tradeoff):
    _, study_dir, _ = tradeoff
    study = load(study_dir)
    for trial in study.get_trials(states=(TrialState.COMPLETE,)):
        metas = optuna.artifacts.get_all_artifact_meta(trial, storage=study._storage)
        plots = sorted(p.name for p in Path(trial.user_attrs["dir"]).glob("*.png"))
        assert "curves.png" in plots and sorted(m.filename for m in metas) == plots
        for meta in metas:
            stored = study_dir / ARTIFACT_DIR / meta.artifact_id
            assert stored.read_bytes() == (Path(trial.user_attrs["dir"]) / meta.filename).read_bytes()


def test_a_stored_study_refuses_other_objectives_or_constraints(tradeoff, capsys):
    source, study_dir, argv = tradeoff
    before = len(load(study_dir).trials)
    err = refused(capsys, f"sweep={source}", f"sweep.dir={study_dir}")  # the single objective val_acc
    assert "sweep.direction='maximize'" in err and "was created to [maximize,minimize]" in err
    err = refused(
        capsys,
        f"sweep={source}",
        f"sweep.dir={study_dir}",
        "sweep.metric=[val_acc,epoch_s]",
        "sweep.direction=[maximize,minimize]",
    )
    assert "sweep.metric=['val_acc', 'epoch_s']" in err and "created for [val_acc,num_params]" in err
    err = refused(capsys, *argv, "sweep.constraints=[num_params<=20000]", "sweep.report_only=true")
    assert "sweep.constraints=['num_params<=20000']" in err and "judged its trials by no constraints" in err
    assert len(load(study_dir).trials) == before


# --- GP with a constraint ----------------------------------------------------------------------
def test_gp_runs_a_study_whose_best_trial_meets_the_constraint(tmp_path):
    source, study_dir = write_sweep_file(tmp_path), tmp_path / "study"
    argv = [
        f"sweep={source}",
        f"sweep.dir={study_dir}",
        "sweep.sampler.name=gp",
        "sweep.sampler.n_startup_trials=2",
        "sweep.constraints=[num_params<=20000]",
    ]
    settings = load_settings(source, argv[1:])
    # the first trial: the large model at a good learning rate, the most accurate and infeasible
    open_study(settings, plan_sweep(settings).storage_url).enqueue_trial({"optimizer.lr": 0.03, "model.hidden.0": 64})
    assert sweep_command(argv) == 0
    trials = load(study_dir).get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 4 and trials[0].params["model.hidden.0"] == 64
    for trial in trials:
        num_params = NUM_PARAMS[trial.params["model.hidden.0"]]
        assert trial.constraints == {"num_params<=20000": num_params - 20_000}
    feasible = [t for t in trials if t.params["model.hidden.0"] == 8]
    assert feasible and len(feasible) < len(trials)
    best = max(feasible, key=lambda t: t.value)
    assert trials[0].value > best.value  # so the best trial is chosen among the feasible ones
    report = (study_dir / "report.md").read_text()
    assert "sampler gp" in report
    assert f"- constraints: `num_params<=20000`: {len(feasible)} of 4 complete trials feasible" in report
    assert f"Trial {best.number}: val_acc = {best.value:.4f}" in report
    top = [
        line.split("|")
        for line in report.split("## Top")[1].split("\n## ")[0].splitlines()
        if line.startswith("|") and line.split("|")[2].strip().isdigit()
    ]
    marks = {int(cells[2]): cells[4].strip() for cells in top}
    assert marks == {t.number: "yes" if t in feasible else "no: num_params<=20000" for t in trials}
    assert yaml.safe_load((study_dir / "best.yaml").read_text())["model"]["hidden"][0] == 8


# --- refusals ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv, expected",
    [
        (
            ["sweep.metric=[val_acc,num_params]"],
            "sweep.direction='maximize' is invalid: must be a list of 2 directions",
        ),
        (
            ["sweep.metric=[val_acc,num_params]", "sweep.direction=[maximize]"],
            "must be a list of 2 directions, one per "
            "objective of sweep.metric=[val_acc,num_params]: [maximize,minimize]",
        ),
        (["sweep.metric=[val_acc,params]", "sweep.direction=[maximize,minimize]"], "sweep.metric[1]='params'"),
        (["sweep.metric=[val_acc,val_acc]", "sweep.direction=[maximize,maximize]"], "names val_acc twice"),
        (["sweep.metric=[val_acc,num_params]", "sweep.direction=[maximize,up]"], "sweep.direction[1]='up'"),
        (
            ["sweep.metric=[val_acc,num_params]", "sweep.direction=[maximize,maximize]"],
            "sweep.direction[1]='maximize' is invalid: must be minimize for sweep.metric[1]=num_params",
        ),
        (["sweep.metric=[val_acc]", "sweep.direction=[maximize]"], "sweep.metric=['val_acc']"),
        (["sweep.direction=[maximize,minimize]"], "sweep.metric=val_acc is one objective"),
        (["sweep.metric=num_params", "sweep.direction=minimize"], "a list of 2 or more objectives"),
        (
            [*TWO_OBJECTIVES, "cv.folds=2"],
            "cv.folds=2 is invalid: cross-validates each trial, scored by one fold "
            "metric (its folds' mean); a trade-off study (sweep.metric a list) needs cv.folds=0",
        ),
        (["sweep.constraints=[num_params<=5]", "cv.folds=2"], "sweep.constraints needs cv.folds=0"),
        (
            ["sweep.constraints=[num_params=<5]"],
            "sweep.constraints[0]='num_params=<5' is invalid: must be NAME OP NUMBER",
        ),
        (["sweep.constraints=[params<=5]"], "params is no metric a trial reports"),
        (["sweep.constraints=[num_params<=lots]"], "sweep.constraints[0]='num_params<=lots'"),
        (["sweep.constraints=[num_params<=5,num_params<=5]"], "lists num_params<=5 twice"),
        (["sweep.constraints={a: 1}"], "sweep.constraints={'a': 1}"),
        (["sweep.constraints=[test_acc>=0.9]", "evaluate_test=false"], "needs test_acc"),
        (
            ["sweep.sampler.name=bayes"],
            "sweep.sampler.name='bayes' is invalid: must be one of tpe, random, gp, cmaes, nsgaii",
        ),
        ([*TWO_OBJECTIVES, "sweep.sampler.name=cmaes"], "CmaEsSampler optimizes one objective"),
        (
            ["sweep.sampler.name=cmaes", "sweep.constraints=[num_params<=5]"],
            "CmaEsSampler does not model sweep.constraints",
        ),
        (
            ["sweep.sampler.name=gp", "sweep.sampler.n_startup=3"],
            "sweep.sampler: GPSampler refuses its arguments (seed=0, n_startup=3)",
        ),
    ],
)
def test_bad_objectives_constraints_and_sampler_combinations_are_refused_in_one_line(tmp_path, capsys, argv, expected):
    err = refused(capsys, f"sweep={write_sweep_file(tmp_path)}", f"sweep.dir={tmp_path / 'study'}", *argv)
    assert expected in err, err
    assert not (tmp_path / "study").exists()


def test_cmaes_is_refused_for_a_space_of_only_categorical_parameters(tmp_path, capsys):
    source = write_sweep_file(tmp_path, space={"model.hidden.0": SPACE["model.hidden.0"]})
    err = refused(capsys, f"sweep={source}", f"sweep.dir={tmp_path / 'study'}", "sweep.sampler.name=cmaes")
    assert "sweep.sampler.name='cmaes' is invalid: CmaEsSampler searches float and int parameters" in err
    assert "this space has none" in err


# --- the pieces ----------------------------------------------------------------------------------
def test_each_sampler_runs_a_study_of_the_search_space():
    space = SearchSpace.from_config({**SPACE, "model.dropout": {"type": "float", "low": 0.0, "high": 0.5}})
    for name, options, directions in [
        ("gp", {"n_startup_trials": 2}, ["maximize"]),
        ("gp", {"n_startup_trials": 2}, ["maximize", "minimize"]),
        ("cmaes", {"n_startup_trials": 2}, ["maximize"]),
        ("nsgaii", {"population_size": 3}, ["maximize", "minimize"]),
    ]:
        sampler = build_sampler({"name": name, "seed": 0, **options})
        assert type(sampler).__name__ == SAMPLER_CLASSES[name]
        study = optuna.create_study(directions=directions, sampler=sampler)

        def objective(trial, directions=directions):
            sample = space.sample(trial)
            score = -abs(sample["optimizer.lr"] - 0.01) - sample["model.dropout"]
            return [score, NUM_PARAMS[sample["model.hidden.0"]]][: len(directions)]

        study.optimize(objective, n_trials=7)
        assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 7, name


def test_an_upload_that_fails_is_one_log_line_and_the_trial_goes_on(tmp_path, caplog):
    trial_dir, study_dir = tmp_path / "trial_0000", tmp_path / "study"
    trial_dir.mkdir()
    (trial_dir / "curves.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    study_dir.mkdir()
    (study_dir / ARTIFACT_DIR).write_text("a file where the store's folder goes")
    study = optuna.create_study()
    with caplog.at_level(logging.WARNING, logger="sweeplab.sweeps.artifacts"):
        assert upload_plots(study.ask(), trial_dir, study_dir) == 0
    lines = [r.getMessage() for r in caplog.records if r.name == "sweeplab.sweeps.artifacts"]
    assert len(lines) == 1 and "0 plots uploaded as Optuna artifacts, then FileExistsError" in lines[0]
    assert upload_plots(study.ask(), trial_dir, tmp_path / "other") == 1


def test_objective_and_constraint_values_of_a_run():
    history = [
        {"epoch": 1, "val_acc": 0.5, "val_loss": 1.0, "epoch_s": 2.0},
        {"epoch": 2, "val_acc": 0.7, "val_loss": 1.2, "epoch_s": 1.0},
    ]
    results = RunResults(status="completed", history=history, num_params=1234, test_acc=0.6)
    assert [run_metric(results, n) for n in ("val_acc", "val_loss", "epoch_s", "num_params", "test_acc")] == [
        0.7,
        1.0,
        1.5,
        1234,
        0.6,
    ]
    assert run_metric(RunResults(status="completed"), "epoch_s") is None
    at_most, below, above = (parse_constraint(t, "c") for t in ("num_params<=1000", "epoch_s < 2", "test_acc>0.5"))
    assert (at_most.metric, at_most.op, at_most.bound, at_most.text) == ("num_params", "<=", 1000.0, "num_params<=1000")
    assert at_most.violation(1234) == 234 and at_most.holds(1000) and not at_most.holds(1001)
    assert below.text == "epoch_s<2" and below.holds(1.5) and not below.holds(2.0) and below.violation(2.0) > 0
    assert above.violation(0.6) == pytest.approx(-0.1) and not above.holds(0.5)
