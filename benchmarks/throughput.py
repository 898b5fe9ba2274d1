#!/usr/bin/env python
"""Training throughput of sweeplab against plain PyTorch, on the same work.

For each workload, in one process and on the same data, model, batch size,
optimizer and number of epochs, it times:

  (a) a minimal PyTorch loop over tensors already in memory (the floor),
  (b) the tutorial pipeline: torchvision dataset + DataLoader with ToTensor and
      Normalize applied per sample (what users would write instead),
  (c) sweeplab's own training path (the Lightning Trainer built by
      sweeplab.runs.build, with its callbacks, metrics, logging and progress bar),
  (a') the loop (a) again, with the memory layout and optimizer kernel sweeplab chose
      (channels-last for convolutional models, torch's fused optimizer step), so that
      c/a' is sweeplab's per-step overhead alone.

They take turns epoch by epoch in one process (c, a, a', b, c, ...), so load on a
shared machine hits all of them alike. The first epoch of each warms up. Every
timed epoch is cut into windows of 20 steps; the table shows the median images per
second over those windows (the repeats) and the ratios c/a, c/a' and c/b.

    python benchmarks/throughput.py --quick            # LeNet-5 on real MNIST, small ResNet on CIFAR-shaped data
    python benchmarks/throughput.py --data-dir DIR     # where MNIST lives (default: $DATA_DIR or ../shared/data/mnist-10k)
    python benchmarks/throughput.py --quick --batch-sizes 64 --only lenet_mnist
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
import torchvision
from lightning.pytorch.callbacks import Callback
from machine import describe  # benchmarks/machine.py
from torch.utils.data import DataLoader, Subset

from sweeplab.config.compose import compose_train
from sweeplab.config.resolvers import register_resolvers
from sweeplab.files import write_text_atomic
from sweeplab.runs.build import build_datamodule, build_module, build_trainer

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Workload:
    name: str
    overrides: list[str]
    tutorial_dataset: callable  # (datamodule) -> torch Dataset yielding (tensor, label) per sample


WINDOW = 20  # steps per timed window: one progress-bar redraw (refresh_rate 20) in each


class EpochMarks:
    """When each batch of one epoch started, and when the last ended."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.sizes: list[int] = []  # images per batch

    def batch_starts(self, size: int, at: float | None = None) -> None:
        self.times.append(time.perf_counter() if at is None else at)
        self.sizes.append(size)

    def ends(self) -> None:
        self.times.append(time.perf_counter())

    def window_rates(self) -> list[float]:
        """Images per second over consecutive windows of about ``WINDOW`` batches.

        Windows a few hundred milliseconds long keep what happens every few steps (a
        progress-bar redraw, a logging step) inside the measure, while the median over
        them drops the windows a burst of load on a shared machine landed in. An epoch
        shorter than a window is one window.
        """
        window = max(1, min(WINDOW, len(self.sizes)))
        return [
            sum(self.sizes[start : start + window]) / (self.times[start + window] - self.times[start])
            for start in range(0, len(self.sizes) - window + 1, window)
        ]


def fresh_model(cfg, datamodule, memory_format: torch.memory_format = torch.contiguous_format, fused: bool = False):
    """The config's model, initialized as sweeplab's runs initialize it, and its optimizer (torch's default
    kernel, or its fused one)."""
    torch.manual_seed(cfg.seed)
    module = build_module(cfg, datamodule)
    model = module.model.to(memory_format=memory_format)
    return model, module.optimizer_factory(model.parameters(), **({"fused": True} if fused else {}))


def uses_fused_kernel(module) -> bool:
    """Whether sweeplab's run steps its optimizer with torch's fused kernel (``optimizer.fused=auto``)."""
    return bool(module.trainer.optimizers[0].defaults.get("fused"))


