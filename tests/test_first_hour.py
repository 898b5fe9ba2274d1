"""A newcomer's first hour: device errors up front, fast refusals, a terminal that shows the run,
defaults that learn, early warnings, predictions on their own images, the learning-rate range test."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
import torch
import torchvision
from PIL import Image

import sweeplab
from conftest import FAKE_FAST, REPO, compose_config, run_cli
from sweeplab.devices import cuda_devices
from sweeplab.runs.fit import fit


def _seconds(*argv: str, cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *argv], cwd=cwd, capture_output=True, text=True, timeout=300)
    return time.perf_counter() - started, done


def test_refusals_and_help_answer_in_less_than_half_the_time_lightning_takes_to_import(tmp_path):
    """A missing GPU, a typo and --help, each timed against `import lightning.pytorch` in the same minute."""
    lightning_s, _ = _seconds("-c", "import lightning.pytorch", cwd=tmp_path)
    cases = [["model=lenett"], ["--help"]]
    if cuda_devices()[0] == 0:  # data that does not exist: refused before any data is read
        cases.append(["model=vgg", "trainer.accelerator=gpu", "data.data_dir=/no/such/folder", "data.download=false"])
    for argv in cases:
        seconds, done = _seconds(str(REPO / "train.py"), *argv, cwd=tmp_path)
        assert seconds < 0.5 * lightning_s, (argv, seconds, lightning_s)
        if argv[0] != "--help":
            assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "trainer.accelerator='gpu'" in done.stderr and "found" in done.stderr and "trainer=cpu" in done.stderr
    assert not (tmp_path / "outputs" / "runs").exists()


def _under_a_terminal(argv: list[str], cwd: Path) -> str:
    """What a 160-column terminal shows of ``python train.py ARGV`` (a pseudo-terminal for its output)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    process = subprocess.Popen(
        [sys.executable, str(REPO / "train.py"), *argv],
        cwd=cwd,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        close_fds=True,
    )
    os.close(slave)
    output = b""
    while True:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
        elif process.poll() is not None:
            break
    assert process.wait(timeout=60) == 0, output.decode(errors="replace")[-3000:]
    os.close(master)
    return output.decode(errors="replace")


def test_on_a_terminal_the_bar_shows_the_running_loss_and_the_last_validation(tmp_path):
    screen = _under_a_terminal(
        [*FAKE_FAST, "model=mlp", "progress_bar=auto", f"hydra.run.dir={tmp_path / 'run'}"], tmp_path
    )
    bars = [line for line in re.split(r"[\r\n]", screen) if line.startswith("epoch ")]
    assert any("epoch 1/2" in bar and "train_loss=" in bar and "train_acc=" in bar for bar in bars), bars[-3:]
    assert any("epoch 2/2" in bar and "val_loss=" in bar and "val_acc=" in bar for bar in bars), bars[-3:]
    for noise in ("GPU available", "litlogger", "LeafSpec", "Restoring states", "| Name "):
        assert noise not in screen, noise


def test_a_model_stuck_at_chance_and_a_slow_first_epoch_are_each_said_in_one_warning(tmp_path, caplog):
    cfg = compose_config(
        FAKE_FAST
        + [
            "data.num_samples=2000",
            "model=mlp",
            "optimizer=sgd",
            "optimizer.lr=1e-9",
            "trainer.max_epochs=3",
            "callbacks.watch.slow_epoch_s=0",
        ]
    )
    with caplog.at_level(logging.WARNING, logger="sweeplab.training"):
        fit(cfg, tmp_path)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len([w for w in warnings if "near chance" in w]) == 1, warnings
    assert any("one epoch will take about" in w and "model.width_divisor" in w for w in warnings), warnings


def test_a_smoke_run_keeps_no_checkpoint(tmp_path):
    results = fit(compose_config(FAKE_FAST + ["model=lenet", "trainer.fast_dev_run=true"]), tmp_path)
    assert results.status == "completed" and not (tmp_path / "checkpoints").exists()


def test_vgg_at_a_cpu_width_learns_in_one_epoch_with_its_defaults(tmp_path, mnist_dir):
    cfg = compose_config(
        [
            f"data.data_dir={mnist_dir}",
            "model=vgg",
            "model.width_divisor=8",
            "trainer.max_epochs=1",
            "logger=csv",
            "progress_bar=false",
            "seed=1",
        ]
    )
    assert fit(cfg, tmp_path).test_acc >= 0.6  # chance is 0.1; batch norm on and dropout 0.2 by default


