"""Bad and hostile input, for every command: one line naming the key or the file, nothing changed.

Each case runs a command as a user would type it (in this process, for speed) against
a workspace holding a finished run, damaged copies of the MNIST files and damaged
reports, and asserts: the exit status; one ``error:`` line (or, for the readers, one
warning) naming the key or file; no traceback; no run folder made; and that no file of
the workspace changed (checksums before and after).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from conftest import FAKE_FAST, REPO, run_cli
from sweeplab.cli import compare as compare_cli
from sweeplab.cli import predict as predict_cli
from sweeplab.cli import sweep as sweep_cli
from sweeplab.cli import train as train_cli
from sweeplab.cli import visualize as visualize_cli
from sweeplab.errors import USER_ERROR_EXIT_CODE

FAST = ["data=fake", "data.num_samples=64", "data.num_test_samples=16", "trainer.fast_dev_run=true", "logger=csv"]
RUN = FAKE_FAST + ["model=lenet"]  # the finished run of the workspace, 2 epochs
SPACE = {"optimizer.lr": {"type": "float", "low": 1e-3, "high": 0.1, "log": True}}


def _damaged_mnist(root: Path, mnist: Path) -> None:
    """Copies of the MNIST files, each broken in one way."""
    for name, damage in (
        ("truncated", "train-images-idx3-ubyte"),
        ("header", "t10k-labels-idx1-ubyte"),
        ("labels", "train-labels-idx1-ubyte"),
    ):
        raw = root / name / "MNIST" / "raw"
        raw.mkdir(parents=True)
        for file in (mnist / "MNIST" / "raw").glob("*-ubyte"):
            shutil.copy(file, raw / file.name)
        data = bytearray((raw / damage).read_bytes())
        if name == "truncated":
            data = data[: len(data) // 3]
        elif name == "header":
            data[:8] = b"\x13\x37" * 4
        else:
            data[100] = 200  # a label outside the 10 classes
        (raw / damage).write_bytes(bytes(data))


def _sweep_file(root: Path, name: str, content) -> None:
    (root / "sweeps").mkdir(exist_ok=True)
    text = content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
    (root / "sweeps" / f"{name}.yaml").write_text(text)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, mnist_dir) -> Path:
    root = tmp_path_factory.mktemp("workspace")
    done = run_cli("train.py", *RUN, f"hydra.run.dir={root / 'run'}", cwd=root)
    assert done.returncode == 0, done.stderr[-2000:]
    _damaged_mnist(root / "mnist", mnist_dir)
    (root / "a_file").write_text("not a folder\n")
    (root / "empty").mkdir()
    # readers' food: damaged results and reports beside a good run
    damaged = root / "damaged"
    shutil.copytree(root / "run", damaged / "good")
    for name, results in (
        ("null", "null"),
        ("truncated", '{"status": "compl'),
        ("wrong_type", '{"status": "completed", "test_acc": "high"}'),
    ):
        (damaged / name).mkdir()
        (damaged / name / "results.json").write_text(results)
    (damaged / "bad_config" / ".hydra").mkdir(parents=True)
    (damaged / "bad_config" / ".hydra" / "config.yaml").write_text("model: [unclosed\n")
    (damaged / "cv").mkdir()
    (damaged / "cv" / "cv_report.json").write_text('{"status": "completed", "fold_res')
    for cv_run in ("cv_a", "cv_b"):
        (root / cv_run).mkdir()
        (root / cv_run / "cv_report.json").write_text(
            json.dumps({"status": "completed", "dataset": "fake", "fold_results": []})
        )
    (root / "cv_b" / "cv_folds.json").write_text('{"pool_size": 3, "fol')
    (root / "cv_a" / "cv_folds.json").write_text('{"pool_size": 3, "folds": []}')
    corrupt = root / "corrupt_ckpt"
    shutil.copytree(root / "run", corrupt)
    (corrupt / "checkpoints" / "best.ckpt").write_bytes((corrupt / "checkpoints" / "best.ckpt").read_bytes()[:1000])
    bad_config_run = root / "bad_config_run"
    shutil.copytree(root / "run", bad_config_run)
    (bad_config_run / ".hydra" / "config.yaml").write_text("data: {_target_: no.such.Module}\nseed: [\n")
    _sweep_file(
        root,
        "float_for_int",
        {"overrides": FAST, "space": {"trainer.max_epochs": {"type": "float", "low": 1, "high": 3}}},
    )
    _sweep_file(root, "no_choices", {"overrides": FAST, "space": {"optimizer": {"type": "categorical", "choices": []}}})
    _sweep_file(root, "a_list", "- not\n- a mapping\n")
    _sweep_file(root, "broken_yaml", "space: {optimizer.lr: [\n")
    _sweep_file(root, "unknown_key", {"overrides": FAST, "space": SPACE, "n_trails": 3})
    _sweep_file(root, "bad_group", {"overrides": FAST + ["model=nonet"], "space": SPACE})
    _sweep_file(
        root, "int_low", {"overrides": FAST, "space": {"data.batch_size": {"type": "int", "low": 1.5, "high": 8}}}
    )
    _sweep_file(root, "fine", {"overrides": FAST, "space": SPACE})
    return root


def checksums(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# (command, arguments, exit status, words the last line must hold); {ws} is the workspace
CASES = [
    # --- train.py: composition, the rules of each group, and what the classes themselves refuse
    ("train", ["model=foo"], 2, ["model='foo'", "lenet", "mlp"]),
    ("train", ["+tags=[baseline,'lr,study']"], 2, ["tags=['baseline', 'lr,study']", "without commas"]),
    ("train", ["+tags=[]", "notes=42"], 2, ["notes=42", "a text"]),
    ("train", ["tags=[baseline]"], 2, ["tags", "+tags"]),
    ("train", ["optimizer=rmsprop"], 2, ["optimizer='rmsprop'", "adamw", "sgd"]),
    ("train", ["scheduler=exponential"], 2, ["scheduler='exponential'", "onecycle", "plateau"]),
    ("train", ["trainer=tpu"], 2, ["trainer='tpu'", "cpu", "gpu"]),
    ("train", ["-m", "hydra/launcher=slurn", "seed=1,2"], 2, ["hydra/launcher='slurn'", "slurm, slurm_local"]),
    ("train", ["hydra/launcher=slurm"], 2, ["hydra/launcher='slurm'", "add -m"]),
    (
        "train",
        ["-m", "hydra/launcher=slurm", "hydra.launcher.partiton=gpu", "seed=1,2"],
        2,
        ["hydra.launcher.partiton"],
    ),
    ("train", ["-m", "--cfg", "job"], 2, ["--multirun and --cfg cannot be given together"]),
    ("train", ["optimizer.lrr=0.1"], 2, ["optimizer.lrr", "did you mean optimizer.lr"]),
    ("train", ["fooo=1"], 2, ["fooo", "not a config key"]),
    ("train", ["--config-name", "nope"], 2, ["--config-name='nope'", "train"]),
    ("train", ["--no-such-flag"], 2, ["--no-such-flag"]),
    ("train", ["model.dropout=[1"], 2, ["model.dropout=[1", "cannot parse"]),
    ("train", ["optimizer.lr=0"], 2, ["optimizer.lr=0", "> 0"]),
    ("train", ["optimizer.lr=fast"], 2, ["optimizer.lr='fast'", "number"]),
    ("train", ["optimizer.weight_decay=-1"], 2, ["optimizer.weight_decay=-1", ">= 0"]),
    ("train", ["optimizer=sgd", "optimizer.momentum=1.5"], 2, ["optimizer.momentum=1.5", "[0, 1)"]),
    ("train", ["optimizer=adam", "optimizer.betas=[2,3]"], 2, ["optimizer.betas=[2, 3]", "Adam", "beta"]),
    ("train", ["scheduler=step", "scheduler.step_size=0"], 2, ["scheduler.step_size=0", ">= 1"]),
    ("train", ["scheduler=plateau", "scheduler.factor=2"], 2, ["scheduler.factor=2", "(0, 1)"]),
    ("train", ["scheduler=onecycle", "scheduler.pct_start=1.5"], 2, ["scheduler.pct_start=1.5", "(0, 1)"]),
    ("train", ["trainer.precision=banana"], 2, ["trainer.precision='banana'", "bf16-mixed", "32-true"]),
    ("train", ["trainer.max_epochs=0"], 2, ["trainer.max_epochs=0", ">= 1"]),
    ("train", ["trainer.accelerator=tpu"], 2, ["trainer.accelerator='tpu'"]),
    ("train", ["trainer.accumulate_grad_batches=0"], 2, ["trainer.accumulate_grad_batches=0"]),
    ("train", ["+trainer.no_such_option=1"], 2, ["trainer.no_such_option", "Trainer takes no such argument"]),
    ("train", ["data.batch_size=0"], 2, ["data.batch_size=0", ">= 1"]),
    ("train", ["data.batch_size=2.5"], 2, ["data.batch_size=2.5", "integer"]),
    ("train", ["data.split_seed=abc"], 2, ["data.split_seed='abc'", "integer"]),
    ("train", ["data.val_fraction=1.5"], 2, ["data.val_fraction=1.5", "(0, 1)"]),
    ("train", ["+data.augment.rotate=5"], 2, ["data.augment", "rotate"]),
    ("train", ["data.augment.rotation=-5"], 2, ["data.augment.rotation=-5", "[0, 180]"]),
    ("train", ["data.augment=3"], 2, ["data.augment=3", "mapping of rotation, translate, hflip"]),
    ("train", ["data=cifar10", "data.augment.translate=1.5"], 2, ["data.augment.translate=1.5", "integer >= 0"]),
    ("train", FAST + ["data.val_fraction=0.001"], 2, ["data.val_fraction=0.001", "no train or no validation"]),
    ("train", ["model.dropout=1.0"], 2, ["model.dropout=1.0", "[0, 1)"]),
    ("train", FAST + ["model.activation=swish"], 2, ["model.activation", "swish", "relu"]),
    ("train", ["model=vgg", "model.conv_arch=[[1,0]]"], 2, ["model.conv_arch", "positive"]),
    ("train", ["model.channels_last=maybe"], 2, ["model.channels_last='maybe'", "auto"]),
    ("train", ["optimizer.fused=maybe"], 2, ["optimizer.fused='maybe'", "auto"]),
    (
        "train",
        ["optimizer=adam", "optimizer._target_=torch.optim.Adamax", "optimizer.fused=true"],
        2,
        ["optimizer.fused=True", "Adamax has no fused kernel"],
    ),
    ("train", ["model._target_=no.such.Model"], 2, ["model._target_='no.such.Model'", "cannot be imported"]),
    ("train", ["seed=lucky"], 2, ["seed='lucky'", "integer"]),
    ("train", ["seed=-1"], 2, ["seed=-1", "an integer in [0, 4294967295]"]),
    ("train", ["early_stopping.patience=0"], 2, ["early_stopping.patience=0", ">= 1"]),
    ("train", ["early_stopping.monitor=val_accuracy"], 2, ["early_stopping.monitor", "val_accuracy"]),
    ("train", ["callbacks.checkpoint.save_top_k=many"], 2, ["callbacks.checkpoint.save_top_k='many'"]),
    ("train", ["progress_bar=sometimes"], 2, ["progress_bar='sometimes'", "auto"]),
    ("train", ["resume=maybe"], 2, ["resume='maybe'", "true or false"]),
    ("train", FAST + ["cv.folds=1"], 2, ["cv.folds=1", "2"]),
    ("train", FAST + ["cv.folds=abc"], 2, ["cv.folds='abc'"]),
    ("train", FAST + ["cv.folds=100"], 2, ["cv.folds=100", "smallest class"]),
    ("train", FAST + ["cv.folds=3", "cv.repeats=0"], 2, ["cv.repeats=0", ">= 1"]),
    ("train", FAST + ["cv.folds=3", "cv.refit=maybe"], 2, ["cv.refit='maybe'", "true or false"]),
    # --- train.py: files and folders
    ("train", ["ckpt_path=/no/such/file.ckpt"], 2, ["ckpt_path", "/no/such/file.ckpt", "existing checkpoint"]),
    (
        "train",
        [*RUN, "ckpt_path={ws}/corrupt_ckpt/checkpoints/best.ckpt"],
        2,
        ["{ws}/corrupt_ckpt/checkpoints/best.ckpt", "cannot be read"],
    ),
    (
        "train",
        ["data=mnist", "data.data_dir=/no/such/dir", "data.download=false"],
        2,
        ["data.data_dir", "/no/such/dir", "mnist-10k"],
    ),
    ("train", ["data.data_dir={ws}/a_file", "data.download=false"], 2, ["{ws}/a_file"]),
    (
        "train",
        ["data.data_dir={ws}/mnist/truncated", "data.download=false"],
        2,
        ["{ws}/mnist/truncated/MNIST/raw/train-images-idx3-ubyte"],
    ),
    (
        "train",
        ["data.data_dir={ws}/mnist/header", "data.download=false"],
        2,
        ["{ws}/mnist/header/MNIST/raw/t10k-labels-idx1-ubyte"],
    ),
    (
        "train",
        ["data.data_dir={ws}/mnist/labels", "data.download=false"],
        2,
        ["train-labels-idx1-ubyte", "200", "10 classes"],
    ),
    ("train", [*FAST, "paths.output_dir={ws}/a_file"], 2, ["paths.output_dir", "{ws}/a_file", "is a file"]),
    ("train", [*FAST, "paths.output_dir={ws}/a_file/below"], 2, ["paths.output_dir", "is a file"]),
    ("train", [*FAST, "paths.output_dir=/proc/sweeplab"], 2, ["paths.output_dir='/proc/sweeplab'", "cannot be made"]),
    ("train", [*FAST, "hydra.run.dir={ws}/a_file/run"], 2, ["hydra.run.dir", "is a file"]),
    # --- train.py: resuming the workspace's finished run with something else
    ("train", [*RUN, "hydra.run.dir={ws}/run"], 2, ["{ws}/run holds a completed run", "resume=true"]),
    (
        "train",
        [*RUN, "hydra.run.dir={ws}/run", "resume=true", "optimizer.lr=0.5"],
        2,
        ["optimizer.lr: 0.003 -> 0.5", "resume_allow_changes=true"],
    ),
    (
        "train",
        [*RUN, "hydra.run.dir={ws}/run", "resume=true", "optimizer=sgd"],
        2,
        ["optimizer='SGD'", "cannot change on resume", "AdamW"],
    ),
    (
        "train",
        [*RUN, "hydra.run.dir={ws}/run", "resume=true", "model=mlp"],
        2,
        ["model='MLP'", "cannot change on resume"],
    ),
    ("train", [*RUN, "hydra.run.dir={ws}/run", "resume=true", "model.dropout=0.3"], 2, ["model.dropout: 0.0 -> 0.3"]),
    (
        "train",
        [*RUN, "hydra.run.dir={ws}/run", "resume=true", "trainer.max_epochs=1"],
        2,
        ["trainer.max_epochs=1", "at least 2"],
    ),
    ("train", [*RUN, "hydra.run.dir={ws}/empty", "resume=true"], 2, ["resume", "last.ckpt", "hydra.run.dir=RUN_DIR"]),
    # --- grids: every job is checked before the first trains
    ("train", ["-m", *FAST, "optimizer.lr=0.1,-1"], 2, ["job 1 of the grid", "optimizer.lr=-1", "> 0"]),
    ("train", ["-m", *FAST, "model=mlp,lenett"], 2, ["job 1 of the grid", "model='lenett'"]),
    ("train", ["-m", *FAST, "optimizer.lr=interval(0.1,1)"], 2, ["optimizer.lr", "a list of values"]),
    # --- sweep.py
    ("sweep", ["trainer.max_epochs=1"], 2, ["sweep=None", "mnist_lenet"]),
    ("sweep", ["sweep=no_such_sweep"], 2, ["sweep='no_such_sweep'", "mnist_lenet"]),
    (
        "sweep",
        ["sweep=mnist_lenet", "sweep.n_trail=3"],
        2,
        ["sweep.n_trail is not a config key", "did you mean sweep.n_trials?"],
    ),
    ("sweep", ["sweep=mnist_lenet", "sweep.n_trials=abc"], 2, ["sweep.n_trials='abc'", "integer"]),
    ("sweep", ["sweep=mnist_lenet", "sweep.n_trials=0"], 2, ["sweep.n_trials=0", ">= 1"]),
    ("sweep", ["sweep=mnist_lenet", "sweep.heartbeat_s=0"], 2, ["sweep.heartbeat_s=0", ">= 1"]),
    ("sweep", ["sweep=mnist_lenet", "sweep.pruner.name=sometimes"], 2, ["sweep.pruner.name='sometimes'", "hyperband"]),
    ("sweep", ["sweep=mnist_lenet", "sweep.sampler.seed=-5"], 2, ["sweep.sampler.seed=-5", ">= 0"]),
    ("sweep", ["sweep=mnist_lenet", "sweep.direction=minimize"], 2, ["sweep.direction='minimize'", "maximize"]),
    ("sweep", ["sweep=mnist_lenet", "sweep.metric=test_acc"], 2, ["sweep.metric='test_acc'", "val_acc"]),
    (
        "sweep",
        ["sweep=mnist_lenet", "sweep.space.optimizer.lr.type=gaussian"],
        2,
        ["sweep.space.optimizer.lr.type='gaussian'", "float, int, categorical"],
    ),
    ("sweep", ["sweep=mnist_lenet", "sweep.space.optimizer.lr.low=0"], 2, ["sweep.space.optimizer.lr", "low > 0"]),
    ("sweep", ["sweep=mnist_lenet", "sweep.storage=nosuchdb://x/y"], 2, ["sweep.storage", "nosuchdb"]),
    (
        "sweep",
        ["sweep=mnist_lenet", "sweep.storage=journal:///etc/hostname/study.journal"],
        2,
        ["sweep.storage='journal:///etc/hostname/study.journal'", "/etc/hostname is a file"],
    ),
    ("sweep", ["sweep=mnist_lenet", "sweep.launcher=pbs"], 2, ["sweep.launcher='pbs'", "local, slurm, slurm_local"]),
    ("sweep", ["sweep=mnist_lenet", "sweep.cluster.timeout_min=0"], 2, ["sweep.cluster.timeout_min=0", ">= 1"]),
    (
        "sweep",
        ["sweep=mnist_lenet", "sweep.cluster.partiton=gpu"],
        2,
        ["sweep.cluster.partiton is not a config key", "did you mean sweep.cluster.partition?"],
    ),
    ("sweep", ["sweep=mnist_lenet", "sweep.cluster=4"], 2, ["sweep.cluster=4", "mapping of partition"]),
    ("sweep", ["sweep=mnist_lenet", "optimizer.lrr=0.1"], 2, ["optimizer.lrr", "did you mean optimizer.lr"]),
    ("sweep", ["sweep=mnist_lenet", "optimizer.lr=-1"], 2, ["optimizer.lr=-1", "> 0"]),
    ("sweep", ["sweep=float_for_int"], 2, ["sweep.space.trainer.max_epochs.type='float'", "must be int"]),
    ("sweep", ["sweep=no_choices"], 2, ["sweep.space.optimizer.choices", "at least one value"]),
    ("sweep", ["sweep=int_low"], 2, ["sweep.space.data.batch_size.low=1.5", "integer"]),
    ("sweep", ["sweep=a_list"], 2, ["a_list.yaml", "must hold a mapping"]),
    ("sweep", ["sweep=broken_yaml"], 2, ["cannot read sweep file", "broken_yaml.yaml"]),
    (
        "sweep",
        ["sweep=unknown_key"],
        2,
        ["sweep.n_trails is not a config key", "unknown_key.yaml", "did you mean sweep.n_trials?"],
    ),
    ("sweep", ["sweep=bad_group"], 2, ["model='nonet'", "not an option"]),
    ("sweep", ["sweep=fine", "sweep.objective=cv"], 2, ["sweep.objective='cv'", "cv.folds >= 2"]),
    ("sweep", ["sweep=fine", "--workers=2"], 2, ["unknown option '--workers=2'"]),
    # --- compare.py: bad options refused; damaged files named in a warning, the rest shown
    ("compare", ["{ws}/nowhere"], 2, ["path '{ws}/nowhere'", "does not exist"]),
    ("compare", ["{ws}/empty"], 2, ["path '{ws}/empty'", "holds no run"]),
    ("compare", ["{ws}/run", "--metric", "accuracy"], 2, ["--metric='accuracy'", "test_acc"]),
    ("compare", ["{ws}/run", "--top", "0"], 2, ["--top=0", "positive"]),
    ("compare", ["{ws}/run", "--format", "xlsx"], 2, ["--format='xlsx'", "md, csv, json"]),
    (
        "compare",
        ["{ws}/run", "--where", "model=lenet and"],
        2,
        ["--where='model=lenet and'", "expected a key", "the end"],
    ),
    ("compare", ["{ws}/run", "--where", "modle=lenet"], 2, ["no run has a value named 'modle'", "did you mean model"]),
    ("compare", ["{ws}/run", "--where", "test_acc>=high"], 2, ["test_acc>=high", "needs a number"]),
    ("compare", ["{ws}/run", "--where", "model in [lenet"], 2, ["expected ',' or ']'"]),
    ("compare", ["{ws}/run", "--where", "test_acc ~ 1"], 2, ["expected an operator after test_acc", "'~'"]),
    ("compare", ["{ws}/run", "--where", "model='lenet"], 2, ['cannot read "\'lenet"']),
    ("compare", ["{ws}/run", "--filter", "optimizer.rl=0.1"], 2, ["did you mean optimizer.lr"]),
    ("compare", ["{ws}/run", "--plot", "{ws}/curves.jpg"], 2, ["--plot='{ws}/curves.jpg'", "a .png file"]),
    ("compare", ["{ws}/cv_a", "{ws}/cv_b"], 2, ["cannot read {ws}/cv_b/cv_folds.json"]),
    ("compare", ["{ws}/damaged"], 0, ["{ws}/damaged/"]),
    # --- visualize.py
    ("visualize", ["{ws}/nowhere"], 2, ["run folder '{ws}/nowhere'", "does not exist"]),
    ("visualize", ["{ws}/empty"], 2, ["'{ws}/empty'", ".hydra/config.yaml"]),
    ("visualize", ["{ws}/corrupt_ckpt"], 2, ["{ws}/corrupt_ckpt/checkpoints/best.ckpt", "cannot be read"]),
    ("visualize", ["{ws}/bad_config_run"], 2, ["cannot read {ws}/bad_config_run/.hydra/config.yaml"]),
    ("visualize", ["{ws}/run", "--image", "99999"], 2, ["--image=99999", "test images"]),
    ("visualize", ["{ws}/run", "data.batch_size"], 2, ["override='data.batch_size'", "KEY=VALUE"]),
    # --- predict.py
    ("predict", ["{ws}/nowhere", "{ws}/a_file"], 2, ["run folder '{ws}/nowhere'", "does not exist"]),
    ("predict", ["{ws}/run", "{ws}/a_file"], 2, ["{ws}/a_file", "not an image"]),
    ("predict", ["{ws}/run", "{ws}/no_such_*.png"], 2, ["{ws}/no_such_*.png", "no such file"]),
    ("predict", ["{ws}/run", "{ws}/empty"], 2, ["no image files", "{ws}/empty"]),
    ("predict", ["{ws}/run"], 2, ["name the images"]),
    (
        "predict",
        ["{ws}/corrupt_ckpt", "--export", "onnx"],
        2,
        ["{ws}/corrupt_ckpt/checkpoints/best.ckpt", "cannot be read"],
    ),
    ("predict", ["{ws}/run", "--export", "tflite"], 2, ["--export", "tflite", "onnx"]),
    ("predict", ["{ws}/run", "--top", "zero", "{ws}/a_file"], 2, ["--top", "zero"]),
]


@pytest.fixture(autouse=True)
def keep_logging_handlers():
    """hydra.main, run in-process here, points logging at pytest's captured streams; undo that."""
    saved = {name: list(logging.getLogger(name).handlers) for name in (None, "lightning", "lightning.pytorch")}
    yield
    for name, handlers in saved.items():
        logging.getLogger(name).handlers[:] = handlers


