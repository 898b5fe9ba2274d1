"""Issue 29, part 1: one switch for cross-validation, a CV refit that tests its last weights, trial state in one
module (sweeplab.sweeps.trials), no import cycle in sweeplab.sweeps, and workers that create no surplus trial."""

from __future__ import annotations

import ast
import json
import threading
from pathlib import Path

import optuna
import pytest
import torch
import yaml
from optuna.trial import TrialState

from conftest import FAKE_FAST, compose_config
from sweeplab.cli.sweep import run as sweep_command
from sweeplab.cv.refit import refit_config
from sweeplab.runs.fit import fit
from sweeplab.sweeps.plan import plan_sweep
from sweeplab.sweeps.settings import load_settings
from sweeplab.sweeps.study import creation_lock, open_study
from sweeplab.sweeps.trials import (
    FINISHED,
    SURPLUS_ATTR,
    count_trials,
    is_feasible,
    is_surplus,
    places_left,
    taken_before,
)
from sweeplab.sweeps.workers import run_worker

SWEEPS_PACKAGE = Path(__file__).resolve().parents[1] / "src" / "sweeplab" / "sweeps"
OVERRIDES = [o for o in FAKE_FAST if not o.startswith("logger=")] + ["model=mlp"]


def write_sweep_file(folder: Path, **settings) -> Path:
    content = {
        "overrides": OVERRIDES,
        "n_trials": 2,
        "pruner": {"name": "none"},
        "space": {"optimizer.lr": {"type": "float", "low": 1e-3, "high": 0.1, "log": True}},
        **settings,
    }
    path = folder / "small_sweep.yaml"
    path.write_text(yaml.safe_dump(content, sort_keys=False))
    return path


# --- one switch for cross-validation --------------------------------------------------------------
def test_cv_folds_alone_makes_a_sweep_cross_validate_its_trials(tmp_path):
    source = write_sweep_file(tmp_path)
    settings = load_settings(source, [f"sweep.dir={tmp_path / 'study'}"])
    assert plan_sweep(settings, ("cv.folds=3",)).cross_validates
    assert plan_sweep(settings, ("cv.folds=3",)).objective_kind == "cv"
    assert not plan_sweep(settings, ()).cross_validates