@pytest.mark.slow
@pytest.mark.parametrize("model, divisor", [("nin", 4), ("googlenet", 8)])
def test_the_other_deep_models_learn_in_one_epoch_with_their_defaults(model, divisor, tmp_path, mnist_dir):
    cfg = compose_config(
        [
            f"data.data_dir={mnist_dir}",
            f"model={model}",
            f"model.width_divisor={divisor}",
            "trainer.max_epochs=1",
            "logger=csv",
            "progress_bar=false",
            "seed=1",
        ]
    )
    assert fit(cfg, tmp_path).test_acc >= 0.6


# --- a trained model on the user's own images ------------------------------------------------------


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, mnist_dir) -> tuple[Path, Path, list[int]]:
    """A 2-epoch LeNet-5 run on the real MNIST files, and 40 of its test digits saved as PNG files."""
    root = tmp_path_factory.mktemp("trained")
    done = run_cli(
        "train.py",
        f"data.data_dir={mnist_dir}",
        "trainer.max_epochs=2",
        "logger=csv",
        "seed=1",
        f"hydra.run.dir={root / 'run'}",
        cwd=root,
        env={"DATA_DIR": ""},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    test = torchvision.datasets.MNIST(str(mnist_dir), train=False)
    (root / "digits").mkdir()
    for i in range(40):
        Image.fromarray(test.data[i].numpy()).save(root / "digits" / f"{i:02d}.png")
    return root / "run", root / "digits", [int(label) for label in test.targets[:40]]


def test_predict_names_the_class_of_each_image_from_the_runs_own_preprocessing(trained_run, tmp_path):
    run_dir, digits, labels = trained_run
    done = run_cli("predict.py", str(run_dir), str(digits / "*.png"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 40
    predicted = [int(re.match(r"\S+  (\d)", line).group(1)) for line in lines]
    assert sum(p == label for p, label in zip(predicted, labels, strict=True)) >= 36
    assert all("(top 3: " in line for line in lines)
    config = (run_dir / ".hydra" / "config.yaml").read_text()
    assert "${" not in config and str(Path(os.environ.get("DATA_DIR") or run_dir).anchor) in config  # resolved


def test_load_run_predicts_in_python_and_the_exports_match_the_model(trained_run, tmp_path):
    import onnxruntime  # noqa: PLC0415 (the onnx extra)

    run_dir, digits, labels = trained_run
    trained = sweeplab.load_run(run_dir)
    images = trained.load_images(sorted(digits.glob("*.png")))
    assert images.shape == (40, 1, 28, 28) and trained.classes[0].startswith("0")
    probabilities = trained.predict(images)
    assert torch.allclose(probabilities.sum(dim=1), torch.ones(40))
    with torch.no_grad():
        logits = trained.normalized(images).numpy()
    session = onnxruntime.InferenceSession(str(trained.export("onnx", tmp_path / "model.onnx")))
    assert abs(session.run(None, {"images": images.numpy()})[0] - logits).max() < 1e-4
    scripted = torch.jit.load(str(trained.export("torchscript", tmp_path / "model.pt")))
    assert abs(scripted(images).detach().numpy() - logits).max() < 1e-4


def test_predict_refuses_what_it_cannot_read_in_one_line(trained_run, tmp_path):
    run_dir, _, _ = trained_run
    (tmp_path / "notes.png").write_text("not an image")
    for argv, words in (
        ([str(tmp_path / "notes.png")], ["notes.png", "not an image"]),
        ([str(tmp_path / "none*.png")], ["none*.png", "no such file"]),
        (["--top", "0", str(tmp_path / "notes.png")], ["--top=0"]),
    ):
        done = run_cli("predict.py", str(run_dir), *argv, cwd=tmp_path)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
        assert all(word in done.stderr.strip().splitlines()[-1] for word in words), done.stderr


def test_lr_find_plots_the_range_test_and_suggests_a_learning_rate(tmp_path, mnist_dir):
    done = run_cli(
        "train.py",
        "lr_find=true",
        f"data.data_dir={mnist_dir}",
        "logger=csv",
        f"hydra.run.dir={tmp_path / 'run'}",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    suggested = float(re.search(r"suggested optimizer.lr=([0-9.e-]+)", done.stdout).group(1))
    assert 1e-4 <= suggested <= 1
    assert (tmp_path / "run" / "lr_find.png").stat().st_size > 10_000
    assert not (tmp_path / "run" / "results.json").exists()  # a range test trains nothing else
    record = json.loads((tmp_path / "run" / "run.json").read_text())  # but it is a run: where it came from
    assert record["ended"] is not None and record["data"]["files"] == 4 and "lr_find=true" in record["argv"]
