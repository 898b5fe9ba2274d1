"""data=folder (your own images, ImageFolder layout) and the full-size real datasets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from PIL import Image

from conftest import REPO, compose_config, run_cli
from sweeplab.data.folder import FolderDataModule
from sweeplab.errors import DataDamagedError, DataNotFoundError
from sweeplab.runs.fit import fit

SHARED = REPO.parent / "shared" / "data"
CIFAR_JPEG, FULL_MNIST = SHARED / "cifar10-jpeg", SHARED / "mnist"


def _image(path: Path, size: tuple[int, int], mode: str, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode == "L" else (value, value, value)).save(path)


def _folder(root: Path, counts: dict[str, int] | None = None, splits=("train", "test")) -> Path:
    """Two classes of small images, of mixed sizes and modes: class a dark, class b bright."""
    for split in splits:
        for name, value in (("a", 30), ("b", 220)):
            for i in range((counts or {}).get(split, 6)):
                size, mode = ((20, 20), "L") if i % 2 else ((28, 24), "RGB")
                _image(root / split / name / f"{i}.png", size, mode, value + i)
    return root


def _module(root: Path, tmp_path: Path, **kwargs) -> FolderDataModule:
    module = FolderDataModule(data_dir=root, cache_dir=tmp_path / "cache", val_fraction=0.25, **kwargs)
    module.setup()
    return module


def test_mixed_sizes_and_modes_are_converted_to_what_is_asked(tmp_path):
    root = _folder(tmp_path / "images")
    with pytest.raises(DataDamagedError, match="differ in"):
        _module(root, tmp_path)  # without data.size / data.channels: refused, naming what to set
    module = _module(root, tmp_path, size=16, channels=1)
    assert module.classes == ["a", "b"] and module.in_shape == (1, 16, 16)
    assert module.pool_images.dtype == torch.uint8 and len(module.pool_labels) == 12 and len(module.test_labels) == 12
    dark, bright = (module.pool_images[module.pool_labels == k].float().mean() for k in (0, 1))
    assert dark < 60 and bright > 190  # the pixels are the images' own
    assert len(module.val_indices) == 3  # a random 25% when there is no val/ folder


def test_a_val_folder_is_the_validation_split(tmp_path):
    root = _folder(tmp_path / "images", counts={"train": 6, "val": 2, "test": 2}, splits=("train", "val", "test"))
    module = _module(root, tmp_path, size=16, channels=3)
    assert len(module.train_indices) == 12 and module.val_indices.tolist() == list(range(12, 16))


@pytest.mark.parametrize(
    "damage, words",
    [
        (lambda root: (root / "train" / "a" / "0.png").write_bytes(b"not a png"), ["train/a/0.png", "cannot be read"]),
        (
            lambda root: (root / "train" / "b" / "2.png").write_bytes(
                (root / "train" / "b" / "2.png").read_bytes()[:60]
            ),
            ["train/b/2.png"],
        ),
        (lambda root: [p.unlink() for p in (root / "test" / "b").iterdir()], ["test/b", "holds no image"]),
        (
            lambda root: (
                [p.rename(root / "test" / "a" / f"b{p.name}") for p in (root / "test" / "b").iterdir()]
                and (root / "test" / "b").rmdir()
            ),
            ["test", "b"],
        ),
    ],
)
def test_a_broken_file_or_an_empty_or_missing_class_is_refused_naming_it(damage, words, tmp_path):
    root = _folder(tmp_path / "images")
    damage(root)
    with pytest.raises((DataDamagedError, DataNotFoundError)) as error:
        _module(root, tmp_path, size=16, channels=1)
    assert all(word in str(error.value) for word in words), str(error.value)


def test_the_decoded_images_are_cached_and_decoded_again_when_a_file_changes(tmp_path):
    root = _folder(tmp_path / "images")
    first = _module(root, tmp_path, size=16, channels=1)
    (cache,) = (tmp_path / "cache").iterdir()
    again = _module(root, tmp_path, size=16, channels=1)
    assert torch.equal(first.pool_images, again.pool_images) and list((tmp_path / "cache").iterdir()) == [cache]
    _image(root / "train" / "a" / "0.png", (28, 24), "RGB", 0)  # a changed file: a new fingerprint
    os.utime(root / "train" / "a" / "0.png", ns=(1, 1))
    changed = _module(root, tmp_path, size=16, channels=1)
    assert len(list((tmp_path / "cache").iterdir())) == 2 and not torch.equal(first.pool_images, changed.pool_images)


def test_a_damaged_cache_is_decoded_again_and_rewritten(tmp_path, caplog):
    root = _folder(tmp_path / "images")
    first = _module(root, tmp_path, size=16, channels=1)
    (cache,) = (tmp_path / "cache").iterdir()
    cache.write_bytes(cache.read_bytes()[:100])  # a run killed while another wrote it, a full disk...
    again = _module(root, tmp_path, size=16, channels=1)
    assert torch.equal(first.pool_images, again.pool_images)
    assert "decoding the images again" in caplog.text and str(cache) in caplog.text
    assert torch.load(cache, weights_only=True)["train"][0].shape == first.pool_images.shape  # rewritten whole


def test_a_cache_that_cannot_be_written_costs_only_a_warning(tmp_path, caplog):
    root = _folder(tmp_path / "images")
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder should be")
    module = FolderDataModule(data_dir=root, cache_dir=blocked / "cache", val_fraction=0.25, size=16, channels=1)
    module.prepare_data()
    module.setup("fit")
    assert module.pool_images.shape[1:] == (1, 16, 16) and module.classes == ["a", "b"]
    assert "could not keep the decoded images" in caplog.text and "data.cache_dir" in caplog.text


def test_a_non_image_file_is_refused_in_one_line_by_train_py(tmp_path):
    root = _folder(tmp_path / "images")
    (root / "train" / "b" / "notes.png").write_text("not an image")
    done = run_cli(
        "train.py",
        "data=folder",
        f"data.data_dir={root}",
        "data.size=16",
        "data.channels=1",
        "model=mlp",
        "logger=csv",
        "trainer.max_epochs=1",
        cwd=tmp_path,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: ") and "notes.png" in done.stderr


@pytest.fixture(scope="module")
def cifar_sample(tmp_path_factory) -> Path:
    """A few hundred of the real CIFAR-10 JPEG files, linked into a folder of the same layout."""
    if not CIFAR_JPEG.is_dir():
        pytest.skip("the CIFAR-10 JPEG copy is not here")
    root = tmp_path_factory.mktemp("cifar")
    for split, count in (("train", 40), ("test", 10)):
        for class_dir in sorted((CIFAR_JPEG / split).iterdir()):
            (root / split / class_dir.name).mkdir(parents=True)
            for path in sorted(class_dir.iterdir())[:count]:
                (root / split / class_dir.name / path.name).symlink_to(path)
    return root


def test_real_cifar10_jpegs_train_as_a_folder(cifar_sample, tmp_path):
    cfg = compose_config(
        [
            "data=folder",
            f"data.data_dir={cifar_sample}",
            f"data.cache_dir={tmp_path}",
            "model=convnet",
            "trainer.max_epochs=2",
            "logger=csv",
            "progress_bar=false",
            "data.augment.translate=4",
            "data.augment.hflip=true",
        ]
    )
    results = fit(cfg, tmp_path / "run")
    assert results.status == "completed" and results.classes[0] == "airplane" and results.classes[-1] == "truck"
    assert results.train_size + results.val_size == 400 and results.test_size == 100
    assert results.test_acc > 0.15  # above chance after 2 epochs on 360 images


def test_the_full_official_mnist_is_60000_and_10000_images_held_as_uint8(tmp_path):
    if not (FULL_MNIST / "MNIST" / "raw").is_dir():
        pytest.skip("the full MNIST copy is not here")
    cfg = compose_config(
        [
            f"data.data_dir={FULL_MNIST}",
            "model=lenet",
            "trainer.max_epochs=1",
            "logger=csv",
            "progress_bar=false",
            "+trainer.limit_train_batches=200",
        ]
    )
    results = fit(cfg, tmp_path)
    assert results.train_size == 54000 and results.val_size == 6000 and results.test_size == 10000
    assert results.test_acc > 0.9


def test_the_data_fingerprint_reuses_the_hashes_of_the_decoded_files(tmp_path):
    from sweeplab.data.fingerprint import files_fingerprint

    root = _folder(tmp_path / "images")
    module = _module(root, tmp_path, size=16, channels=1)
    files = module.source_files()
    assert len(module.known_file_hashes) == len(files) == 24  # 2 splits x 2 classes x 6, each read once
    from_decoding = module.data_fingerprint(tmp_path / "fingerprints")
    read_again = files_fingerprint(files, cache_dir=None)
    assert from_decoding["sha256"] == read_again["sha256"] and from_decoding["files"] == 24
    cached = _module(root, tmp_path, size=16, channels=1)  # decoded tensors cached: nothing read, nothing known
    assert cached.known_file_hashes == {} and cached.data_fingerprint(tmp_path / "fingerprints")["cached"]