def run_command(command: str, argv: list[str], monkeypatch) -> int:
    """The command's exit status, run in this process as its root script runs it."""
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")
    with pytest.raises(SystemExit) as stopped:
        if command == "train":
            monkeypatch.setattr(sys, "argv", ["train.py", *argv])
            train_cli.cli()
        elif command == "sweep":
            sys.exit(sweep_cli.run(argv))
        elif command == "compare":
            compare_cli.main(argv)
            sys.exit(0)
        elif command == "predict":
            predict_cli.main(argv)
            sys.exit(0)
        else:
            visualize_cli.main(argv)
            sys.exit(0)
    return stopped.value.code or 0


@pytest.mark.parametrize("command, argv, status, words", CASES, ids=[f"{c[0]} {' '.join(c[1][-2:])}" for c in CASES])
def test_every_command_refuses_bad_input_in_one_line_and_changes_nothing(
    command, argv, status, words, workspace, monkeypatch, capsys, caplog
):
    monkeypatch.chdir(workspace)
    monkeypatch.delenv(train_cli.NEW_RUN_DIR, raising=False)
    before = checksums(workspace)
    code = run_command(command, [arg.format(ws=workspace) for arg in argv], monkeypatch)
    captured = capsys.readouterr()
    assert code == status, captured.err[-2000:]
    assert "Traceback" not in captured.err and "Traceback" not in caplog.text
    if status == USER_ERROR_EXIT_CODE:
        message = captured.err.strip().splitlines()[-1]
        assert message.startswith("error: "), captured.err[-2000:]
        assert captured.out == ""
    else:  # a reader going on past damaged files: each named once in a warning
        message = caplog.text
        for name in ("null", "truncated", "wrong_type", "bad_config", "cv"):
            assert f"{workspace}/damaged/{name}" in message
        assert "| good " in captured.out
    for word in words:
        assert word.format(ws=workspace) in message, message
    assert checksums(workspace) == before  # nothing in the workspace changed
    assert not (workspace / "outputs").exists() or not list((workspace / "outputs").rglob("*.*"))  # no run folder


