"""The dataset families: MNIST-like, CIFAR-10, and synthetic images."""

from __future__ import annotations

from numbers import Integral, Real
from pathlib import Path

import torch
import torchvision
from torchvision.datasets.mnist import read_image_file, read_label_file

from sweeplab.constraints import Interval
from sweeplab.data.datamodule import InMemoryDataModule, RawSplits
from sweeplab.errors import DataDamagedError, DataNotFoundError


def _first_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:300] or type(error).__name__


class TorchvisionDataModule(InMemoryDataModule):
    """A dataset torchvision can read from ``data_dir`` (and download when online)."""

    dataset_cls: type | None = None  # set by each subclass
    expected_layout = ""
    image_shape: tuple[int, int, int] = (1, 28, 28)
    class_count = 10
    _splits_read = None  # (train, test) torchvision datasets, once read (_read_splits)

    def expected_shape(self) -> tuple[tuple[int, int, int], int]:
        return self._resized_shape(self.image_shape), self.class_count

    def _dataset(self, train: bool, download: bool):
        assert self.dataset_cls is not None, f"{type(self).__name__} names no dataset_cls"
        return self.dataset_cls(str(self.data_dir), train=train, download=download)

    def _read_splits(self):
        """The train and test datasets as torchvision reads them, read once per module: ``prepare_data``
        (Lightning's, and every run's check) and ``load`` would otherwise each read every file again."""
        if self._splits_read is None:
            self._splits_read = self._dataset(train=True, download=False), self._dataset(train=False, download=False)
        return self._splits_read

    def prepare_data(self) -> None:
        """Check the files are there, downloading them when allowed; fail with advice otherwise."""
        if self._present():
            return
        if self.download:
            try:
                self._dataset(train=True, download=True)
                self._dataset(train=False, download=True)
                return
            except Exception as error:  # no network, mirror down, disk full...
                reason = f"download failed ({type(error).__name__}: {' '.join(str(error).split())})"
        else:
            reason = "data.download=false"
        raise DataNotFoundError(
            f"{self.name} not found in data.data_dir={str(self.data_dir)!r} and {reason}. "
            f"Point data.data_dir (or the DATA_DIR environment variable) at a folder holding "
            f"{self.expected_layout}, e.g. data.data_dir=../shared/data/mnist-10k for MNIST offline."
        )

    def _present(self) -> bool:
        """Whether torchvision finds the files (damaged ones count as present: :meth:`load` names them)."""
        try:
            self._read_splits()
        except RuntimeError as error:
            return "not found" not in str(error)
        except Exception:  # noqa: BLE001 (a damaged file)
            return True
        return True

    def load(self) -> RawSplits:
        self.prepare_data()
        try:
            train, test = self._read_splits()
        except Exception as error:  # noqa: BLE001 (truncated, a foreign header, not the format at all)
            raise DataDamagedError(f"{self.name} in data.data_dir={str(self.data_dir)!r} cannot be read: "
                                   f"{self.damaged_file() or self.expected_layout}: {_first_line(error)}") from None
        splits = RawSplits(self._images(train), torch.as_tensor(train.targets), self._images(test),
                           torch.as_tensor(test.targets), list(train.classes))
        for split, labels in (("train", splits.train_labels), ("test", splits.test_labels)):
            if len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < len(splits.classes):
                raise DataDamagedError(f"{self.name} in data.data_dir={str(self.data_dir)!r}: the {split} labels "
                                       f"({self.label_file(split == 'train') or split}) go from {int(labels.min())} to "
                                       f"{int(labels.max())}, outside the {len(splits.classes)} classes 0 to "
                                       f"{len(splits.classes) - 1}")
        return splits

    def damaged_file(self) -> str | None:
        """The first file of the dataset that cannot be read, where the family can tell."""
        return None

    def source_files(self) -> list[Path]:
        """The files torchvision reads: every file of the dataset's folder (``MNIST/raw/``, ``cifar-10-batches-py/``)."""
        folder = self.data_dir / self.source_folder()
        return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".gz")) if folder.is_dir() else []

    def source_folder(self) -> str:
        return self.expected_layout.split("/")[0]

    def label_file(self, train: bool) -> str | None:
        return None

    @staticmethod
    def _images(dataset) -> torch.Tensor:
        return torch.as_tensor(dataset.data).unsqueeze(1)  # (N, H, W) uint8 -> (N, 1, H, W)


