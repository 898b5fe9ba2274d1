"""Bad input is refused before any work, in one line naming the key, with exit status 2."""

from __future__ import annotations

import sys

import pytest

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


def test_the_table_is_large_enough():
    assert len(TRAIN_CASES) >= 15
