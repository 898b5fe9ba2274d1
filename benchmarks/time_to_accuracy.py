#!/usr/bin/env python
"""Wall time from process start to a test accuracy, end to end, three ways.

The same LeNet-5 recipe (the model, optimizer, schedule, batch size, seed and training
split size of ``train.py``'s config) trains on the full MNIST three ways, each in a
process of its own, each evaluating on the official 10,000 test images after every epoch:

  (a) a plain PyTorch loop over tensors decoded once (the floor),
  (b) the tutorial pipeline: torchvision's MNIST with ToTensor + Normalize per sample
      in a DataLoader, test set likewise,
  (c) ``python train.py``, with a callback (``benchmarks/epoch_tester.py``) that tests
      after every epoch and stops the run at the target (start-up, loading, validation, checkpoints and logs included).

The figure is the wall time from launching the process to the end of the first epoch
whose test accuracy reaches ``--target``; the ratios c/a and c/b say what sweeplab
costs or saves a user. The ways take turns, ``--repeats`` rounds of them, after an untimed
process that warms the disk caches; the table gives medians, and each ratio is the median of
the rounds' ratios: this shared machine's speed drifts by tens of percent from one minute to the next.

The three ways train the same steps: the same train/validation split of the pool, the
same standardization (float64 statistics of the pool, as sweeplab computes them), the
same initial weights (the run's seed, then the model), the same order of batches
(sweeplab's: a permutation seeded by seed + epoch), the same augmentation of each
batch (``data.augment``, by sweeplab's own function, drawing from the same random stream)
and the same kernels (the channels-last layout and fused optimizer step sweeplab's run picks
on a CPU), so each epoch ends with the same test accuracy in all three. Otherwise the ratio
would mostly say which way drew the luckier numbers: test accuracy wanders by a few tenths of
a percent from epoch to epoch, and a different shuffle or even a kernel that rounds differently
moves the first epoch at 99.0% by one to five epochs. (``benchmarks/throughput.py`` times
what those kernels buy a plain loop, and the loop a user writes with torch's defaults.)

    python benchmarks/time_to_accuracy.py                     # full MNIST from ../shared/data/mnist
    python benchmarks/time_to_accuracy.py --data-dir DIR --target 0.99 --max-epochs 10 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
LIMITS = {"c/a": 1.1, "c/b": 0.5}  # the goals: at most these ratios of wall time
WAYS = {"a": "plain PyTorch loop over tensors", "b": "tutorial Dataset + DataLoader", "c": "python train.py"}


def recipe_overrides(args) -> list[str]:
    return [
        "model=lenet",
        "data=mnist",
        f"data.data_dir={args.data_dir}",
        f"trainer.max_epochs={args.max_epochs}",
        f"seed={args.seed}",
    ]


def record(out: Path, epoch: int, test_acc: float) -> None:
    with out.open("a") as stream:
        stream.write(json.dumps({"epoch": epoch, "test_acc": test_acc, "at": time.time()}) + "\n")


# --- the shared recipe, as sweeplab's data module has it (without importing it: it imports Lightning) ------
def holdout_train_indices(n: int, val_fraction: float, split_seed: int):
    """The training part of the pool (``InMemoryDataModule.holdout_split``)."""
    import torch

    order = torch.randperm(n, generator=torch.Generator().manual_seed(split_seed))
    return order[round(n * val_fraction) :].sort().values


def pool_statistics(pool) -> tuple[float, float]:
    """Mean and standard deviation of uint8 images in [0, 1] units, in float64 (``channel_statistics``)."""
    values = pool.double().div(255)
    count = values.numel()
    mean = values.sum() / count
    std = ((values.square().sum() - count * mean.square()) / (count - 1)).sqrt()
    return float(mean.float()), float(std.float())


def epoch_order(indices, seed: int, epoch: int):
    """The order of one epoch's samples (``TensorBatches``: a permutation seeded by seed + epoch)."""
    import torch

    return indices[torch.randperm(len(indices), generator=torch.Generator().manual_seed(seed + epoch))]


def kernel_choice(setting, applies: bool) -> bool:
    """A kernel setting of sweeplab's config (``True``, ``False`` or ``"auto"``) as its CPU run resolves it:
    ``auto`` takes the kernel where it applies (a model with convolutions, an optimizer with a fused step)."""
    return applies if setting == "auto" else bool(setting)


