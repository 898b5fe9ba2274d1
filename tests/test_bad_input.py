"""Bad input is refused before any work, in one line naming the key, with exit status 2."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from conftest import compose_config, run_cli
from sweeplab.cli import train as train_cli
from sweeplab.errors import USER_ERROR_EXIT_CODE

FAST = ["data=fake", "data.num_samples=64", "data.num_test_samples=16", "trainer.fast_dev_run=true", "logger=csv"]

# (arguments, words the one-line message must contain)
TRAIN_CASES = [
    (["model=foo"], ["model='foo'", "lenet", "mlp"]),
    (["optimizer=rmsprop"], ["optimizer='rmsprop'", "adamw", "sgd"]),
    (["scheduler=exponential"], ["scheduler='exponential'", "onecycle", "plateau"]),
    (["optimizer.lrr=0.1"], ["optimizer.lrr", "did you mean optimizer.lr"]),
    (["fooo=1"], ["fooo", "not a config key"]),
    (["optimizer.lr=0"], ["optimizer.lr=0", "> 0"]),
    (["optimizer.lr=-0.1"], ["optimizer.lr=-0.1", "> 0"]),
    (["optimizer.lr=fast"], ["optimizer.lr='fast'", "number"]),
    (["optimizer.weight_decay=-1"], ["optimizer.weight_decay=-1", ">= 0"]),
    (["optimizer=sgd", "optimizer.momentum=1.5"], ["optimizer.momentum=1.5", "[0, 1)"]),
    (["data.batch_size=0"], ["data.batch_size=0", ">= 1"]),
    (["data.batch_size=2.5"], ["data.batch_size=2.5", "integer"]),
    (["model.dropout=1.0"], ["model.dropout=1.0", "[0, 1)"]),
    (["model.dropout=-0.2"], ["model.dropout=-0.2", "[0, 1)"]),
    (["data.val_fraction=0"], ["data.val_fraction=0", "(0, 1)"]),
    (["data.val_fraction=1.5"], ["data.val_fraction=1.5", "(0, 1)"]),
    (["trainer.max_epochs=0"], ["trainer.max_epochs=0", ">= 1"]),
    (["early_stopping.patience=0"], ["early_stopping.patience=0", ">= 1"]),
    (["seed=lucky"], ["seed='lucky'", "integer"]),
    (["model.dropout=[1"], ["model.dropout=[1", "cannot parse"]),
    (["ckpt_path=/no/such/file.ckpt"], ["ckpt_path", "/no/such/file.ckpt", "existing checkpoint"]),
    (FAST + ["model.activation=swish"], ["model.activation", "swish", "relu"]),
    (FAST + ["model=lenet", "model.pool=median"], ["model.pool", "median", "max"]),
    (["data=mnist", "data.data_dir=/no/such/dir", "data.download=false"], ["data.data_dir", "/no/such/dir", "mnist-10k"]),
    (FAST + ["cv.folds=1"], ["cv.folds=1", "2"]),
    (FAST + ["cv.folds=100"], ["cv.folds=100", "smallest class"]),
    (FAST + ["cv.folds=3", "cv.repeats=0"], ["cv.repeats=0", ">= 1"]),
]


@pytest.fixture(autouse=True)
def keep_logging_handlers():
    """hydra.main, run in-process here, points logging at pytest's captured streams; undo that."""
    saved = {name: list(logging.getLogger(name).handlers) for name in (None, "lightning", "lightning.pytorch")}
    yield
    for name, handlers in saved.items():
        logging.getLogger(name).handlers[:] = handlers


def run_train(argv, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["train.py", *argv])
    with pytest.raises(SystemExit) as exit_info:
        train_cli.cli()
    return exit_info.value.code


@pytest.mark.parametrize("argv, words", TRAIN_CASES, ids=[" ".join(c[0][-2:]) for c in TRAIN_CASES])
def test_train_refuses_bad_input(argv, words, monkeypatch, tmp_path, capsys):
    code = run_train(argv, monkeypatch, tmp_path)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == USER_ERROR_EXIT_CODE
    message = err[-1]
    assert message.startswith("error: ")
    for word in words:
        assert word in message, message
    assert not list(tmp_path.rglob("results.json"))  # nothing claims a result