class MNISTDataModule(TorchvisionDataModule):
    """MNIST handwritten digits, 1x28x28, 10 classes."""

    name = "mnist"
    dataset_cls = torchvision.datasets.MNIST
    expected_layout = "MNIST/raw/*-ubyte(.gz)"

    def _raw_file(self, train: bool, kind: str) -> Path:
        folder = self.data_dir / self.dataset_cls.__name__ / "raw"  # torchvision's MNIST.raw_folder
        return folder / f"{'train' if train else 't10k'}-{kind}"

    def label_file(self, train: bool) -> str:
        return str(self._raw_file(train, "labels-idx1-ubyte"))

    def source_files(self) -> list[Path]:
        return [self._raw_file(train, kind) for train in (True, False) for kind in ("images-idx3-ubyte", "labels-idx1-ubyte")]

    def damaged_file(self) -> str | None:
        for train in (True, False):
            for kind, read in (("images-idx3-ubyte", read_image_file), ("labels-idx1-ubyte", read_label_file)):
                try:
                    read(str(self._raw_file(train, kind)))
                except Exception:  # noqa: BLE001
                    return str(self._raw_file(train, kind))
        return None


class FashionMNISTDataModule(MNISTDataModule):
    """Fashion-MNIST clothing images, 1x28x28, 10 classes."""

    name = "fashion_mnist"
    dataset_cls = torchvision.datasets.FashionMNIST
    expected_layout = "FashionMNIST/raw/*-ubyte(.gz)"


class CIFAR10DataModule(TorchvisionDataModule):
    """CIFAR-10 colour images, 3x32x32, 10 classes."""

    name = "cifar10"
    dataset_cls = torchvision.datasets.CIFAR10
    expected_layout = "cifar-10-batches-py/"
    image_shape = (3, 32, 32)

    @staticmethod
    def _images(dataset) -> torch.Tensor:
        return torch.as_tensor(dataset.data).permute(0, 3, 1, 2).contiguous()  # NHWC -> NCHW


class FakeDataModule(InMemoryDataModule):
    """Synthetic images of any shape, for smoke tests and offline experiments.

    Each class has a random template image; a sample is its class template plus
    Gaussian noise (``noise``), so models can learn it, and a model that learns
    nothing stays at chance level. Generated from ``generator_seed``: the same
    arguments always give the same data.
    """

    name = "fake"
    parameter_constraints = {
        **InMemoryDataModule.parameter_constraints,
        "channels": [Interval(Integral, 1, None)],
        "size": [Interval(Integral, 4, None)],
        "num_classes": [Interval(Integral, 2, None)],
        "num_samples": [Interval(Integral, 2, None)],
        "num_test_samples": [Interval(Integral, 1, None)],
        "noise": [Interval(Real, 0, None)],
    }

    def __init__(
        self,
        channels: int = 1,
        size: int = 28,
        num_classes: int = 10,
        num_samples: int = 1000,
        num_test_samples: int = 200,
        noise: float = 1.0,
        generator_seed: int = 0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.channels, self.size, self.num_class_templates = int(channels), int(size), int(num_classes)
        self.num_samples, self.num_test_samples = int(num_samples), int(num_test_samples)
        self.noise, self.generator_seed = float(noise), int(generator_seed)

    def expected_shape(self) -> tuple[tuple[int, int, int], int]:
        return self._resized_shape((self.channels, self.size, self.size)), self.num_class_templates

    def load(self) -> RawSplits:
        generator = torch.Generator().manual_seed(self.generator_seed)
        shape = (self.channels, self.size, self.size)
        templates = torch.rand(self.num_class_templates, *shape, generator=generator)

        def sample(count: int) -> tuple[torch.Tensor, torch.Tensor]:
            labels = torch.arange(count) % self.num_class_templates  # balanced classes
            labels = labels[torch.randperm(count, generator=generator)]
            images = templates[labels] + self.noise * 0.25 * torch.randn(count, *shape, generator=generator)
            return (images.clamp(0, 1) * 255).round().to(torch.uint8), labels

        train_images, train_labels = sample(self.num_samples)
        test_images, test_labels = sample(self.num_test_samples)
        classes = [f"class_{i}" for i in range(self.num_class_templates)]
        return RawSplits(train_images, train_labels, test_images, test_labels, classes)