# --- the workers (a) and (b): the same recipe, without sweeplab's training code ------------
def worker(way: str, args) -> None:  # noqa: PLR0915 (one linear recipe: split up, the timed steps would hide)
    import inspect

    import hydra.utils
    import torch
    import torch.nn.functional as F
    import torchvision
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from sweeplab.config.compose import compose_train
    from sweeplab.data.augment import BatchAugment

    cfg = compose_train(recipe_overrides(args))
    torch.manual_seed(cfg.seed)  # as the run's seed_everything: the model below draws the same initial weights
    train_set = torchvision.datasets.MNIST(str(args.data_dir), train=True)
    pool = train_set.data.unsqueeze(1)
    train_indices = holdout_train_indices(len(pool), cfg.data.val_fraction, cfg.data.split_seed)
    mean, std = pool_statistics(pool)

    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    for training_key in ("compile", "channels_last"):  # read by sweeplab's training code, not the architecture
        model_cfg.pop(training_key, None)
    model = instantiate(model_cfg)(in_shape=(1, 28, 28), num_classes=10)
    # the kernels sweeplab's run picks on a CPU (model.channels_last=auto, optimizer.fused=auto): other kernels round
    # differently, and near the target a last-digit difference moves the first epoch at 99.0% by several
    layout = (
        torch.channels_last
        if kernel_choice(cfg.model.channels_last, any(isinstance(layer, torch.nn.Conv2d) for layer in model.modules()))
        else torch.contiguous_format
    )
    model = model.to(memory_format=layout)
    optimizer_cfg = OmegaConf.to_container(cfg.optimizer, resolve=True)
    fused = optimizer_cfg.pop("fused", False)
    optimizer_class = hydra.utils.get_class(optimizer_cfg["_target_"])
    fused = kernel_choice(fused, "fused" in inspect.signature(optimizer_class).parameters)
    optimizer = instantiate(optimizer_cfg)(model.parameters(), **({"fused": True} if fused else {}))
    scheduler_cfg = OmegaConf.to_container(cfg.scheduler, resolve=True)
    scheduler_cfg.pop("interval", None)
    scheduler = instantiate(scheduler_cfg)(optimizer)
    batch, eval_batch = int(cfg.data.batch_size), int(cfg.data.eval_batch_size)
    # the recipe's augmentation (data.augment), as sweeplab applies it to each standardized training batch: the
    # same function drawing from the same random stream, so the three ways see the same shifted images
    augment = BatchAugment(**OmegaConf.to_container(cfg.data.augment, resolve=True))

    if way == "a":
        images, labels = (pool.float().div(255) - mean) / std, train_set.targets
        test = torchvision.datasets.MNIST(str(args.data_dir), train=False)
        test_images, test_labels = (test.data.unsqueeze(1).float().div(255) - mean) / std, test.targets

        def train_batches(epoch: int):
            order = epoch_order(train_indices, cfg.seed, epoch)
            for start in range(0, len(order), batch):
                yield images[order[start : start + batch]], labels[order[start : start + batch]]

        def test_batches():
            for start in range(0, len(test_labels), eval_batch):
                yield test_images[start : start + eval_batch], test_labels[start : start + eval_batch]
    else:
        transform = torchvision.transforms.Compose(
            [torchvision.transforms.ToTensor(), torchvision.transforms.Normalize((mean,), (std,))]
        )
        train_data = torchvision.datasets.MNIST(str(args.data_dir), train=True, transform=transform)
        test_data = torchvision.datasets.MNIST(str(args.data_dir), train=False, transform=transform)
        # a generator of their own: a DataLoader draws each iterator's base seed from the global generator
        # otherwise, which would shift the augmentation's draws away from the other two ways'
        test_loader = torch.utils.data.DataLoader(test_data, batch_size=eval_batch, generator=torch.Generator())

        def train_batches(epoch: int):  # the tutorial's shuffled DataLoader, in the shared order
            subset = torch.utils.data.Subset(train_data, epoch_order(train_indices, cfg.seed, epoch).tolist())
            return iter(torch.utils.data.DataLoader(subset, batch_size=batch, generator=torch.Generator()))

        test_batches = lambda: iter(test_loader)  # noqa: E731
    test_size = sum(len(y) for _, y in test_batches())

    for epoch in range(1, cfg.trainer.max_epochs + 1):
        model.train()
        for x, y in train_batches(epoch - 1):
            loss = F.cross_entropy(model(augment(x).contiguous(memory_format=layout)), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        scheduler.step()
        model.eval()
        with torch.no_grad():
            correct = sum(
                int((model(x.contiguous(memory_format=layout)).argmax(1) == y).sum()) for x, y in test_batches()
            )
        record(args.out, epoch, correct / test_size)
        if correct / test_size >= args.target:
            return


# --- the parent: launch each way, read its epochs, tabulate ------------------------------
def warm_caches(data_dir: Path) -> None:
    """Import what the three ways import, and read the images, once before timing: the first way to run would
    otherwise also pay for reading the packages and the data from disk (once here, 9 s more start-up for (a))."""
    subprocess.run(
        [sys.executable, "-c", "import lightning.pytorch, hydra, torchvision, sweeplab.cli.train"], check=True
    )
    for path in data_dir.rglob("*"):
        if path.is_file():
            path.read_bytes()


TEST_EACH_EPOCH = "epoch_tester.TestEachEpoch"  # benchmarks/epoch_tester.py: the test accuracy after each epoch


def launch(way: str, repeat: int, args, work: Path) -> dict:
    out = work / f"{way}_{repeat}.jsonl"
    out.unlink(missing_ok=True)
    if way == "c":
        # the command a user types, its run folder under a scratch outputs/ of this benchmark's own
        shutil.rmtree(work / "c_outputs", ignore_errors=True)
        command = [
            sys.executable,
            str(REPO / "train.py"),
            *recipe_overrides(args),
            f"paths.output_dir={work / 'c_outputs'}",
            f"+callbacks.time_to_accuracy._target_={TEST_EACH_EPOCH}",
            f"+callbacks.time_to_accuracy.target={args.target}",
            f"+callbacks.time_to_accuracy.out={out}",
        ]
    else:
        command = [
            sys.executable,
            __file__,
            "--worker",
            way,
            "--out",
            str(out),
            "--data-dir",
            str(args.data_dir),
            "--target",
            str(args.target),
            "--max-epochs",
            str(args.max_epochs),
            "--seed",
            str(args.seed),
        ]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "benchmarks"), os.environ.get("PYTHONPATH")])),
        # the benchmark's own callback, trusted explicitly (sweeplab builds only conf/'s targets otherwise)
        "SWEEPLAB_TRUSTED_TARGETS": ",".join(
            filter(None, [TEST_EACH_EPOCH, os.environ.get("SWEEPLAB_TRUSTED_TARGETS")])
        ),
    }
    started = time.time()
    subprocess.run(command, check=True, env=env, cwd=work, stdout=subprocess.DEVNULL)
    epochs = [json.loads(line) for line in out.read_text().splitlines()]
    reached = next((row for row in epochs if row["test_acc"] >= args.target), None)
    row = {
        "way": way,
        "pipeline": WAYS[way],
        "epochs": len(epochs),
        "best_test_acc": max(r["test_acc"] for r in epochs),
        "seconds": reached["at"] - started if reached else None,
        "epoch_reached": reached["epoch"] if reached else None,
        "first_epoch_s": epochs[0]["at"] - started,
        **time_split(epochs, started),
    }
    print(
        f"  ({way}) {WAYS[way]}, run {repeat}: "
        + (
            f"{row['seconds']:.1f} s to {args.target:.3f} (epoch {row['epoch_reached']})"
            if reached
            else f"never reached {args.target} in {len(epochs)} epochs"
        ),
        file=sys.stderr,
        flush=True,
    )
    return row


