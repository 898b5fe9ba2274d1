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
costs or saves a user. The ways run one after another, so compare ratios from one run.

    python benchmarks/time_to_accuracy.py                     # full MNIST from ../shared/data/mnist
    python benchmarks/time_to_accuracy.py --data-dir DIR --target 0.99 --max-epochs 10
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
LIMITS = {"c/a": 1.1, "c/b": 0.5}  # the goals: at most these ratios of wall time
WAYS = {"a": "plain PyTorch loop over tensors", "b": "tutorial Dataset + DataLoader", "c": "python train.py"}


def recipe_overrides(args) -> list[str]:
    return ["model=lenet", "data=mnist", f"data.data_dir={args.data_dir}", f"trainer.max_epochs={args.max_epochs}",
            f"seed={args.seed}"]


def record(out: Path, epoch: int, test_acc: float) -> None:
    with out.open("a") as stream:
        stream.write(json.dumps({"epoch": epoch, "test_acc": test_acc, "at": time.time()}) + "\n")


# --- the workers (a) and (b): the same recipe, without sweeplab's training code ------------
def worker(way: str, args) -> None:
    import torch
    import torch.nn.functional as F
    import torchvision
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from sweeplab.config.compose import compose_train

    cfg = compose_train(recipe_overrides(args))
    torch.manual_seed(cfg.seed)
    train_set = torchvision.datasets.MNIST(str(args.data_dir), train=True)
    pool = train_set.data.unsqueeze(1)
    order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(cfg.data.split_seed))
    train_indices = order[: len(pool) - round(cfg.data.val_fraction * len(pool))]
    scaled = pool.float().div(255)
    mean, std = scaled.mean().item(), scaled.std().item()

    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    for training_key in ("compile", "channels_last"):  # read by sweeplab's training code, not the architecture
        model_cfg.pop(training_key, None)
    model = instantiate(model_cfg)(in_shape=(1, 28, 28), num_classes=10)
    optimizer = instantiate(cfg.optimizer)(model.parameters())
    scheduler_cfg = OmegaConf.to_container(cfg.scheduler, resolve=True)
    scheduler_cfg.pop("interval", None)
    scheduler = instantiate(scheduler_cfg)(optimizer)
    batch, eval_batch = int(cfg.data.batch_size), int(cfg.data.eval_batch_size)

    if way == "a":
        images, labels = (scaled[train_indices] - mean) / std, train_set.targets[train_indices]
        test = torchvision.datasets.MNIST(str(args.data_dir), train=False)
        test_images, test_labels = (test.data.unsqueeze(1).float().div(255) - mean) / std, test.targets

        def train_batches():
            shuffled = torch.randperm(len(labels))
            for start in range(0, len(labels), batch):
                yield images[shuffled[start:start + batch]], labels[shuffled[start:start + batch]]

        def test_batches():
            for start in range(0, len(test_labels), eval_batch):
                yield test_images[start:start + eval_batch], test_labels[start:start + eval_batch]
    else:
        transform = torchvision.transforms.Compose(
            [torchvision.transforms.ToTensor(), torchvision.transforms.Normalize((mean,), (std,))])
        train_data = torch.utils.data.Subset(
            torchvision.datasets.MNIST(str(args.data_dir), train=True, transform=transform), train_indices.tolist())
        test_data = torchvision.datasets.MNIST(str(args.data_dir), train=False, transform=transform)
        train_loader = torch.utils.data.DataLoader(train_data, batch_size=batch, shuffle=True)
        test_loader = torch.utils.data.DataLoader(test_data, batch_size=eval_batch)
        train_batches, test_batches = (lambda: iter(train_loader)), (lambda: iter(test_loader))

    for epoch in range(1, cfg.trainer.max_epochs + 1):
        model.train()
        for x, y in train_batches():
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        scheduler.step()
        model.eval()
        with torch.no_grad():
            correct = sum(int((model(x).argmax(1) == y).sum()) for x, y in test_batches())
        record(args.out, epoch, correct / 10_000)
        if correct / 10_000 >= args.target:
            return