def test_the_root_scripts_give_the_same_one_line(workspace, tmp_path):
    """The scripts a user types, in their own processes: the same line, no traceback, nothing made."""
    for script, argv, expected in (
        ("train.py", ["optimizer=adam", "optimizer.betas=[2,3]"], "error: optimizer.betas=[2, 3] is invalid"),
        ("sweep.py", ["sweep=mnist_lenet", "sweep.n_trials=0"], "error: sweep.n_trials=0 is invalid"),
        ("compare.py", [str(workspace / "nowhere")], "error: path"),
    ):
        done = run_cli(script, *argv, cwd=tmp_path)
        assert done.returncode == USER_ERROR_EXIT_CODE and "Traceback" not in done.stderr, done.stderr[-2000:]
        assert done.stderr.strip().splitlines()[-1].startswith(expected) and done.stdout == ""
    assert not (tmp_path / "outputs").exists() or not any((tmp_path / "outputs").rglob("*.*"))


def test_a_bug_shows_its_traceback_and_says_where_error_txt_is(tmp_path):
    """A failure sweeplab did not foresee is reported as a bug, not as the user's error."""
    (tmp_path / "broken_callback.py").write_text(
        "from lightning.pytorch.callbacks import Callback\n"
        "class Broken(Callback):\n"
        "    def on_train_epoch_end(self, trainer, pl_module):\n"
        "        raise ZeroDivisionError('a bug')\n"
    )
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO / "tests" / "helpers")])}
    done = run_cli(
        "train.py",
        *RUN,
        "+callbacks.broken._target_=broken_callback.Broken",
        f"hydra.run.dir={tmp_path / 'run'}",
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: unexpected failure (ZeroDivisionError: a bug)") and "not in your input" in last
    assert "Traceback (most recent call last)" in done.stderr
    report = tmp_path / "run" / "error.txt"
    assert str(report) in last and "ZeroDivisionError: a bug" in report.read_text()
    assert json.loads((tmp_path / "run" / "results.json").read_text())["status"] == "failed"


def test_a_user_error_carried_through_a_librarys_boundary_is_one_line(capsys):
    from sweeplab.cli.common import exit_for
    from sweeplab.errors import UserErrorExit, UserInputError

    with pytest.raises(SystemExit) as stopped:
        exit_for(UserErrorExit(UserInputError("SLURM refused the jobs: sbatch: error: invalid partition")))
    assert stopped.value.code == 2
    assert capsys.readouterr().err == "error: SLURM refused the jobs: sbatch: error: invalid partition\n"
