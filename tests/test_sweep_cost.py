"""What a sweep pays per trial: configs composed once per set of group choices, plots only where asked for."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
import yaml
from omegaconf import OmegaConf

import sweeplab.config.compose as compose_module
from conftest import FAKE_FAST
from sweeplab.cli.sweep import run as sweep_command
from sweeplab.config.compose import TrainConfigs, compose_train
from sweeplab.errors import UserInputError
from sweeplab.reports.run_plots import draw_run_plots
from sweeplab.runs.config_record import record_run_config
from sweeplab.runs.fit import fit

PLOTS = ["confusion.png", "curves.png", "misclassified.png"]
BASE = ["data=fake", "model=lenet", "optimizer=adamw", "data.augment.translate=0", "trainer.max_epochs=1", "seed=3"]
TRIALS = [  # the sampled part of a few trials: values, a group choice, a nested value
    ["optimizer.lr=0.001", "optimizer.weight_decay=1e-05"],
    ["optimizer.lr=0.0031", "optimizer.weight_decay=0.002"],
    ["optimizer=sgd", "optimizer.lr=0.1", "optimizer.momentum=0.9"],
    ["optimizer=sgd", "optimizer.lr=0.2", "optimizer.momentum=0.5", "data.augment.translate=0.1"],
    ["optimizer.lr=0.01", "callbacks.checkpoint.save_top_k=2", "model.channels_last=false"],
]


def test_cached_configs_equal_what_train_py_composes_with_hydra_once_per_group_choices(monkeypatch):
    calls = []
    hydra_compose = compose_module.compose_train
    monkeypatch.setattr(
        compose_module,
        "compose_train",
        lambda overrides, **kw: calls.append(list(overrides)) or hydra_compose(overrides, **kw),
    )
    configs = TrainConfigs()
    for sampled in TRIALS:
        overrides = BASE + sampled
        cached = OmegaConf.to_container(configs.compose(overrides), resolve=False)
        assert cached == OmegaConf.to_container(hydra_compose(overrides, with_hydra=True), resolve=False)
        assert cached["hydra"]["overrides"]["task"] == overrides
    # Hydra ran for the two sets of group choices only, each without the value overrides
    assert calls == [
        ["data=fake", "model=lenet", "optimizer=adamw"],
        ["data=fake", "model=lenet", "optimizer=adamw", "optimizer=sgd"],
    ]


def test_a_cached_config_is_the_callers_own():
    configs = TrainConfigs()
    first = configs.compose(BASE + ["optimizer.lr=0.5"])
    first.optimizer.lr = 7.0
    assert configs.compose(BASE + ["optimizer.lr=0.25"]).optimizer.lr == 0.25
    assert configs.compose(BASE).optimizer.lr == compose_train(BASE).optimizer.lr


@pytest.mark.parametrize("bad", ["optimizer.lrr=0.1", "+optimizer.lr=0.1", "optimizer=adamm", "optimizer.lr=[0.1"])
def test_overrides_hydra_refuses_get_hydras_message(bad):
    with pytest.raises(UserInputError) as cached:
        TrainConfigs().compose([*BASE, bad])
    with pytest.raises(UserInputError) as direct:
        compose_train([*BASE, bad], with_hydra=True)
    assert str(cached.value) == str(direct.value)


def _sweep(folder: Path, *settings: str) -> Path:
    source = folder / "cost.yaml"
    source.write_text(
        yaml.safe_dump(
            {
                "overrides": [o for o in FAKE_FAST if not o.startswith("logger=")]
                + ["model=mlp", "trainer.max_epochs=1"],
                "space": {"optimizer.lr": {"type": "float", "low": 1e-4, "high": 0.1, "log": True}},
                "n_trials": 3,
                "pruner": {"name": "none"},
                "sampler": {"name": "random", "seed": 0},
            }
        )
    )
    study_dir = folder / "study"
    assert sweep_command([f"sweep={source}", f"sweep.dir={study_dir}", *settings]) == 0
    return study_dir


def _best_trial(study_dir: Path) -> int:
    return optuna.load_study(study_name="cost", storage=f"sqlite:///{study_dir / 'study.db'}").best_trial.number


def test_a_sweep_draws_the_best_trials_plots_only_and_at_its_end(tmp_path):
    study_dir = _sweep(tmp_path)
    best = f"trial_{_best_trial(study_dir):04d}"
    for trial_dir in sorted(study_dir.glob("trial_*")):
        drawn = sorted(p.name for p in trial_dir.glob("*.png"))
        assert drawn == (PLOTS if trial_dir.name == best else []), trial_dir.name
    assert "plots of trial" in (study_dir / "sweep.log").read_text()


def test_trial_plots_none_draws_no_plots(tmp_path):
    study_dir = _sweep(tmp_path, "sweep.trial_plots=none")
    assert not list(study_dir.glob("trial_*/*.png"))


def test_plots_drawn_after_a_run_show_what_its_test_saw(tmp_path, make_config):
    overrides = [
        "data=fake",
        "data.num_samples=256",
        "data.num_test_samples=64",
        "trainer.max_epochs=2",
        "progress_bar=false",
        "model=lenet",
    ]
    cfg = make_config(overrides)
    results = fit(
        cfg, tmp_path / "run", plots=False, on_start=lambda: record_run_config(tmp_path / "run", cfg, None, overrides)
    )
    assert not list((tmp_path / "run").glob("*.png"))
    written = draw_run_plots(tmp_path / "run")
    assert sorted(p.name for p in written) == PLOTS
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    recorded = json.loads((tmp_path / "run" / "results.json").read_text())
    assert recorded["test_confusion"] == results.test_confusion
    events = b"".join(p.read_bytes() for p in (tmp_path / "run").glob("events.out.tfevents.*"))
    assert b"test/confusion_matrix" in events and b"test/misclassified" in events


def test_drawing_a_folder_without_results_writes_nothing_and_does_not_raise(tmp_path, caplog):
    assert draw_run_plots(tmp_path) == []
    assert "could not draw the plots" in caplog.text
