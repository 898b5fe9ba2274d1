"""A finished run, grid or sweep ends by naming its folder and the commands that open it."""

from __future__ import annotations

from pathlib import Path

from conftest import FAKE_FAST, only_run_dir, run_cli
from sweeplab.reports.next_steps import grid_next_steps, run_next_steps, shown_path, sweep_next_steps


def test_a_finished_run_ends_with_its_folder_and_the_commands_that_open_it(tmp_path):
    done = run_cli("train.py", *FAKE_FAST, "trainer.max_epochs=1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    run_dir = only_run_dir(tmp_path / "outputs")
    relative = run_dir.relative_to(tmp_path)
    last = done.stdout.strip().splitlines()[-5:]
    assert last[0] == f"run folder: {relative}"
    assert last[1] == "next:"
    assert last[2].split("#")[0].strip() == f"tensorboard --logdir {relative}"
    assert last[3].split("#")[0].strip() == f"python compare.py {relative.parent}"
    assert last[4].split("#")[0].strip() == f"python predict.py {relative} IMAGES..."
    assert (tmp_path / relative / "checkpoints" / "best.ckpt").is_file()  # what predict.py would read is there


def test_paths_are_relative_below_the_current_folder_absolute_elsewhere_and_quoted(tmp_path):
    assert shown_path(tmp_path / "outputs" / "runs" / "x", cwd=tmp_path) == "outputs/runs/x"
    assert shown_path(Path("/elsewhere/run"), cwd=tmp_path) == "/elsewhere/run"
    assert shown_path(tmp_path / "my runs" / "a", cwd=tmp_path) == "'my runs/a'"


def test_a_cross_validation_is_not_offered_to_predict_and_grids_and_sweeps_name_their_folders(tmp_path):
    assert "predict.py" not in run_next_steps(tmp_path / "cv", predicts=False, cwd=tmp_path)
    grid = grid_next_steps(tmp_path / "multirun" / "t", cwd=tmp_path).splitlines()
    assert grid[0] == "grid folder: multirun/t (summary: multirun/t/summary.md)"
    assert grid[3].split("#")[0].strip() == "python compare.py multirun/t --plot curves.png"
    sweep = sweep_next_steps(tmp_path / "outputs" / "sweeps" / "s", cwd=tmp_path).splitlines()
    assert sweep[0] == "sweep folder: outputs/sweeps/s"
    assert sweep[2].split("#")[0].strip() == "tensorboard --logdir outputs/sweeps/s"


def test_a_grid_ends_with_its_folder_its_summary_and_the_commands_that_open_it(tmp_path):
    done = run_cli("train.py", "-m", "optimizer=sgd,adam", *FAKE_FAST, "trainer.max_epochs=1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    summaries = list((tmp_path / "outputs" / "multirun").rglob("summary.md"))
    assert len(summaries) == 1
    grid = summaries[0].parent.relative_to(tmp_path)
    last = done.stdout.strip().splitlines()[-5:]
    assert last[0] == f"grid folder: {grid} (summary: {grid / 'summary.md'})"
    assert last[3].split("#")[0].strip() == f"python compare.py {grid} --plot curves.png"
    assert last[4].split("#")[0].strip() == f"python predict.py {grid / '0'} IMAGES..."
    assert (tmp_path / grid / "0" / "checkpoints" / "best.ckpt").is_file()


def test_a_smoke_test_keeps_no_checkpoint_and_is_not_offered_to_predict(tmp_path):
    done = run_cli("train.py", *FAKE_FAST, "trainer.fast_dev_run=true", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    run_dir = only_run_dir(tmp_path / "outputs")
    last = done.stdout.strip().splitlines()[-4:]
    assert last[0] == f"run folder: {run_dir.relative_to(tmp_path)}"
    assert last[1] == "next:"
    assert "predict.py" not in done.stdout
    assert not (run_dir / "checkpoints" / "best.ckpt").exists()