def time_split(epochs: list[dict], started: float) -> dict:
    """Where a way's time went: ``epoch_s``, the median time of an epoch after the first (training and
    evaluation), and ``startup_s``, the first epoch's end less one such epoch (imports, loading, set-up)."""
    gaps = [later["at"] - earlier["at"] for earlier, later in zip(epochs, epochs[1:], strict=False)]
    if not gaps:
        return {"epoch_s": None, "startup_s": None}
    epoch_s = statistics.median(gaps)
    return {"epoch_s": epoch_s, "startup_s": epochs[0]["at"] - started - epoch_s}


def median_of(runs: list[dict], key: str) -> float | None:
    values = [run[key] for run in runs if run.get(key) is not None]
    return statistics.median(values) if len(values) == len(runs) else None


def summary(runs: list[dict]) -> dict:
    """One way's repeats as one row: the median of each time, the epochs at which they reached the target."""
    epochs = sorted({run["epoch_reached"] for run in runs if run["epoch_reached"]})
    seconds = [run["seconds"] for run in runs if run["seconds"] is not None]
    return {
        "way": runs[0]["way"],
        "pipeline": runs[0]["pipeline"],
        "runs": len(runs),
        "best_test_acc": max(run["best_test_acc"] for run in runs),
        "epoch_reached": "-".join(map(str, sorted({epochs[0], epochs[-1]}))) if epochs else None,
        **{key: median_of(runs, key) for key in ("seconds", "first_epoch_s", "startup_s", "epoch_s")},
        "seconds_range": [min(seconds), max(seconds)] if len(seconds) == len(runs) else None,
    }