def test_a_sweep_file_still_naming_objective_is_refused_with_what_replaced_it(tmp_path, capsys):
    source = write_sweep_file(tmp_path, objective="cv")
    with pytest.raises(SystemExit) as stop:
        sweep_command([f"sweep={source}", f"sweep.dir={tmp_path / 'study'}"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and len(err.strip().splitlines()) == 1, err
    assert "sweep.objective='cv' is invalid: no longer a setting" in err and "cv.folds >= 2" in err
    assert not (tmp_path / "study").exists()


def test_mnist_lenet_with_cv_folds_3_cross_validates_each_trial_and_refits_on_the_last_weights(tmp_path, mnist_dir):
    """Acceptance 2: ``python sweep.py sweep=mnist_lenet cv.folds=3 sweep.n_trials=2 trainer.max_epochs=1``."""
    study_dir = tmp_path / "study"
    status = sweep_command(
        [
            "sweep=mnist_lenet",
            "cv.folds=3",
            "cv.refit=true",
            "sweep.n_trials=2",
            "trainer.max_epochs=1",
            f"data.data_dir={mnist_dir}",
            f"sweep.dir={study_dir}",
        ]
    )
    assert status == 0
    study = optuna.load_study(study_name="mnist_lenet", storage=f"sqlite:///{study_dir / 'study.db'}")
    trials = study.get_trials(states=FINISHED)
    assert len(trials) == 2
    for trial in trials:
        trial_dir = Path(trial.user_attrs["dir"])
        assert sorted(p.name for p in trial_dir.glob("fold_*")) == ["fold_0", "fold_1", "fold_2"]
        report = json.loads((trial_dir / "cv_report.json").read_text())
        assert trial.value == pytest.approx(report["summary"]["val_acc"]["mean"])
        assert report["refit"]["status"] == "completed"
    assert "(cv)" in (study_dir / "report.md").read_text()


# --- the CV refit tests its last epoch's weights ---------------------------------------------------
def test_the_refit_config_finds_its_callbacks_by_type_not_by_the_suffix_of_their_class_name():
    cfg = compose_config(FAKE_FAST)
    assert cfg.callbacks.checkpoint._target_.endswith("RunCheckpoint")  # a ModelCheckpoint by another name
    refit = refit_config(cfg, epochs=3)
    assert refit.trainer.max_epochs == 3
    assert refit.callbacks.early_stopping is None
    assert refit.callbacks.checkpoint.monitor is None  # no selection: the last epoch's weights are kept and tested
    assert cfg.callbacks.checkpoint.monitor == "val_loss"  # the trials' own config is left as it was


def test_a_refit_run_tests_the_weights_of_its_last_epoch(tmp_path):
    # noisy data and a large step: the validation loss is lowest after epoch 2 of 4 (checked: selecting by it, as
    # the refit did while it missed RunCheckpoint, tests epoch 2's weights)
    cfg = compose_config([*OVERRIDES, "data.noise=8.0", "optimizer=adam", "optimizer.lr=0.03"])
    results = fit(refit_config(cfg, epochs=4), tmp_path)
    losses = [row["val_loss"] for row in results.history]
    assert results.epochs_run == 4 and losses.index(min(losses)) != 3  # selecting "best" would not pick the last
    tested = torch.load(tmp_path / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=False)
    assert tested["epoch"] == 3  # 0-based: the fourth and last epoch's weights were tested


# --- trial state in one module ------------------------------------------------------------------
def test_trial_words_are_read_from_one_module():
    study = optuna.create_study()
    study.enqueue_trial({})
    done = study.ask()
    study.tell(done, 1.0)
    pruned = study.ask()
    study.tell(pruned, state=TrialState.PRUNED)
    surplus = study.ask()
    surplus.set_user_attr(SURPLUS_ATTR, True)
    study.tell(surplus, state=TrialState.FAIL)
    running = study.ask()
    counts = count_trials(study.get_trials())
    assert (counts.complete, counts.pruned, counts.failed, counts.running, counts.surplus) == (1, 1, 0, 1, 1)
    assert counts.finished == 2 and places_left(study, 4) == 1 and taken_before(study, running.number) == 2
    assert [is_surplus(t) for t in study.get_trials()] == [False, False, True, False]
    assert is_feasible(study.get_trials()[0])
    text = "\n".join(path.read_text() for path in SWEEPS_PACKAGE.glob("*.py") if path.name != "trials.py")
    for definition in (
        "def is_surplus",
        "def count_trials",
        "def best_trial",
        "def pareto_front",
        "def is_feasible",
        "def places_left",
        "FINISHED =",
        "TAKEN =",
    ):
        assert definition not in text, f"{definition} is defined outside sweeplab.sweeps.trials"


def _imports_of(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
    return {name for name in names if name.startswith("sweeplab.sweeps.")}


def test_the_sweeps_package_has_no_import_cycle_counting_lazy_imports():
    graph = {f"sweeplab.sweeps.{p.stem}": _imports_of(p) for p in SWEEPS_PACKAGE.glob("*.py")}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for module in graph.get(start, ()):
            if module == goal or (module not in seen and reaches(module, goal, seen | {module})):
                return True
        return False

    cyclic = sorted(module for module in graph if reaches(module, module, set()))
    assert cyclic == []
    assert "sweeplab.sweeps.cluster_workers" not in graph["sweeplab.sweeps.workers"]


# --- no surplus trial is created -------------------------------------------------------------------
def test_a_worker_waiting_for_the_last_place_creates_no_trial_once_another_took_it(tmp_path, monkeypatch):
    """The worker counts places and creates its trial under the storage's lock (AskGate): a worker that asked in the
    same instant as another finds the place taken and creates nothing, instead of a trial that stands back as FAIL."""
    source = write_sweep_file(tmp_path, n_trials=1)
    plan = plan_sweep(load_settings(source, [f"sweep.dir={tmp_path / 'study'}"]))
    study = open_study(plan.settings, plan.storage_url)
    holding, asked = threading.Event(), threading.Event()

    def other_worker() -> None:
        with creation_lock(plan.storage_url):
            holding.set()
            study.ask()  # takes the only place while this worker waits at the lock
            asked.set()

    thread = threading.Thread(target=other_worker)

    def opened_then_another_worker_asks(*args, **kwargs) -> optuna.Study:
        opened = open_study(*args, **kwargs)
        thread.start()  # the other worker holds the lock from here until its trial exists
        holding.wait(timeout=60)
        return opened

    monkeypatch.setattr("sweeplab.sweeps.workers.open_study", opened_then_another_worker_asks)
    run_worker(plan)
    thread.join(timeout=60)
    assert asked.is_set()
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.RUNNING]  # the other worker's trial; none created here
    assert not any(is_surplus(t) for t in trials) and not list((tmp_path / "study").glob("trial_*"))
