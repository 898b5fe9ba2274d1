"""A trained model back from its run folder, ready to predict on new images: ``sweeplab.load_run``.

The run folder holds what it needs: the resolved config (the architecture), the best
checkpoint (the weights) and, saved with every checkpoint, the data's preprocessing
(classes, input shape, the normalisation statistics of the training pool). No dataset
is read. :meth:`TrainedModel.export` writes the model, normalisation included, as ONNX
or TorchScript for use without sweeplab.
"""

from __future__ import annotations

import importlib.util
import io
import tempfile
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from sweeplab.errors import ConfigError, UserInputError
from sweeplab.files import write_bytes_atomic
from sweeplab.runs.build import build_architecture
from sweeplab.runs.checkpoints import load_checkpoint
from sweeplab.runs.folder import MODEL_EXPORTS, RunFolder, require_run_config
from sweeplab.safe_read import read_image_pixels

MODEL_PREFIX = "model."  # the LightningModule holds the architecture as ``self.model``
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff")


def load_run_config(run_dir: str | Path, overrides: Sequence[str] = ()) -> DictConfig:
    """``RUN_DIR/.hydra/config.yaml`` with ``key=value`` overrides (a moved ``data.data_dir``, say)."""
    path = require_run_config(run_dir)
    for override in overrides:
        if "=" not in override:
            raise ConfigError("override", override, "KEY=VALUE, e.g. data.data_dir=../shared/data/mnist-10k")
    try:
        cfg = OmegaConf.load(path)
        if not isinstance(cfg, DictConfig):
            raise UserInputError(f"{path} is not a run's config (not a mapping)")
        return cast(DictConfig, OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))) if overrides else cfg
    except UserInputError:
        raise
    except Exception as error:  # noqa: BLE001 (YAML and OmegaConf errors of a damaged file)
        with_overrides = f" with overrides {list(overrides)}" if overrides else ""
        raise UserInputError(f"cannot read {path}{with_overrides}: {' '.join(str(error).split())[:300]}") from None


def best_checkpoint(run_dir: str | Path) -> dict:
    path = RunFolder(run_dir).best_checkpoint
    if not path.is_file():
        raise UserInputError(f"no checkpoint at {path}: the run saved none (did it finish an epoch?)")
    return load_checkpoint(path)


def architecture_weights(checkpoint: dict) -> dict[str, torch.Tensor]:
    """The architecture's weights in a Lightning checkpoint (the ``model.`` entries, unprefixed)."""
    state = checkpoint["state_dict"]
    return {key[len(MODEL_PREFIX) :]: value for key, value in state.items() if key.startswith(MODEL_PREFIX)}


def restore_architecture(cfg: DictConfig, weights: dict, in_shape, num_classes: int, source: Path) -> nn.Module:
    model = build_architecture(cfg, in_shape, num_classes)
    try:
        model.load_state_dict(weights)
    except RuntimeError as error:
        raise UserInputError(
            f"{source} does not fit the model of its run's config: {' '.join(str(error).split())[:300]}"
        ) from None
    return model.eval()