# --- the other commands, run as a user runs them --------------------------------------------------
# (script, arguments, words the one-line message must contain); {tmp} is the test's folder, holding
# `empty/` (no run) and `run/` (a run's results.json and .hydra/config.yaml, but no checkpoint)
CLI_CASES = [
    ("sweep.py", ["trainer.max_epochs=1"], ["sweep=None", "mnist_lenet"]),
    ("sweep.py", ["sweep=no_such_sweep"], ["sweep='no_such_sweep'", "mnist_lenet"]),
    ("sweep.py", ["sweep=mnist_lenet", "sweep.n_trail=3"], ["sweep.n_trail=3", "unknown setting", "sweep.n_trials"]),
    ("sweep.py", ["sweep=mnist_lenet", "sweep.space.optimizer.lr.type=gaussian"],
     ["sweep.space.optimizer.lr.type='gaussian'", "float, int, categorical"]),
    ("sweep.py", ["sweep=mnist_lenet", "sweep.n_trials=0"], ["sweep.n_trials=0", "integer >= 1"]),
    ("sweep.py", ["sweep=mnist_lenet", "sweep.pruner.name=sometimes"], ["sweep.pruner.name='sometimes'", "hyperband"]),
    ("sweep.py", ["sweep=mnist_lenet", "sweep.heartbeat_s=0"], ["sweep.heartbeat_s=0", "integer >= 1"]),
    ("sweep.py", ["sweep=mnist_lenet", "optimizer.lrr=0.1"], ["optimizer.lrr", "did you mean optimizer.lr"]),
    ("compare.py", ["{tmp}/nowhere"], ["path '{tmp}/nowhere'", "does not exist"]),
    ("compare.py", ["{tmp}/empty"], ["path '{tmp}/empty'", "holds no run"]),
    ("compare.py", ["{tmp}/run", "--metric", "accuracy"], ["--metric='accuracy'", "test_acc"]),
    ("compare.py", ["{tmp}/run", "--top", "0"], ["--top=0", "positive"]),
    ("compare.py", ["{tmp}/run", "--format", "xlsx"], ["--format='xlsx'", "md, csv, json"]),
    ("visualize.py", ["{tmp}/nowhere"], ["run folder '{tmp}/nowhere'", "does not exist"]),
    ("visualize.py", ["{tmp}/empty"], ["'{tmp}/empty'", ".hydra/config.yaml"]),
    ("visualize.py", ["{tmp}/run"], ["{tmp}/run/checkpoints/best.ckpt", "no checkpoint"]),
]


def run_folder_without_checkpoint(folder: Path) -> None:
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "config.yaml").write_text(OmegaConf.to_yaml(compose_config(FAST)))
    (folder / "results.json").write_text(json.dumps({"status": "completed", "test_acc": 0.5, "hparams": {"seed": 42}}))


@pytest.mark.parametrize("script, argv, words", CLI_CASES, ids=[f"{c[0]} {' '.join(c[1][-2:])}" for c in CLI_CASES])
def test_every_command_refuses_bad_input_in_one_line(script, argv, words, tmp_path):
    (tmp_path / "empty").mkdir()
    run_folder_without_checkpoint(tmp_path / "run")
    done = run_cli(script, *(arg.format(tmp=tmp_path) for arg in argv), cwd=tmp_path, timeout=120)
    assert done.returncode == USER_ERROR_EXIT_CODE, done.stderr[-2000:]
    message = done.stderr.strip().splitlines()[-1]
    assert message.startswith("error: "), done.stderr[-2000:]
    for word in words:
        assert word.format(tmp=tmp_path) in message, message
    assert done.stdout == ""
    assert not (tmp_path / "outputs").exists()  # no run, sweep or study folder was started
    assert not list((tmp_path / "run").glob("*.png"))

