"""visualize.py: a trained conv net's kernels and feature maps, and fixed kernels on the same image."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from matplotlib.image import imread
from omegaconf import OmegaConf

from conftest import FAKE_FAST, compose_config, run_cli
from sweeplab.cli.visualize import main as visualize
from sweeplab.errors import UserInputError
from sweeplab.reports.fixed_kernels import FIXED_KERNELS, apply_fixed_kernels, apply_kernel
from sweeplab.reports.run_model import load_run_model
from sweeplab.reports.visualize import visualize_run
from sweeplab.runs.fit import fit

IMAGES = ("kernels.png", "feature_maps.png", "fixed_kernels.png")


def _trained_run(root: Path, model: str) -> Path:
    """A run folder as train.py leaves it: config in .hydra/, checkpoints, results."""
    cfg = compose_config(FAKE_FAST + [f"model={model}", "trainer.max_epochs=1"])
    assert fit(cfg, root).status == "completed"
    (root / ".hydra").mkdir()
    OmegaConf.save(cfg, root / ".hydra" / "config.yaml")
    return root


@pytest.fixture(scope="module")
def lenet_run(tmp_path_factory) -> Path:
    return _trained_run(tmp_path_factory.mktemp("lenet"), "lenet")


def _conv_weights(run_dir: Path) -> list[torch.Tensor]:
    """The conv kernels (4-D weights) in the best checkpoint, in order."""
    state = torch.load(run_dir / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    return [w for key, w in state.items() if key.startswith("model.") and key.endswith(".weight") and w.ndim == 4]


def test_visualize_writes_one_tile_per_filter_and_per_channel(lenet_run, tmp_path):
    result = visualize_run(lenet_run, out_dir=tmp_path)
    assert [p.name for p in result.files] == list(IMAGES)
    for name in IMAGES:
        height, width, _ = imread(tmp_path / name).shape
        assert height >= 100 and width >= 200, name
    weights = _conv_weights(lenet_run)
    assert len(weights) == 2  # LeNet-5
    assert result.kernel_layout.tiles == weights[0].shape[0]
    assert [layout.tiles for layout in result.feature_map_layouts] == [w.shape[0] for w in weights]
    for layout in [result.kernel_layout, *result.feature_map_layouts]:
        assert layout.rows * layout.cols >= layout.tiles > (layout.rows - 1) * layout.cols


def test_the_rebuilt_model_has_the_checkpoint_weights(lenet_run):
    restored = load_run_model(lenet_run)
    convs = [m.weight for m in restored.model.modules() if isinstance(m, torch.nn.Conv2d)]
    for loaded, saved in zip(convs, _conv_weights(lenet_run), strict=True):
        assert torch.equal(loaded, saved)
    assert not restored.model.training


def test_the_command_writes_into_the_run_folder(lenet_run, capsys):
    visualize([str(lenet_run), "--image", "3"])
    assert [Path(line).name for line in capsys.readouterr().out.split()] == list(IMAGES)
    assert all((lenet_run / name).is_file() for name in IMAGES)
    with pytest.raises(SystemExit) as stopped:
        visualize([str(lenet_run), "data.batch_size"])
    assert stopped.value.code == 2 and "override='data.batch_size' is invalid: KEY=VALUE" in capsys.readouterr().err


def test_the_root_script_refuses_a_missing_run_in_one_line(tmp_path):
    missing = run_cli("visualize.py", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.strip().count("\n") == 0 and "nowhere" in missing.stderr


def test_bad_inputs_are_refused_with_one_line(lenet_run, tmp_path):
    with pytest.raises(UserInputError, match="--image=64 is invalid: an index into the 64 test images"):
        visualize_run(lenet_run, image_index=64, out_dir=tmp_path)
    with pytest.raises(UserInputError, match="has no .hydra/config.yaml"):
        visualize_run(tmp_path)
    with pytest.raises(UserInputError, match="does not exist"):
        visualize_run(tmp_path / "nowhere")
    mlp = _trained_run(tmp_path / "mlp", "mlp")
    with pytest.raises(UserInputError, match="model MLP has no Conv2d layer"):
        visualize_run(mlp, out_dir=tmp_path)
    assert not any(tmp_path.glob("*.png"))


def test_fixed_kernels_do_what_their_names_say():
    flat = torch.full((1, 6, 6), 0.7)
    filtered = apply_fixed_kernels(flat)
    assert set(filtered) == set(FIXED_KERNELS)
    assert torch.allclose(filtered["box blur"], flat) and torch.allclose(filtered["sharpen"], flat)
    for name in ("edges (Sobel x)", "edges (Sobel y)", "edges (Laplacian)"):
        assert torch.allclose(filtered[name], torch.zeros_like(flat), atol=1e-6), name

    step = torch.zeros(1, 6, 6)
    step[..., 3:] = 1.0  # a vertical edge between columns 2 and 3
    across = apply_kernel(step, FIXED_KERNELS["edges (Sobel x)"])
    along = apply_kernel(step, FIXED_KERNELS["edges (Sobel y)"])
    assert across.shape == step.shape
    assert across[0, :, 2:4].min() > 0 and across[0, :, [0, 5]].abs().max() == 0
    assert along.abs().max() == 0


def test_fixed_kernels_filter_each_colour_channel_alike():
    image = torch.rand(1, 8, 8).expand(3, 8, 8)
    blurred = apply_kernel(image, FIXED_KERNELS["box blur"])
    assert blurred.shape == (3, 8, 8) and torch.allclose(blurred[0], blurred[2])
