"""Any folder of images in the layout ``torchvision.datasets.ImageFolder`` reads: ``data=folder``.

``ROOT/train/CLASS/*.png`` (also jpg, jpeg, bmp, webp), ``ROOT/test/CLASS/*`` and, when
present, ``ROOT/val/CLASS/*`` (used instead of a random validation split). Class
names are the folder names, in the same order in every split. Every split is converted to the
run's shape (``data.channels`` and ``data.size``, else the training images' own) by the one
conversion of :func:`sweeplab.safe_read.image_pixels`, which prediction uses too. The images are decoded
once, in parallel, into a uint8 tensor cached under ``cache_dir`` by a fingerprint of
the file list (names, sizes, modification times) and the conversion asked for, so the
next run with the same folder starts without decoding.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from numbers import Integral
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from tqdm import tqdm

from sweeplab.constraints import Interval, NoneValue, Options
from sweeplab.data.datamodule import InMemoryDataModule, RawSplits
from sweeplab.errors import DataDamagedError, DataNotFoundError
from sweeplab.files import write_bytes_atomic
from sweeplab.safe_read import CONVERSION_VERSION, UnreadableFile, image_channels, open_image, read_image_pixels

SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
SPLITS = ("train", "val", "test")

log = logging.getLogger(__name__)
_Value = TypeVar("_Value")  # what every image must agree on: channels, size


class FolderDataModule(InMemoryDataModule):
    """Your own images, one folder per class (see the module docstring).

    Args:
        size: resize every image to ``size`` x ``size`` (needed when the images differ in size).
        channels: 1 (grayscale) or 3 (RGB); None: the images' own (needed when they differ).
        cache_dir: where the decoded tensors are kept.
        workers: decoding threads (None: one per CPU).
    """

    name = "folder"
    parameter_constraints = {
        **InMemoryDataModule.parameter_constraints,
        "size": [NoneValue(), Interval(Integral, 4, None)],
        "channels": [NoneValue(), Options((1, 3))],
        "workers": [NoneValue(), Interval(Integral, 1, None)],
    }

    def __init__(self, size: int | None = None, channels: int | None = None, cache_dir: str | Path = "outputs/cache",
                 workers: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.size, self.channels = size, channels
        self.cache_dir, self.workers = Path(cache_dir), workers or os.cpu_count() or 1
        self.fixed_val_split: tuple[torch.Tensor, torch.Tensor] | None = None
        self.listed: dict[str, list[tuple[Path, int]]] | None = None

    def files(self) -> dict[str, list[tuple[Path, int]]]:
        """Every split's image files with their class index; refuses missing and empty class folders.
        Listed once per data module (checking, loading and fingerprinting all ask)."""
        if self.listed is None:
            self.listed = self._list_files()
        return self.listed

    def _list_files(self) -> dict[str, list[tuple[Path, int]]]:
        root = self.data_dir
        if not (root / "train").is_dir() or not (root / "test").is_dir():
            raise DataNotFoundError(f"data.data_dir={str(root)!r} must hold train/CLASS/* and test/CLASS/* image "
                                    "folders (and optionally val/CLASS/*), as torchvision's ImageFolder reads them")
        classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
        if len(classes) < 2:
            raise DataNotFoundError(f"{root / 'train'} must hold a folder per class, at least two; found {classes}")
        found: dict[str, list[tuple[Path, int]]] = {}
        for split in SPLITS:
            if not (root / split).is_dir():
                continue
            split_classes = sorted(p.name for p in (root / split).iterdir() if p.is_dir())
            if split_classes != classes:
                missing = sorted(set(classes) - set(split_classes)) or sorted(set(split_classes) - set(classes))
                raise DataNotFoundError(f"{root / split} must have the same class folders as {root / 'train'}: "
                                        f"{', '.join(missing)} differ")
            found[split] = []
            for label, name in enumerate(classes):
                images = sorted(p for p in (root / split / name).iterdir() if p.suffix.lower() in SUFFIXES)
                if not images:
                    raise DataNotFoundError(f"{root / split / name} holds no image ({', '.join(SUFFIXES)})")
                found[split] += [(path, label) for path in images]
        self.classes = classes
        return found

    def prepare_data(self) -> None:
        self.files()

    def expected_shape(self) -> None:
        return None  # only the images can tell

    def source_files(self) -> list[Path]:
        return [path for items in self.files().values() for path, _ in items]

    def cache_key(self, files: dict[str, list[tuple[Path, int]]]) -> str:
        """The decoded tensors' key: the file list (names, sizes, mtimes) and the conversion asked for."""
        digest = hashlib.sha256(f"{self.size}:{self.channels}:conversion{CONVERSION_VERSION}".encode())
        for split, items in files.items():
            for path, label in items:
                stat = path.stat()
                digest.update(f"{split}/{path.relative_to(self.data_dir)}:{label}:{stat.st_size}:{stat.st_mtime_ns}".encode())
        return digest.hexdigest()[:16]

    def load(self) -> RawSplits:
        files = self.files()
        cache = self.cache_dir / f"folder-{self.cache_key(files)}.pt"
        decoded = _read_cache(cache)
        if decoded is None:
            channels, size = self.run_shape(files["train"])
            decoded = {split: self._decode(items, split, channels, size) for split, items in files.items()}
            _write_cache(cache, decoded)
        train_images, train_labels = decoded["train"]
        if "val" in decoded:  # the folder's own validation split: the pool is train + val
            val_images, val_labels = decoded["val"]
            n_train, n_val = len(train_labels), len(val_labels)
            self.fixed_val_split = (torch.arange(n_train), torch.arange(n_train, n_train + n_val))
            train_images, train_labels = torch.cat([train_images, val_images]), torch.cat([train_labels, val_labels])
        test_images, test_labels = decoded["test"]
        return RawSplits(train_images, train_labels, test_images, test_labels, list(self.classes))

    def holdout_split(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.fixed_val_split if self.fixed_val_split is not None else super().holdout_split()

    def run_shape(self, train: list[tuple[Path, int]]) -> tuple[int, tuple[int, int]]:
        """``(channels, (width, height))`` every split is converted to: ``data.channels`` and ``data.size`` where
        set, else the training images' own (read off their headers: they must agree). Validation, test and
        predicted images of another size or mode are brought to it by the same conversion."""
        channels, size = self.channels, (self.size, self.size) if self.size else None
        if channels is None or size is None:
            paths = [path for path, _ in train]
            with ThreadPoolExecutor(self.workers) as pool:
                headers = list(pool.map(_header, paths))
            channels = channels or self._agreed("channels", paths, [h[0] for h in headers])
            size = size or self._agreed("size", paths, [h[1] for h in headers])
        return channels, size

    def _decode(self, items: list[tuple[Path, int]], split: str, channels: int,
                size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """The split's images as one (N, C, H, W) uint8 tensor of the run's shape, decoded in parallel threads."""
        paths = [path for path, _ in items]
        with ThreadPoolExecutor(self.workers) as pool:
            decoded = list(tqdm(pool.map(lambda path: _pixels(path, channels, size), paths), total=len(paths),
                                desc=f"decoding {split} images", unit="img", leave=False, mininterval=1))
        arrays = [array for array, _ in decoded]
        self.known_file_hashes.update((os.path.abspath(path), sha) for path, (_, sha) in zip(paths, decoded))
        images = torch.from_numpy(np.stack(arrays))
        images = images.unsqueeze(1) if channels == 1 else images.permute(0, 3, 1, 2)
        return images.contiguous(), torch.tensor([label for _, label in items])

    def _agreed(self, what: str, paths: list[Path], values: list[_Value]) -> _Value:
        """The value every image has; else an error naming two that differ and the key that converts them."""
        first = values[0]
        for path, value in zip(paths, values, strict=True):
            if value != first:
                raise DataDamagedError(f"the images of {self.data_dir} differ in {what} ({paths[0]}: {first}, {path}: "
                                       f"{value}); set data.{what} to convert them all")
        return first


def _read_cache(cache: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]] | None:
    """The decoded splits of an earlier run, or None: none yet, or a damaged file (then decoded again)."""
    if not cache.is_file():
        return None
    try:
        return torch.load(cache, weights_only=True)
    except Exception as error:  # noqa: BLE001 (a truncated or foreign file: the images themselves are intact)
        log.warning("decoding the images again: the cache %s cannot be read (%s)", cache, " ".join(str(error).split())[:200])
        return None


def _write_cache(cache: Path, decoded: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Keep the decoded splits for the next run; a cache that cannot be written (read-only, full) costs
    only that next run's decoding, so this run goes on."""
    buffer = io.BytesIO()
    torch.save(decoded, buffer)
    try:
        write_bytes_atomic(cache, buffer.getvalue())
    except OSError as error:
        log.warning("could not keep the decoded images (%s): the next run decodes them again; "
                    "set data.cache_dir to a writable folder", error)


def _header(path: Path) -> tuple[int, tuple[int, int]]:
    """(channels, (width, height)) from the file's header: nothing is decoded."""
    try:
        with open_image(path) as image:
            return image_channels(image.mode), image.size
    except UnreadableFile as error:
        raise DataDamagedError(str(error)) from None


def _pixels(path: Path, channels: int, size: tuple[int, int]) -> tuple[np.ndarray, str]:
    """The image's pixels by the one conversion (:func:`sweeplab.safe_read.image_pixels`), and the sha256 of
    its file (read once: the data fingerprint needs no second read)."""
    try:
        content = path.read_bytes()
    except OSError as error:
        raise DataDamagedError(f"{path} cannot be read: {error.strerror}") from None
    try:
        return read_image_pixels(path, channels, size, content), hashlib.sha256(content).hexdigest()
    except UnreadableFile as error:
        raise DataDamagedError(str(error)) from None
