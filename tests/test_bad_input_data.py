"""Legal data that crashed or corrupted, and readers that crashed (issue 28): one conversion for every split,
one safe reader for images and run files.

The hostile cases run a command as a user types it (in this process, for speed) against a workspace holding a
finished run, crafted images and crafted run records, and assert: the exit status; the one line naming the key
or the file; no traceback; no change to the files that were there (sha256 before and after). The regression
tests assert values: 16-bit images scaled (not clipped), other splits converted to the run's shape, a batch-norm
model on 65 images trains.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import shutil
import struct
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import FAKE_FAST, run_cli
from sweeplab.cli import compare as compare_cli
from sweeplab.cli import predict as predict_cli
from sweeplab.cli import train as train_cli
from sweeplab.data.folder import FolderDataModule
from sweeplab.errors import USER_ERROR_EXIT_CODE, UserInputError
from sweeplab.safe_read import (
    MAX_IMAGE_PIXELS,
    MAX_JSON_DEPTH,
    UnreadableFile,
    image_pixels,
    json_depth,
    read_json_file,
)


def png_claiming(path: Path, width: int, height: int) -> Path:
    """A small PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb's header)."""
    buffer = io.BytesIO()
    Image.new("L", (8, 8)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    struct.pack_into(">II", data, 16, width, height)  # IHDR's data starts at byte 16
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(data))
    return path


def save(path: Path, image: Image.Image) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def sixteen_bit(value: int, size=(16, 16)) -> Image.Image:
    return Image.fromarray(np.full(size[::-1], value, dtype=np.uint16))  # mode I;16


