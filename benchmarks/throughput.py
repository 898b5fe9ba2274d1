#!/usr/bin/env python
"""Training throughput of sweeplab against plain PyTorch, on the same work.

For each workload, in one process and on the same data, model, batch size,
optimizer and number of epochs, it times:

  (a) a minimal PyTorch loop over tensors already in memory (the floor),
  (b) the tutorial pipeline: torchvision dataset + DataLoader with ToTensor and
      Normalize applied per sample (what users would write instead),
  (c) sweeplab's own training path (the Lightning Trainer built by
      sweeplab.runs.build, with its callbacks, metrics, logging and progress bar).

Each is warmed up for one epoch, then timed over several repeats run in turn
(a, b, c, a, b, c, ...) so that load on a shared machine hits all three alike;
the table shows the median training images per second and the ratios c/a and c/b.

    python benchmarks/throughput.py --quick            # LeNet-5 on real MNIST, small ResNet on CIFAR-shaped data
    python benchmarks/throughput.py --data-dir DIR     # where MNIST lives (default: $DATA_DIR or ../shared/data/mnist-10k)
    python benchmarks/throughput.py --quick --batch-sizes 64 --only lenet_mnist
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader, Subset, TensorDataset

from sweeplab.cli.common import CONFIG_DIR, register_resolvers
from sweeplab.config.preflight import compose_checked
from sweeplab.runs.files import write_text_atomic
from sweeplab.runs.build import build_datamodule, build_module, build_trainer

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Workload:
    name: str
    overrides: list[str]
    tutorial_dataset: callable  # (datamodule) -> torch Dataset yielding (tensor, label) per sample


class EpochTimer(Callback):
    """Wall time of each training epoch, from its start to the end of its last batch (validation excluded)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._last = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.seconds.append(self._last - self._start)