def train_step(model, optimizer, images: torch.Tensor, labels: torch.Tensor) -> None:
    loss = F.cross_entropy(model(images), labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


# --- (a) the floor: a bare loop over in-memory tensors --------------------------------
class PlainLoop:
    """One epoch at a time of the shortest correct PyTorch training loop.

    ``memory_format``, ``fused``: the layout of the weights and batches and the optimizer's kernel; the
    plain loop a user writes keeps PyTorch's defaults (NCHW, no fused kernel), (a') copies sweeplab's choices.
    """

    def __init__(
        self, cfg, datamodule, memory_format: torch.memory_format = torch.contiguous_format, fused: bool = False
    ) -> None:
        self.model, self.optimizer = fresh_model(cfg, datamodule, memory_format, fused)
        self.images = datamodule.normalize(datamodule.pool_images[datamodule.train_indices]).contiguous(
            memory_format=memory_format
        )
        self.labels = datamodule.pool_labels[datamodule.train_indices]
        self.batch = datamodule.batch_size

    def epoch(self) -> EpochMarks:
        self.model.train()
        marks = EpochMarks()
        order = torch.randperm(len(self.labels))
        for i in range(0, len(self.labels), self.batch):
            idx = order[i : i + self.batch]
            marks.batch_starts(len(idx))
            train_step(self.model, self.optimizer, self.images[idx], self.labels[idx])
        marks.ends()
        return marks


# --- (b) the tutorial pipeline: per-sample transforms in a DataLoader ----------------
def tutorial_transform(datamodule):
    """``ToTensor`` then ``Normalize`` with the data module's statistics, per sample."""
    return torchvision.transforms.Compose(
        [
            torchvision.transforms.ToTensor(),
            torchvision.transforms.Normalize(datamodule.mean.tolist(), datamodule.std.tolist()),
        ]
    )


def mnist_tutorial_dataset(datamodule):
    dataset = torchvision.datasets.MNIST(str(datamodule.data_dir), train=True, transform=tutorial_transform(datamodule))
    return Subset(dataset, datamodule.train_indices.tolist())


def pil_tutorial_dataset(datamodule):
    """CIFAR-shaped images as PIL-decoded uint8 arrays, transformed per sample like CIFAR10 is."""
    raw = datamodule.pool_images.permute(0, 2, 3, 1).numpy()  # the uint8 pixels
    transform = tutorial_transform(datamodule)

    class PerSample(torch.utils.data.Dataset):
        def __len__(self):
            return len(datamodule.train_indices)

        def __getitem__(self, i):
            from PIL import Image

            j = int(datamodule.train_indices[i])
            return transform(Image.fromarray(raw[j])), int(datamodule.pool_labels[j])

    return PerSample()


class TutorialLoop:
    """One epoch at a time of the tutorial loop: a DataLoader transforming every sample."""

    def __init__(self, cfg, datamodule, dataset) -> None:
        self.model, self.optimizer = fresh_model(cfg, datamodule)
        self.loader = DataLoader(dataset, batch_size=datamodule.batch_size, shuffle=True, num_workers=0)

    def epoch(self) -> EpochMarks:
        self.model.train()
        marks = EpochMarks()
        fetch_started = time.perf_counter()
        for images, labels in self.loader:
            marks.batch_starts(len(labels), at=fetch_started)  # a batch's time includes the loader fetching it
            train_step(self.model, self.optimizer, images, labels)
            fetch_started = time.perf_counter()
        marks.ends()
        return marks


# --- (c) sweeplab, with (a) and (b) run between its epochs ---------------------------
class Interleave(Callback):
    """Times each sweeplab training epoch, then runs one epoch of every baseline.

    The pipelines alternate epoch by epoch (c, a, a', b, c, a, a', b, ...; a' is ``a_same``), so a slow
    spell on a shared machine hits all of them alike instead of one whole repeat.
    sweeplab's epoch runs from its start to the end of its last batch; validation and
    checkpointing come after, untimed, like the baselines which have neither.

    Args:
        baselines: name -> factory taking the fitted LightningModule (so that a
            baseline can copy choices sweeplab made, like the memory layout and optimizer kernel).
    """

    def __init__(self, baselines: dict) -> None:
        self.factories = baselines
        self.epochs: dict[str, list[EpochMarks]] = {"c": [], **{name: [] for name in baselines}}

    def on_train_start(self, trainer, pl_module) -> None:
        self.baselines = {name: factory(pl_module) for name, factory in self.factories.items()}

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._marks = EpochMarks()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._marks.batch_starts(len(batch[1]))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._last_end = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._marks.times.append(self._last_end)
        self.epochs["c"].append(self._marks)
        with torch.enable_grad():
            for name, loop in self.baselines.items():
                self.epochs[name].append(loop.epoch())

    def rates(self) -> dict[str, list[float]]:
        """Window rates of every pipeline over all epochs but the first (the warm-up)."""
        return {
            name: [rate for marks in epochs[1:] for rate in marks.window_rates()]
            for name, epochs in self.epochs.items()
        }


def measure(workload: Workload, batch_size: int, args) -> dict:
    overrides = workload.overrides + [
        f"trainer.max_epochs={args.epochs + 1}",
        "early_stopping.patience=1000",
        f"data.batch_size={batch_size}",
        "logger=tensorboard",
        f"progress_bar={args.progress_bar}",
    ]
    cfg = compose_train(overrides)
    datamodule = build_datamodule(cfg)
    datamodule.prepare_data()
    datamodule.setup("fit")
    n_images = len(datamodule.train_indices)
    dataset = workload.tutorial_dataset(datamodule)
    interleave = Interleave(
        {
            "a": lambda module: PlainLoop(cfg, datamodule),
            "a_same": lambda module: PlainLoop(cfg, datamodule, module.memory_format, uses_fused_kernel(module)),
            "b": lambda module: TutorialLoop(cfg, datamodule, dataset),
        }
    )
    started = time.perf_counter()
    pl.seed_everything(cfg.seed, verbose=False)
    trainer = build_trainer(cfg, Path(args.out) / f"{workload.name}_{batch_size}", [interleave])
    module = build_module(cfg, datamodule)
    trainer.fit(module, datamodule=datamodule)
    windows = interleave.rates()
    rate = {name: statistics.median(rates) for name, rates in windows.items()}
    print(
        f"  {workload.name} batch {batch_size}: "
        + ", ".join(f"{k} {rate[k]:,.0f} img/s" for k in rate)
        + f" ({len(windows['c'])} windows each, {time.perf_counter() - started:.0f} s)",
        file=sys.stderr,
        flush=True,
    )
    return {
        "workload": workload.name,
        "images": n_images,
        "batch": batch_size,
        "epochs": args.epochs,
        "windows": len(windows["c"]),
        **rate,
        "layout": ("channels-last" if module.memory_format == torch.channels_last else "NCHW")
        + (", fused optimizer" if uses_fused_kernel(module) else ""),
        "c/a": rate["c"] / rate["a"],
        "c/a_same": rate["c"] / rate["a_same"],
        "c/b": rate["c"] / rate["b"],
    }


TARGETS = {"c/a": 0.9, "c/b": 1.3}  # for LeNet-5 on MNIST on a 2-core CPU


def table(rows: list[dict]) -> str:
    lines = [
        f"machine: {describe()}",
        f"images per second: median over windows of about {WINDOW} steps, from {rows[0]['epochs']} timed epochs of each "
        "pipeline after one warm-up epoch, the pipelines taking turns epoch by epoch",
        "",
        "| workload | train images | batch | sweeplab's choices | (a) plain loop img/s | (a') plain loop, sweeplab's choices img/s "
        "| (b) DataLoader img/s | (c) sweeplab img/s | c/a | c/a' | c/b |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['workload']} | {r['images']:,} | {r['batch']} | {r['layout']} | {r['a']:,.0f} | {r['a_same']:,.0f} "
            f"| {r['b']:,.0f} | {r['c']:,.0f} | {r['c/a']:.2f} | {r['c/a_same']:.2f} | {r['c/b']:.2f} |"
        )
    lines += [
        "",
        "c/a: sweeplab against the plain loop a user writes (PyTorch's defaults: NCHW layout, the "
        "optimizer's default kernel); c/a': the same loop with sweeplab's choices, so the ratio is "
        "sweeplab's per-step overhead alone.",
        "",
    ]
    for r in rows:
        if r["workload"] == "lenet_mnist":
            checks = [
                f"{key} {r[key]:.2f} (target >= {target}: {'met' if r[key] >= target else 'NOT met'})"
                for key, target in TARGETS.items()
            ]
            lines.append(
                f"LeNet-5 on MNIST, batch {r['batch']}: "
                + ", ".join(checks)
                + f"; overhead alone c/a' {r['c/a_same']:.2f}"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer timed epochs (under 5 minutes on 2 CPUs)")
    parser.add_argument("--data-dir", default=os.environ.get("DATA_DIR", str(REPO.parent / "shared/data/mnist-10k")))
    parser.add_argument(
        "--epochs", type=int, default=None, help="timed epochs (repeats) of each pipeline, after one warm-up"
    )
    parser.add_argument(
        "--batch-sizes",
        type=int,
        nargs="+",
        default=[64, 128],
        help="measure each workload at each batch size (per-step overhead weighs more at small ones)",
    )
    parser.add_argument("--progress-bar", default="true", help="include the progress bar in (c)")
    parser.add_argument("--only", choices=["lenet_mnist", "resnet_cifar"], default=None)
    parser.add_argument("--out", default="outputs/benchmarks/throughput")
    parser.add_argument(
        "--table", default="benchmarks/results/throughput.md", help="also write the table here ('' to skip)"
    )
    args = parser.parse_args()
    args.epochs = args.epochs or (6 if args.quick else 12)
    register_resolvers()
    if not (Path(args.data_dir) / "MNIST" / "raw").is_dir():
        parser.error(f"--data-dir {args.data_dir!r} holds no MNIST/raw folder")
    workloads = [
        Workload(
            "lenet_mnist",
            [
                "model=lenet",
                "data=mnist",
                f"data.data_dir={args.data_dir}",
                "data.download=false",
                "data.augment.translate=0",
            ],  # MNIST's default shifts: (c) alone would apply them
            mnist_tutorial_dataset,
        ),
        Workload(
            "resnet_cifar",
            [
                "model=resnet",
                "model.width_divisor=8",
                "data=fake",
                "data.channels=3",
                "data.size=32",
                f"data.num_samples={1000 if args.quick else 4000}",
            ],
            pil_tutorial_dataset,
        ),
    ]
    rows = [measure(w, batch, args) for w in workloads if args.only in (None, w.name) for batch in args.batch_sizes]
    text = table(rows)
    print(text)
    if args.table:
        write_text_atomic(args.table, text)


if __name__ == "__main__":
    main()