# --- the parent: launch each way, read its epochs, tabulate ------------------------------
def launch(way: str, args, work: Path) -> dict:
    out = work / f"{way}.jsonl"
    out.unlink(missing_ok=True)
    if way == "c":
        shutil.rmtree(work / "c_run", ignore_errors=True)  # this benchmark's own scratch run: train.py keeps a completed one
        command = [sys.executable, str(REPO / "train.py"), *recipe_overrides(args), f"hydra.run.dir={work / 'c_run'}",
                   "+callbacks.time_to_accuracy._target_=epoch_tester.TestEachEpoch",
                   f"+callbacks.time_to_accuracy.target={args.target}", f"+callbacks.time_to_accuracy.out={out}"]
    else:
        command = [sys.executable, __file__, "--worker", way, "--out", str(out), "--data-dir", str(args.data_dir),
                   "--target", str(args.target), "--max-epochs", str(args.max_epochs), "--seed", str(args.seed)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "benchmarks"),
                                                                     os.environ.get("PYTHONPATH")]))}
    started = time.time()
    subprocess.run(command, check=True, env=env, cwd=work, stdout=subprocess.DEVNULL)
    epochs = [json.loads(line) for line in out.read_text().splitlines()]
    reached = next((row for row in epochs if row["test_acc"] >= args.target), None)
    row = {"way": way, "pipeline": WAYS[way], "epochs": len(epochs), "best_test_acc": max(r["test_acc"] for r in epochs),
           "seconds": reached["at"] - started if reached else None, "epoch_reached": reached["epoch"] if reached else None,
           "first_epoch_s": epochs[0]["at"] - started}
    print(f"  ({way}) {WAYS[way]}: " + (f"{row['seconds']:.1f} s to {args.target:.3f} (epoch {row['epoch_reached']})"
                                        if reached else f"never reached {args.target} in {len(epochs)} epochs"),
          file=sys.stderr, flush=True)
    return row


def table(rows: dict[str, dict], target: float) -> str:
    from machine import describe  # benchmarks/machine.py

    lines = [f"machine: {describe()}", "",
             f"| way | pipeline | s to test_acc >= {target} | epoch | first epoch done (s) | best test_acc |",
             "|---|---|---:|---:|---:|---:|"]
    for row in rows.values():
        seconds = f"{row['seconds']:.1f}" if row["seconds"] is not None else "not reached"
        lines.append(f"| {row['way']} | {row['pipeline']} | {seconds} | {row['epoch_reached'] or '-'} | "
                     f"{row['first_epoch_s']:.1f} | {row['best_test_acc']:.4f} |")
    lines.append("")
    for ratio, limit in LIMITS.items():
        top, bottom = (rows[w]["seconds"] for w in ratio.split("/"))
        value = top / bottom if top and bottom else None
        verdict = "n/a" if value is None else ("meets" if value <= limit else "misses")
        lines.append(f"- {ratio} = {value:.2f} (goal <= {limit}: {verdict})" if value is not None
                     else f"- {ratio}: n/a (a way never reached the target)")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data" / "mnist")
    parser.add_argument("--target", type=float, default=0.99)
    parser.add_argument("--max-epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--ways", default="abc")
    parser.add_argument("--worker", choices=["a", "b"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.data_dir = args.data_dir.resolve()
    if args.worker:
        return worker(args.worker, args)
    work = REPO / "outputs" / "benchmarks" / "time_to_accuracy"
    work.mkdir(parents=True, exist_ok=True)
    print(f"LeNet-5 on {args.data_dir}, to test_acc >= {args.target}:", file=sys.stderr)
    rows = {way: launch(way, args, work) for way in args.ways}
    text = table(rows, args.target)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "time_to_accuracy.md").write_text(text)
    (RESULTS / "time_to_accuracy.json").write_text(json.dumps(list(rows.values()), indent=2) + "\n")


if __name__ == "__main__":
    main()