def checksums(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def image_folder(root: Path, counts: dict[str, int], make) -> Path:
    """ROOT/SPLIT/{dark,light}/i.png, each image ``make(split, dark_or_light, i)``."""
    for split, count in counts.items():
        for light, name in enumerate(("dark", "light")):
            for i in range(count):
                save(root / split / name / f"{i}.png", make(split, light, i))
    return root


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("workspace")
    done = run_cli(
        "train.py", *FAKE_FAST, "model=softmax", "trainer.max_epochs=1", f"hydra.run.dir={root / 'run'}", cwd=root
    )
    assert done.returncode == 0, done.stderr[-2000:]
    png_claiming(root / "images" / "bomb.png", 30000, 30000)  # beyond Pillow's own error bound
    png_claiming(root / "images" / "large.png", 10000, 10000)  # beyond ours only (Pillow merely warns)
    noise = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    good = save(root / "images" / "good.png", Image.fromarray(noise))
    (root / "images" / "truncated.png").write_bytes(good.read_bytes()[:300])  # the header whole, the pixels not
    (root / "images" / "text.png").write_text("not an image\n")
    png_claiming(root / "bombs" / "bomb.png", 30000, 30000)
    (root / "a_file").write_text("not a folder\n")
    (root / "empty").mkdir()
    # a folder dataset with a bomb among its training images
    image_folder(
        root / "bomb_data", {"train": 3, "test": 2}, lambda split, light, i: Image.new("L", (8, 8), 200 * light)
    )
    png_claiming(root / "bomb_data" / "train" / "dark" / "9.png", 30000, 30000)
    # run records: a good run beside a deep one, one whose history is junk, a deep cross-validation report
    reports = root / "reports"
    shutil.copytree(root / "run", reports / "good")
    (reports / "deep").mkdir()
    (reports / "deep" / "results.json").write_text("[" * 200_000 + "]" * 200_000)
    (reports / "deep_cv").mkdir()
    (reports / "deep_cv" / "cv_report.json").write_text('{"status": "completed", "x": ' + "[" * 100 + "]" * 100 + "}")
    junk = json.loads((root / "run" / "results.json").read_text())
    junk["history"] = [
        {"epoch": "one", "val_acc": 0.5},
        None,
        [1, 2],
        {"epoch": -1, "val_acc": 0.4},
        {"epoch": 0, "val_acc": "high", "val_loss": float("nan")},
        {"epoch": 1, "val_acc": [[0.9]]},
        {"epoch": 2.5, "val_loss": 1.0},
        {"epoch": True, "val_acc": 0.1},
        "junk",
        {"epoch": 3, "val_acc": 0.7, "val_loss": 0.8},
    ]
    (reports / "junk").mkdir()
    (reports / "junk" / "results.json").write_text(json.dumps(junk))
    dict_history = dict(junk, history={"epoch": 1})
    (reports / "dict_history").mkdir()
    (reports / "dict_history" / "results.json").write_text(json.dumps(dict_history))
    return root


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
        elif command == "compare":
            compare_cli.main(argv)
            sys.exit(0)
        else:
            predict_cli.main(argv)
            sys.exit(0)
    return stopped.value.code or 0


LIMIT_VAL = ["data=fake", "data.num_samples=64", "trainer.max_epochs=1", "logger=csv"]
# (command, arguments, words the one error line must hold); {ws} is the workspace
REFUSED = [
    (
        "predict",
        ["{ws}/run", "{ws}/images/bomb.png"],
        ["{ws}/images/bomb.png", "claims 900000000 pixels", str(MAX_IMAGE_PIXELS)],
    ),
    ("predict", ["{ws}/run", "{ws}/images/large.png"], ["{ws}/images/large.png", "100000000 pixels (10000x10000)"]),
    ("predict", ["{ws}/run", "{ws}/bombs"], ["{ws}/bombs/bomb.png", "900000000 pixels"]),
    ("predict", ["{ws}/run", "{ws}/images/good.png", "{ws}/images/truncated.png"], ["{ws}/images/truncated.png"]),
    ("predict", ["{ws}/run", "{ws}/images/text.png"], ["{ws}/images/text.png", "not an image"]),
    ("predict", ["{ws}/run", "--export", "torchscript", "--out", "{ws}/a_file/model.pt"], ["{ws}/a_file/model.pt"]),
    ("predict", ["{ws}/run", "--export", "torchscript", "--out", "{ws}/empty"], ["--out {ws}/empty", "is a folder"]),
    ("predict", ["{ws}/run", "--export", "torchscript", "--out", "/sys/sweeplab/model.pt"], ["/sys/sweeplab/model.pt"]),
    ("predict", ["{ws}/run", "--export", "onnx", "--out", "{ws}/a_file/model.onnx"], ["{ws}/a_file/model.onnx"]),
    ("train", [*LIMIT_VAL, "trainer.limit_val_batches=0"], ["trainer.limit_val_batches=0 ", "data.val_fraction"]),
    ("train", [*LIMIT_VAL, "trainer.limit_val_batches=0.0"], ["trainer.limit_val_batches=0.0 ", "above 0"]),
    ("train", [*LIMIT_VAL, "trainer.limit_val_batches=-2"], ["trainer.limit_val_batches=-2 ", "above 0"]),
    (
        "train",
        ["data=folder", "data.data_dir={ws}/bomb_data", "data.size=8", "trainer.max_epochs=1", "logger=csv"],
        ["{ws}/bomb_data/train/dark/9.png", "900000000 pixels"],
    ),
]


@pytest.mark.parametrize("command, argv, words", REFUSED, ids=[f"{c[0]} {' '.join(c[1][-2:])}" for c in REFUSED])
def test_hostile_input_is_refused_in_one_line_naming_it_and_changes_nothing(
    command, argv, words, workspace, monkeypatch, capsys, caplog
):
    if command == "predict" and "onnx" in argv:
        pytest.importorskip("onnxscript")
    monkeypatch.chdir(workspace)
    monkeypatch.delenv(train_cli.NEW_RUN_DIR, raising=False)
    before = checksums(workspace)
    code = run_command(command, [arg.format(ws=workspace) for arg in argv], monkeypatch)
    captured = capsys.readouterr()
    assert code == USER_ERROR_EXIT_CODE, captured.err[-2000:]
    assert "Traceback" not in captured.err and "Traceback" not in caplog.text
    errors = [line for line in captured.err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and captured.err.strip().splitlines()[-1] == errors[0], captured.err[-2000:]
    for word in words:
        assert word.format(ws=workspace) in errors[0], errors[0]
    after = checksums(workspace)
    assert {name: after.get(name) for name in before} == before  # what was there is unchanged
    assert not (workspace / "sys").exists()


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_export_into_a_read_only_folder_is_refused_naming_it(workspace, monkeypatch, capsys, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        code = run_command(
            "predict",
            [str(workspace / "run"), "--export", "torchscript", "--out", str(locked / "model.pt")],
            monkeypatch,
        )
    finally:
        locked.chmod(0o755)
    err = capsys.readouterr().err
    assert code == USER_ERROR_EXIT_CODE and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith(f"error: cannot write the exported model to {locked / 'model.pt'}")
    assert not list(locked.iterdir())


def test_export_into_a_missing_folder_makes_it_and_the_model_loads(workspace, monkeypatch, capsys, tmp_path):
    out = tmp_path / "new" / "deeper" / "model.pt"
    argv = [str(workspace / "run"), "--export", "torchscript", "--out", str(out)]
    assert run_command("predict", argv, monkeypatch) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated; TorchScript files are still read
        scripted = torch.jit.load(str(out))
    assert scripted(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    assert [p.name for p in out.parent.iterdir()] == ["model.pt"]  # no temporary left behind


def test_compare_shows_the_good_runs_and_names_each_bad_file_once(workspace, monkeypatch, capsys, caplog):
    monkeypatch.chdir(workspace)
    before = checksums(workspace)
    with caplog.at_level(logging.WARNING):
        code = run_command("compare", [str(workspace / "reports"), "--format", "csv"], monkeypatch)
    captured = capsys.readouterr()
    assert code == 0 and "Traceback" not in captured.err + caplog.text
    rows = captured.out.strip().splitlines()
    good = [row for row in rows if "completed" in row]
    assert len(good) == 2  # the good run, and the one whose history is junk (its numbers are good)
    for bad in ("deep/results.json", "deep_cv/cv_report.json", "dict_history/results.json"):
        named = [r for r in caplog.records if f"{workspace}/reports/{bad}" in r.getMessage()]
        assert len(named) == 1, caplog.text
    assert f"nested deeper than {MAX_JSON_DEPTH}" in caplog.text
    assert checksums(workspace) == before


def test_compare_plot_draws_the_valid_history_and_names_the_junk_once(workspace, monkeypatch, capsys, caplog, tmp_path):
    from sweeplab.reports.overlays import valid_history  # noqa: PLC0415
    from sweeplab.reports.run_records import load_run  # noqa: PLC0415

    rows = valid_history(load_run(workspace / "reports" / "junk"))
    assert rows == [(0, {}), (1, {}), (3, {"val_acc": 0.7, "val_loss": 0.8})]  # epochs kept, their junk values not
    caplog.clear()
    plot = tmp_path / "curves.png"
    with caplog.at_level(logging.WARNING):
        code = run_command(
            "compare",
            [str(workspace / "reports" / "junk"), str(workspace / "reports" / "good"), "--plot", str(plot)],
            monkeypatch,
        )
    err = capsys.readouterr().err
    assert code == 0 and "Traceback" not in err + caplog.text, err
    junk_lines = [r.getMessage() for r in caplog.records if str(workspace / "reports" / "junk") in r.getMessage()]
    assert len(junk_lines) == 1 and "left 10 entries of its history out" in junk_lines[0], junk_lines
    assert "2 curves" in err and Image.open(plot).size[0] > 500


# --- the safe reader --------------------------------------------------------------------------------


def test_json_depth_is_counted_without_recursion_and_ignores_brackets_in_strings(tmp_path):
    assert json_depth('{"a": [1, "[[[[\\"]", {"b": []}]}') == 4
    assert json_depth("[" * 300_000 + "]" * 300_000) == 300_000
    deep = tmp_path / "deep.json"
    deep.write_text('{"a": ' + "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1) + "}")
    with pytest.raises(UnreadableFile, match=f"{deep}: nested deeper than {MAX_JSON_DEPTH}"):
        read_json_file(deep)
    fine = tmp_path / "fine.json"
    fine.write_text(json.dumps({"history": [{"epoch": i} for i in range(500)]}))
    assert len(read_json_file(fine)["history"]) == 500


def test_a_bomb_is_refused_from_its_header_without_decoding(workspace):
    with pytest.raises(UserInputError) as refused:
        FolderDataModule(data_dir=workspace / "bomb_data", cache_dir=workspace / "never").setup()
    assert f"{workspace}/bomb_data/train/dark/9.png claims 900000000 pixels" in str(refused.value)
    assert not (workspace / "never").exists()


# --- one conversion for every split -------------------------------------------------------------------


@pytest.mark.parametrize(
    "image, expected",
    [
        (sixteen_bit(10_000), round(10_000 * 255 / 65535)),
        (sixteen_bit(50_000), round(50_000 * 255 / 65535)),
        (Image.fromarray(np.full((16, 16), 65535, dtype=np.int32)), 255),  # mode I
        (Image.fromarray(np.full((16, 16), 0.25, dtype=np.float32)), 64),  # mode F in [0, 1]
        (Image.new("LA", (16, 16), (200, 0)), 0),  # fully transparent: laid on black
        (Image.new("LA", (16, 16), (200, 255)), 200),
        (Image.new("CMYK", (16, 16), (0, 0, 0, 0)), 255),  # no ink: white
        (Image.new("RGB", (16, 16), (90, 90, 90)).convert("P"), 90),
    ],
)
def test_every_mode_is_brought_to_8_bits_by_scaling(image, expected):
    pixels = image_pixels(image, 1, (16, 16))
    assert pixels.dtype == np.uint8 and pixels.shape == (16, 16)
    assert abs(int(pixels.mean()) - expected) <= 1, (image.mode, pixels.mean())


def test_16_bit_classes_stay_apart_and_match_their_8_bit_twins(tmp_path):
    """Clipped, 10000 and 50000 both became 255; scaled they are 39 and 195, as 8-bit images of those values."""
    values = {0: 10_000, 1: 50_000}
    deep = image_folder(tmp_path / "deep", {"train": 4, "test": 2}, lambda split, light, i: sixteen_bit(values[light]))
    eight = image_folder(
        tmp_path / "eight",
        {"train": 4, "test": 2},
        lambda split, light, i: Image.new("L", (16, 16), round(values[light] * 255 / 65535)),
    )
    modules = [
        FolderDataModule(data_dir=root, cache_dir=tmp_path / "cache", val_fraction=0.25) for root in (deep, eight)
    ]
    for module in modules:
        module.setup()
    deep_module, eight_module = modules
    assert torch.equal(deep_module.pool_images, eight_module.pool_images)
    assert torch.equal(deep_module.test_images, eight_module.test_images)
    dark, light = (deep_module.pool_images[deep_module.pool_labels == k].float().mean().item() for k in (0, 1))
    assert (dark, light) == (39.0, 195.0)


def test_val_and_test_images_of_other_sizes_and_modes_get_the_runs_shape(tmp_path):
    def make(split, light, i):
        value = 40 + 160 * light
        if split == "train":
            return Image.new("L", (16, 16), value)
        if split == "val":
            return Image.new("RGB", (24, 20), (value,) * 3)
        return [
            Image.new("RGBA", (9, 9), (value, value, value, 255)),
            sixteen_bit(value * 257, (32, 32)),
            Image.new("RGB", (12, 12), (value,) * 3).convert("P"),
        ][i % 3]

    root = image_folder(tmp_path / "images", {"train": 4, "val": 2, "test": 3}, make)
    module = FolderDataModule(data_dir=root, cache_dir=tmp_path / "cache")
    module.setup()
    assert module.in_shape == (1, 16, 16) and module.test_images.shape == (6, 1, 16, 16)
    assert module.pool_images.shape == (12, 1, 16, 16)
    for images, labels in ((module.pool_images, module.pool_labels), (module.test_images, module.test_labels)):
        for label, value in ((0, 40), (1, 200)):
            assert images[labels == label].float().mean().item() == pytest.approx(value, abs=1)


def test_predict_converts_images_as_training_did(workspace):
    from sweeplab.runs.trained import load_run  # noqa: PLC0415

    trained = load_run(workspace / "run")
    folder = workspace / "predict_inputs"
    paths = [
        save(folder / "deep.png", sixteen_bit(50_000, (40, 30))),
        save(folder / "rgba.png", Image.new("RGBA", (28, 28), (195, 195, 195, 255))),
        save(folder / "eight.png", Image.new("L", (28, 28), 195)),
    ]
    batch = trained.load_images(paths)
    assert batch.shape == (3, 1, 28, 28)
    assert all(math.isclose(batch[i].mean().item(), 195 / 255, abs_tol=1e-6) for i in range(3))


def test_a_batch_norm_model_trains_on_65_images_leaving_out_the_batch_of_one(tmp_path):
    root = image_folder(
        tmp_path / "images",
        {"train": 33, "val": 2, "test": 2},
        lambda split, light, i: Image.new("RGB", (32, 32), (30 + 180 * light, 60, 90 + i)),
    )
    (root / "train" / "light" / "32.png").unlink()  # 65 training images: batches of 64 leave one
    done = run_cli(
        "train.py",
        "data=folder",
        f"data.data_dir={root}",
        "data.batch_size=64",
        "model=vgg",
        "model.width_divisor=8",
        "trainer.max_epochs=2",
        "logger=csv",
        "progress_bar=false",
        f"hydra.run.dir={tmp_path / 'run'}",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    said = [line for line in (done.stdout + done.stderr).splitlines() if "leaves out its last batch" in line]
    assert len(said) == 1 and "of 65 images in batches of 64" in said[0], said
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["status"] == "completed" and results["epochs_run"] == 2 and results["train_size"] == 65