class Normalized(nn.Module):
    """The model with the run's preprocessing in front: images in [0, 1], (N, C, H, W), to logits."""

    mean: torch.Tensor  # buffers (register_buffer)
    std: torch.Tensor

    def __init__(self, model: nn.Module, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", mean.view(1, -1, 1, 1))
        self.register_buffer("std", std.view(1, -1, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model((images - self.mean) / self.std)


@dataclass
class TrainedModel:
    """A run's trained architecture (eval mode, CPU) with its classes and preprocessing."""

    run_dir: Path
    cfg: DictConfig
    model: nn.Module
    classes: list[str]
    in_shape: tuple[int, int, int]
    mean: torch.Tensor
    std: torch.Tensor

    @property
    def normalized(self) -> Normalized:
        return Normalized(self.model, self.mean, self.std).eval()

    def load_images(self, paths: Iterable[str | Path]) -> torch.Tensor:
        """Image files as a (N, C, H, W) batch in [0, 1], converted to the run's channels and size by the
        conversion its training data went through (:func:`sweeplab.safe_read.image_pixels`)."""
        channels, height, width = self.in_shape
        batch = []
        for path in paths:
            pixels = read_image_pixels(path, channels, (width, height))  # a file it cannot read: one line naming it
            tensor = torch.from_numpy(pixels.copy())
            batch.append((tensor.unsqueeze(0) if channels == 1 else tensor.permute(2, 0, 1)).float() / 255)
        return torch.stack(batch) if batch else torch.zeros(0, *self.in_shape)

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Class probabilities (N, classes) for images in [0, 1] of the run's input shape."""
        return torch.softmax(self.normalized(images), dim=1)

    def export(self, fmt: str, path: str | Path | None = None) -> Path:
        """Write the normalised model as ``onnx`` or ``torchscript`` (default: ``RUN_DIR/model.onnx``, ``.pt``).
        The file is written whole or not at all; a missing folder is made, one that cannot be written is
        refused in one line naming the path."""
        if fmt not in MODEL_EXPORTS:
            raise ConfigError("--export", fmt, f"one of {', '.join(MODEL_EXPORTS)}")
        path = Path(path) if path else self.run_dir / MODEL_EXPORTS[fmt]
        if path.is_dir():
            raise UserInputError(f"--out {path} is a folder: name the file to write, e.g. {path / MODEL_EXPORTS[fmt]}")
        if fmt == "onnx" and importlib.util.find_spec("onnxscript") is None:  # torch's ONNX exporter needs it
            raise UserInputError("--export onnx needs the onnx extra: pip install 'sweeplab[onnx]'")
        files = {path.name: self._torchscript_bytes()} if fmt == "torchscript" else self._onnx_files(path.name)
        try:
            for name, content in files.items():
                write_bytes_atomic(path.parent / name, content)
            return path
        except OSError as error:
            raise UserInputError(
                f"cannot write the exported model to {path}: {error.strerror or error} "
                "(name a file in a folder you can write with --out)"
            ) from None

    def _torchscript_bytes(self) -> bytes:
        buffer = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated, TorchScript still read
            torch.jit.save(torch.jit.trace(self.normalized, torch.rand(2, *self.in_shape)), buffer)
        return buffer.getvalue()

    def _onnx_files(self, name: str) -> dict[str, bytes]:
        """The files torch's exporter writes for ``name`` (the model, and its weights as ``NAME.data``), by name."""
        with tempfile.TemporaryDirectory(prefix="sweeplab-onnx-") as folder:
            torch.onnx.export(
                self.normalized,
                (torch.rand(2, *self.in_shape),),
                str(Path(folder) / name),
                input_names=["images"],
                output_names=["logits"],
                dynamic_shapes={"images": {0: torch.export.Dim("batch")}},
                verbose=False,
            )
            return {file.name: file.read_bytes() for file in sorted(Path(folder).iterdir()) if file.is_file()}


def load_run(run_dir: str | Path, overrides: Sequence[str] = ()) -> TrainedModel:
    """The run's trained model, from its config and best checkpoint, ready to :meth:`~TrainedModel.predict`."""
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir, overrides)
    checkpoint = best_checkpoint(run_dir)
    data = checkpoint.get("sweeplab_data")
    if not data:
        raise UserInputError(
            f"{RunFolder(run_dir).best_checkpoint} holds no preprocessing (saved by sweeplab since "
            "version 0.2): train the run again to predict with it"
        )
    in_shape = cast(tuple[int, int, int], tuple(int(v) for v in data["in_shape"]))
    model = restore_architecture(
        cfg, architecture_weights(checkpoint), in_shape, len(data["classes"]), RunFolder(run_dir).best_checkpoint
    )
    return TrainedModel(
        run_dir,
        cfg,
        model,
        list(data["classes"]),
        in_shape,
        torch.tensor(data["mean"], dtype=torch.float32),
        torch.tensor(data["std"], dtype=torch.float32),
    )
