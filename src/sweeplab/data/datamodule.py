"""The LightningDataModule all datasets share: tensors in memory, seeded splits, folds."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path
from typing import cast

import lightning.pytorch as pl
import torch
import torch.nn.functional as F

from sweeplab.constraints import Interval, NoneValue, Options
from sweeplab.data.augment import BatchAugment
from sweeplab.data.fingerprint import files_fingerprint, tensors_fingerprint
from sweeplab.data.loader import TensorBatches
from sweeplab.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class RawSplits:
    """What a dataset family loads: uint8 images (N, C, H, W) and int64 labels."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    classes: list[str]


def channel_statistics(images: torch.Tensor, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation of uint8 images in [0, 1] units, without a float copy of them all."""
    total = torch.zeros(images.shape[1], dtype=torch.float64)
    squares, count = torch.zeros_like(total), 0
    for part in images.split(chunk):
        values = part.to(torch.float64).div_(255.0)
        total += values.sum(dim=(0, 2, 3))
        squares += values.square().sum(dim=(0, 2, 3))
        count += values.numel() // values.shape[1]
    mean = total / count
    std = ((squares - count * mean.square()) / max(count - 1, 1)).clamp_min(0).sqrt()
    return mean.float(), std.float().clamp_min(1e-6)


class InMemoryDataModule(pl.LightningDataModule):
    """Decodes a dataset once into uint8 tensors and serves batches by indexing.

    The *training pool* is split into train and validation parts with a seeded
    permutation (``val_fraction``), or by explicit indices for k-fold
    cross-validation (:meth:`use_split`). The test set is never touched by either.
    Images stay uint8 in memory (a quarter of float32: 184 MB for CIFAR-10); each
    batch is scaled to [0, 1] and standardized on its device with the per-channel
    mean and standard deviation of the training pool, computed rather than typed
    in (:meth:`normalize`). Augmentation is applied to training batches after that.

    Subclasses implement :meth:`load` (and may override :meth:`prepare_data`).
    """

    name = "dataset"
    # what each argument may be, beyond its type hint (sweeplab.constraints); checked before any data is read
    parameter_constraints = {
        "batch_size": [Interval(Integral, 1, None)],
        "eval_batch_size": [Interval(Integral, 1, None)],
        "val_fraction": [Interval(Real, 0, 1, closed="neither")],
        "split_seed": [Interval(Integral, 0, None)],
        "resize": [NoneValue(), Interval(Integral, 8, None)],
        "on_device": [Options(("auto", True, False))],
        "augment": BatchAugment.parameter_constraints,  # checked key by key: data.augment.rotation
    }

    def __init__(
        self,
        data_dir: str | Path = "data",
        batch_size: int = 64,
        eval_batch_size: int = 1000,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        resize: int | None = None,
        augment: Mapping | None = None,
        download: bool = True,
        on_device: bool | str = "auto",
    ) -> None:
        super().__init__()
        self.data_dir = Path(data_dir).expanduser()
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size)
        self.val_fraction = float(val_fraction)
        self.split_seed = int(split_seed)
        self.resize = int(resize) if resize else None
        self.augment = BatchAugment(**dict(augment or {}))
        self.download = bool(download)
        self.on_device = on_device  # True, False or "auto" (on accelerators only)
        self.pool_images: torch.Tensor | None = None
        self.known_file_hashes: dict[str, str] = {}  # absolute path -> sha256 of files load() read whole anyway
        self.fingerprint: dict | None = None  # data_fingerprint()'s
        self.train_indices: torch.Tensor | None = None
        self.val_indices: torch.Tensor | None = None
        self.dropped_single_said = False

    # --- what subclasses provide -------------------------------------------------
    def load(self) -> RawSplits:
        raise NotImplementedError

    def source_files(self) -> list[Path] | None:
        """The files :meth:`load` reads, or None for data made in memory."""
        return None

    # --- provenance --------------------------------------------------------------
    def data_fingerprint(self, cache_dir: Path | None) -> dict:
        """The sha256 of what this module read (its files, cached in ``cache_dir``; else its tensors), once set up;
        computed once per module (the folds and the refit of a cross-validation share one)."""
        if self.fingerprint is None:
            files = self.source_files()
            tensors = cast(list[torch.Tensor], [self.pool_images, self.pool_labels, self.test_images, self.test_labels])
            self.fingerprint = (tensors_fingerprint(tensors)
                                if files is None else files_fingerprint(files, cache_dir, known=self.known_file_hashes))
        return self.fingerprint

    # --- loading -----------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        """Load once (later calls, one per stage, are no-ops): uint8 images in memory, float per batch."""
        if self.pool_images is not None:
            return
        raw = self.load()
        self.classes = list(raw.classes)
        self.pool_images, self.test_images = self._resized(raw.train_images), self._resized(raw.test_images)
        self.mean, self.std = channel_statistics(self.pool_images)
        self.pool_labels, self.test_labels = raw.train_labels.long(), raw.test_labels.long()
        if self.train_indices is None:
            self.train_indices, self.val_indices = self.holdout_split()

    def _resized(self, images: torch.Tensor) -> torch.Tensor:
        """``images`` (uint8) at ``resize`` x ``resize``, resampled in float and rounded back to uint8."""
        if not self.resize or images.shape[-1] == self.resize == images.shape[-2]:
            return images
        return torch.cat([F.interpolate(chunk.float(), size=(self.resize, self.resize), mode="bilinear",
                                        align_corners=False).round_().clamp_(0, 255).to(torch.uint8)
                          for chunk in images.split(1024)])

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images (as stored) as the float inputs the model trains on: scaled to [0, 1], standardized."""
        if self.mean.device != images.device:  # once, not a copy per batch
            self.mean, self.std = self.mean.to(images.device), self.std.to(images.device)
        return (images.float().div_(255.0) - self.mean.view(1, -1, 1, 1)) / self.std.view(1, -1, 1, 1)

    # --- splits ------------------------------------------------------------------
    def holdout_split(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A seeded random train/validation split of the training pool."""
        n = len(self.pool_labels)
        n_val = round(n * self.val_fraction)
        if not 0 < n_val < n:
            raise ConfigError("data.val_fraction", self.val_fraction, f"leaves no train or no validation samples out of {n}")
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.split_seed))
        return order[n_val:].sort().values, order[:n_val].sort().values

    def use_split(self, train_indices, val_indices) -> None:
        """Train and validate on explicit pool indices (one fold of a k-fold split)."""
        self.train_indices = torch.as_tensor(train_indices, dtype=torch.long)
        self.val_indices = torch.as_tensor(val_indices, dtype=torch.long)

    # --- what models need to know --------------------------------------------------
    @property
    def in_shape(self) -> tuple[int, int, int]:
        assert self.pool_images is not None, "the shape is known once the data module is set up"
        return cast(tuple[int, int, int], tuple(self.pool_images.shape[1:]))

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def preprocessing(self) -> dict:
        """What a trained model needs to read new images as this data module fed it (saved in checkpoints)."""
        return {"dataset": self.name, "classes": list(self.classes), "in_shape": list(self.in_shape),
                "mean": self.mean.tolist(), "std": self.std.tolist()}

    def expected_shape(self) -> tuple[tuple[int, int, int], int] | None:
        """``(in_shape, num_classes)`` known before any data is read, so that the model can be
        built and checked first; None when only the data can tell (subclasses that know say)."""
        return None

    def _resized_shape(self, shape: tuple[int, int, int]) -> tuple[int, int, int]:
        return (shape[0], self.resize, self.resize) if self.resize else cast(tuple[int, int, int], tuple(shape))

    # --- loaders -----------------------------------------------------------------
    def _device_tensors(self, images: torch.Tensor, labels: torch.Tensor):
        """Move a dataset to the training device once, so batches never cross the bus."""
        if self.trainer is None or not self.on_device:
            return images, labels
        device = self.trainer.strategy.root_device
        if self.on_device == "auto" and device.type == "cpu":
            return images, labels
        return images.to(device), labels.to(device)

    def _batches(self, images, labels, indices, batch_size, shuffle: bool) -> TensorBatches:
        images, labels = self._device_tensors(images, labels)
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        return TensorBatches(
            images, labels, indices, batch_size,
            # after seed_everything(seed) the initial seed is the run's seed
            shuffle=shuffle, seed=torch.initial_seed() % 2**31, rank=rank, world_size=world,
        )

    def train_dataloader(self) -> TensorBatches:
        """The training batches; a last batch of a single image is dropped (batch norm cannot train on one
        image, and one image of a shuffled epoch is not missed): said once, in one log line."""
        batches = self._batches(self.pool_images, self.pool_labels, self.train_indices, self.batch_size, shuffle=True)
        if batches.last_batch_size() == 1 and len(batches) > 1:
            batches.drop_last = True
            if not self.dropped_single_said:
                self.dropped_single_said = True
                log.info("each training epoch leaves out its last batch: of %d images in batches of %d it would hold "
                         "a single one, which batch norm cannot train on", batches.shard_size(), batches.batch_size)
        return batches

    def val_dataloader(self) -> TensorBatches:
        return self._batches(self.pool_images, self.pool_labels, self.val_indices, self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> TensorBatches:
        indices = torch.arange(len(self.test_labels))
        return self._batches(self.test_images, self.test_labels, indices, self.eval_batch_size, shuffle=False)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        """Standardize every batch once on its device; augment training batches."""
        images, labels = batch
        images = self.normalize(images)
        if self.trainer is not None and self.trainer.training and self.augment.enabled:
            images = self.augment(images)
        return images, labels
