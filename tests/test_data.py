"""The data modules: splits, normalization, batching, augmentation, missing data."""

from __future__ import annotations

import pytest
import torch

from sweeplab.data.augment import BatchAugment
from sweeplab.data.datasets import FakeDataModule, MNISTDataModule
from sweeplab.data.loader import TensorBatches
from sweeplab.errors import ConfigError, DataNotFoundError


def fake(**kwargs) -> FakeDataModule:
    dm = FakeDataModule(**{"num_samples": 200, "num_test_samples": 50, **kwargs})
    dm.setup()
    return dm


def test_fake_data_has_the_requested_shape_and_classes():
    dm = fake(channels=3, size=32, num_classes=4)
    assert dm.in_shape == (3, 32, 32)
    assert dm.num_classes == 4
    assert dm.pool_images.shape == (200, 3, 32, 32)
    assert dm.test_images.shape == (50, 3, 32, 32)
    assert torch.bincount(dm.pool_labels).tolist() == [50, 50, 50, 50]


def test_holdout_split_is_seeded_disjoint_and_complete():
    a, b, c = fake(split_seed=1), fake(split_seed=1), fake(split_seed=2)
    assert torch.equal(a.val_indices, b.val_indices)
    assert not torch.equal(a.val_indices, c.val_indices)
    assert len(a.val_indices) == 20 and len(a.train_indices) == 180  # val_fraction 0.1
    assert set(a.train_indices.tolist()).isdisjoint(a.val_indices.tolist())
    assert sorted(a.train_indices.tolist() + a.val_indices.tolist()) == list(range(200))


def test_normalization_uses_the_training_pool_statistics():
    dm = fake(channels=3, size=8)
    assert dm.pool_images.dtype == torch.uint8  # a quarter of float32 in memory; batches are standardized
    per_channel_mean = dm.normalize(dm.pool_images).mean(dim=(0, 2, 3))
    per_channel_std = dm.normalize(dm.pool_images).std(dim=(0, 2, 3))
    assert torch.allclose(per_channel_mean, torch.zeros(3), atol=1e-4)
    assert torch.allclose(per_channel_std, torch.ones(3), atol=1e-3)
    assert dm.mean.shape == (3,) and (dm.std > 0).all()


def test_loader_covers_every_index_once_per_epoch_and_reshuffles():
    images, labels = torch.arange(10).float().view(10, 1, 1, 1), torch.arange(10)
    loader = TensorBatches(images, labels, torch.arange(10), batch_size=4, shuffle=True, seed=3)
    assert len(loader) == 3
    epoch0 = torch.cat([y for _, y in loader])
    again0 = torch.cat([y for _, y in loader])
    loader.set_epoch(1)
    epoch1 = torch.cat([y for _, y in loader])
    assert sorted(epoch0.tolist()) == list(range(10))
    assert torch.equal(epoch0, again0)  # the order depends on the epoch alone
    assert not torch.equal(epoch0, epoch1)


def test_loader_gives_ranks_different_batches_of_equal_count():
    images, labels = torch.zeros(16, 1, 1, 1), torch.arange(16)
    ranks = [TensorBatches(images, labels, torch.arange(16), 4, shuffle=True, rank=r, world_size=2) for r in (0, 1)]
    seen = [torch.cat([y for _, y in loader]).tolist() for loader in ranks]
    assert len(ranks[0]) == len(ranks[1]) == 2
    assert set(seen[0]).isdisjoint(seen[1]) and sorted(seen[0] + seen[1]) == list(range(16))


def test_augmentation_changes_images_but_keeps_their_shape():
    images = torch.rand(8, 1, 28, 28)
    out = BatchAugment(rotation=15, translate=2)(images)
    assert out.shape == images.shape
    assert not torch.allclose(out, images)
    assert BatchAugment()(images) is images  # disabled: untouched


def test_translation_by_whole_pixels_shifts_content():
    image = torch.zeros(1, 1, 9, 9)
    image[0, 0, 4, 4] = 1.0
    torch.manual_seed(0)
    shifted = BatchAugment(translate=2)(image.repeat(32, 1, 1, 1))
    peaks = shifted.flatten(1).argmax(dim=1)
    rows, cols = peaks // 9, peaks % 9
    assert ((rows - 4).abs() <= 2).all() and ((cols - 4).abs() <= 2).all()
    assert len(set(peaks.tolist())) > 1  # samples get different shifts


def test_val_fraction_that_leaves_nothing_is_refused():
    with pytest.raises(ConfigError, match="data.val_fraction"):
        fake(num_samples=10, val_fraction=0.01)


def test_missing_mnist_offline_says_how_to_point_at_local_files(tmp_path):
    dm = MNISTDataModule(data_dir=tmp_path, download=False)
    with pytest.raises(DataNotFoundError) as error:
        dm.prepare_data()
    message = str(error.value)
    assert "data.data_dir" in message and str(tmp_path) in message and "mnist-10k" in message


def test_real_mnist_loads_as_normalized_tensors(mnist_dir):
    dm = MNISTDataModule(data_dir=mnist_dir, download=False)
    dm.prepare_data()
    dm.setup()
    assert dm.in_shape == (1, 28, 28) and dm.num_classes == 10
    assert len(dm.pool_labels) == 8000 and len(dm.test_labels) == 2000
    assert torch.bincount(dm.test_labels).tolist() == [192, 229, 219, 210, 175, 181, 211, 203, 197, 183]
    assert abs(float(dm.normalize(dm.pool_images).mean())) < 1e-3
    assert 0.12 < float(dm.mean) < 0.14  # MNIST's mean pixel intensity, computed


def test_mnist_files_are_read_once_however_often_lightning_and_the_checks_ask(mnist_dir, monkeypatch):
    reads = []
    real_dataset = MNISTDataModule._dataset
    monkeypatch.setattr(
        MNISTDataModule,
        "_dataset",
        lambda self, train, download: reads.append(train) or real_dataset(self, train, download),
    )
    dm = MNISTDataModule(data_dir=mnist_dir, download=False)
    for _ in range(3):  # the run's check, Lightning's prepare_data, then one setup per stage
        dm.prepare_data()
        dm.setup("fit")
    assert sorted(reads) == [False, True]
    assert len(dm.pool_labels) + len(dm.test_labels) == sum(
        len(real_dataset(dm, train, False).targets) for train in (True, False)
    )