def ratios(runs: dict[str, list[dict]], ratio: str, key: str) -> list[float] | None:
    """``ratio`` ("c/a") of ``key`` in each repeat: the ways of one repeat ran back to back, so each
    ratio compares times taken minutes apart, not across the whole benchmark's drift."""
    top, bottom = (runs[way] for way in ratio.split("/"))
    pairs = [(t.get(key), b.get(key)) for t, b in zip(top, bottom, strict=False)]
    return [t / b for t, b in pairs] if all(t and b for t, b in pairs) else None


def table(runs: dict[str, list[dict]], target: float) -> str:
    from machine import describe  # benchmarks/machine.py

    repeats = len(next(iter(runs.values())))
    lines = [
        f"machine: {describe()}; each way ran {repeats} time(s), the ways taking turns; times are medians",
        "",
        f"| way | pipeline | s to test_acc >= {target} | range (s) | epoch | first epoch done (s) | start-up (s) "
        "| s per epoch | best test_acc |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    show = lambda value: f"{value:.1f}" if value is not None else "-"  # noqa: E731
    for row in map(summary, runs.values()):
        seconds = show(row["seconds"]) if row["seconds"] is not None else "not reached"
        spread = "-".join(f"{value:.1f}" for value in row["seconds_range"]) if row["seconds_range"] else "-"
        lines.append(
            f"| {row['way']} | {row['pipeline']} | {seconds} | {spread} | {row['epoch_reached'] or '-'} | "
            f"{show(row['first_epoch_s'])} | {show(row['startup_s'])} | {show(row['epoch_s'])} | "
            f"{row['best_test_acc']:.4f} |"
        )
    lines.append("")
    for ratio, limit in LIMITS.items():
        if not all(way in runs for way in ratio.split("/")):
            continue  # --ways left one of its ways out
        values = ratios(runs, ratio, "seconds")
        if values is None:
            lines.append(f"- {ratio}: n/a (a way never reached the target)")
            continue
        value = statistics.median(values)
        lines.append(
            f"- {ratio} = {value:.2f} (goal <= {limit}: {'meets' if value <= limit else 'misses'}); "
            f"each run: {', '.join(f'{v:.2f}' for v in values)}"
        )
        per_epoch = ratios(runs, ratio, "epoch_s")
        if per_epoch:
            top, bottom = (runs[way] for way in ratio.split("/"))
            startup = statistics.median(t["startup_s"] - b["startup_s"] for t, b in zip(top, bottom, strict=False))
            lines.append(f"  per epoch {statistics.median(per_epoch):.2f}, start-up {startup:+.1f} s")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data" / "mnist")
    parser.add_argument("--target", type=float, default=0.99)
    parser.add_argument("--max-epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--ways", default="abc")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each way, taking turns (times are medians)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the table goes")
    parser.add_argument(
        "--work",
        type=Path,
        default=REPO / "outputs" / "benchmarks" / "time_to_accuracy",
        help="scratch folder of the runs",
    )
    parser.add_argument("--worker", choices=["a", "b"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.data_dir = args.data_dir.resolve()
    if args.worker:
        return worker(args.worker, args)
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    print(f"LeNet-5 on {args.data_dir}, to test_acc >= {args.target}:", file=sys.stderr)
    warm_caches(args.data_dir)
    runs = {way: [] for way in args.ways}
    for repeat in range(1, args.repeats + 1):
        for way in args.ways:
            runs[way].append(launch(way, repeat, args, work))
    text = table(runs, args.target)
    print(text)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "time_to_accuracy.md").write_text(text)
    (args.results / "time_to_accuracy.json").write_text(json.dumps(runs, indent=2) + "\n")


if __name__ == "__main__":
    main()