# --- (a) the floor: a bare loop over in-memory tensors --------------------------------
def time_plain_loop(cfg, datamodule, epochs: int) -> list[float]:
    torch.manual_seed(cfg.seed)
    module = build_module(cfg, datamodule)
    model, optimizer = module.model, module.optimizer_factory(module.model.parameters())
    images = datamodule.pool_images[datamodule.train_indices]
    labels = datamodule.pool_labels[datamodule.train_indices]
    batch = datamodule.batch_size
    seconds = []
    model.train()
    for _ in range(epochs + 1):  # the first epoch warms up
        start = time.perf_counter()
        order = torch.randperm(len(labels))
        for i in range(0, len(labels), batch):
            idx = order[i : i + batch]
            loss = F.cross_entropy(model(images[idx]), labels[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        seconds.append(time.perf_counter() - start)
    return seconds[1:]


# --- (b) the tutorial pipeline: per-sample transforms in a DataLoader ----------------
def mnist_tutorial_dataset(datamodule):
    transform = torchvision.transforms.Compose([
        torchvision.transforms.ToTensor(),
        torchvision.transforms.Normalize(datamodule.mean.tolist(), datamodule.std.tolist()),
    ])
    dataset = torchvision.datasets.MNIST(str(datamodule.data_dir), train=True, transform=transform)
    return Subset(dataset, datamodule.train_indices.tolist())


def pil_tutorial_dataset(datamodule):
    """CIFAR-shaped images as PIL-decoded uint8 arrays, transformed per sample like CIFAR10 is."""
    raw = (datamodule.pool_images * datamodule.std.view(1, -1, 1, 1) + datamodule.mean.view(1, -1, 1, 1))
    raw = (raw.clamp(0, 1) * 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    transform = torchvision.transforms.Compose([
        torchvision.transforms.ToTensor(),
        torchvision.transforms.Normalize(datamodule.mean.tolist(), datamodule.std.tolist()),
    ])

    class PerSample(torch.utils.data.Dataset):
        def __len__(self):
            return len(datamodule.train_indices)

        def __getitem__(self, i):
            from PIL import Image

            j = int(datamodule.train_indices[i])
            return transform(Image.fromarray(raw[j])), int(datamodule.pool_labels[j])

    return PerSample()


def time_tutorial_loop(cfg, datamodule, dataset, epochs: int) -> list[float]:
    torch.manual_seed(cfg.seed)
    module = build_module(cfg, datamodule)
    model, optimizer = module.model, module.optimizer_factory(module.model.parameters())
    loader = DataLoader(dataset, batch_size=datamodule.batch_size, shuffle=True, num_workers=0)
    seconds = []
    model.train()
    for _ in range(epochs + 1):
        start = time.perf_counter()
        for images, labels in loader:
            loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        seconds.append(time.perf_counter() - start)
    return seconds[1:]


# --- (c) sweeplab ---------------------------------------------------------------------
def time_sweeplab(cfg, datamodule, epochs: int, run_dir: Path) -> list[float]:
    import lightning.pytorch as pl

    pl.seed_everything(cfg.seed, verbose=False)
    module = build_module(cfg, datamodule)
    timer = EpochTimer()
    trainer = build_trainer(cfg, run_dir, [timer])
    trainer.fit(module, datamodule=datamodule)
    return timer.seconds[1:]


def measure(workload: Workload, batch_size: int, args) -> dict:
    overrides = workload.overrides + [
        f"trainer.max_epochs={args.epochs + 1}", "early_stopping.patience=1000",
        f"data.batch_size={batch_size}", "logger=tensorboard", f"progress_bar={args.progress_bar}",
    ]
    cfg = compose_checked(CONFIG_DIR, "train", overrides)
    datamodule = build_datamodule(cfg)
    datamodule.prepare_data()
    datamodule.setup("fit")
    dataset = workload.tutorial_dataset(datamodule)
    n_images = len(datamodule.train_indices)
    per_epoch = {"a": [], "b": [], "c": []}
    for repeat in range(args.repeats):
        per_epoch["a"] += time_plain_loop(cfg, datamodule, args.epochs)
        per_epoch["b"] += time_tutorial_loop(cfg, datamodule, dataset, args.epochs)
        per_epoch["c"] += time_sweeplab(cfg, datamodule, args.epochs,
                                        Path(args.out) / f"{workload.name}_{batch_size}_{repeat}")
        print(f"  {workload.name} batch {batch_size} repeat {repeat + 1}/{args.repeats}: "
              + ", ".join(f"{k} {n_images / statistics.median(v):,.0f} img/s" for k, v in per_epoch.items()),
              file=sys.stderr, flush=True)
    rate = {k: n_images / statistics.median(v) for k, v in per_epoch.items()}
    return {"workload": workload.name, "images": n_images, "batch": batch_size, **rate,
            "c/a": rate["c"] / rate["a"], "c/b": rate["c"] / rate["b"]}


def table(rows: list[dict]) -> str:
    lines = [
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; median of the timed epochs",
        "",
        "| workload | train images | batch | (a) plain loop img/s | (b) DataLoader img/s | (c) sweeplab img/s | c/a | c/b |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['workload']} | {r['images']:,} | {r['batch']} | {r['a']:,.0f} | {r['b']:,.0f} | {r['c']:,.0f} "
                     f"| {r['c/a']:.2f} | {r['c/b']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="few epochs and repeats (under 5 minutes on 2 CPUs)")
    parser.add_argument("--data-dir", default=os.environ.get("DATA_DIR", str(REPO.parent / "shared/data/mnist-10k")))
    parser.add_argument("--epochs", type=int, default=None, help="timed epochs per repeat")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 128],
                        help="measure each workload at each batch size (per-step overhead weighs more at small ones)")
    parser.add_argument("--progress-bar", default="true", help="include the progress bar in (c)")
    parser.add_argument("--only", choices=["lenet_mnist", "resnet_cifar"], default=None)
    parser.add_argument("--out", default="outputs/benchmarks/throughput")
    parser.add_argument("--table", default="benchmarks/results/throughput.md", help="also write the table here ('' to skip)")
    args = parser.parse_args()
    args.epochs = args.epochs or (1 if args.quick else 3)
    args.repeats = args.repeats or (3 if args.quick else 5)
    register_resolvers()
    if not (Path(args.data_dir) / "MNIST" / "raw").is_dir():
        parser.error(f"--data-dir {args.data_dir!r} holds no MNIST/raw folder")
    workloads = [
        Workload("lenet_mnist", ["model=lenet", "data=mnist", f"data.data_dir={args.data_dir}", "data.download=false"],
                 mnist_tutorial_dataset),
        Workload("resnet_cifar", ["model=resnet", "model.width_divisor=8", "data=fake", "data.channels=3", "data.size=32",
                                  f"data.num_samples={1000 if args.quick else 4000}"], pil_tutorial_dataset),
    ]
    rows = [measure(w, batch, args) for w in workloads if args.only in (None, w.name) for batch in args.batch_sizes]
    text = table(rows)
    print(text)
    if args.table:
        write_text_atomic(args.table, text)


if __name__ == "__main__":
    main()
