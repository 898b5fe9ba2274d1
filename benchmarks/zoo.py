#!/usr/bin/env python
"""Train every architecture of the zoo on real MNIST and tabulate size, speed and accuracy.

Each model trains for the same fixed number of epochs (early stopping off) through
sweeplab's own `fit` path, at CPU-sized widths (the `width_divisor` knobs below),
on the full MNIST (the official 60,000 training images less the validation fraction)
and is tested on the official 10,000.

    python benchmarks/zoo.py                       # all models, one epoch of the full MNIST
    python benchmarks/zoo.py --models lenet convnet --epochs 3 --data-dir ../shared/data/mnist-10k
    python benchmarks/zoo.py --out benchmarks/results/zoo.md
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from machine import describe  # benchmarks/machine.py

from sweeplab.config.compose import compose_train
from sweeplab.config.resolvers import register_resolvers
from sweeplab.files import write_json_atomic, write_text_atomic
from sweeplab.runs.fit import fit

REPO = Path(__file__).resolve().parents[1]

# CPU-sized widths: the architectures are the papers', the channel counts divided; every other
# knob is the model's default (conf/model/NAME.yaml: batch norm on for vgg, nin and googlenet).
ZOO: dict[str, list[str]] = {
    "softmax": [],
    "mlp": [],
    "three_layer": [],
    "convnet": [],
    "lenet": [],
    "alexnet": ["model.width_divisor=8"],
    "vgg": ["model.width_divisor=8"],
    "nin": ["model.width_divisor=4"],
    "googlenet": ["model.width_divisor=8"],
    "resnet": ["model.width_divisor=4"],
    "torchvision": ["model.name=resnet18"],
}
# rows of a model with one knob changed: MNIST's default shifts (data.augment.translate) help the convolutional
# models and cost the ones without convolutions, which see every shifted digit as a different picture
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "softmax-unshifted": ("softmax", ["data.augment.translate=0"]),
    "mlp-unshifted": ("mlp", ["data.augment.translate=0"]),
}


def zoo_rows() -> dict[str, tuple[str, list[str]]]:
    """Every model's row (label: model, overrides), each followed by its variants."""
    rows = {}
    for name, knobs in ZOO.items():
        rows[name] = (name, knobs)
        rows.update({label: row for label, row in VARIANTS.items() if row[0] == name})
    return rows


ROWS = zoo_rows()


def train(name: str, args, out_root: Path) -> dict:
    model, knobs = ROWS[name]
    overrides = [
        f"model={model}",
        *knobs,
        f"data.data_dir={args.data_dir}",
        "data.download=false",
        f"trainer.max_epochs={args.epochs}",
        f"early_stopping.patience={args.epochs + 1}",
        f"seed={args.seed}",
        "logger=csv",
        "progress_bar=false",
    ]
    cfg = compose_train(overrides)
    results = fit(cfg, out_root / name)
    seconds_per_epoch = sum(row["epoch_s"] for row in results.history) / results.epochs_run
    return {
        "model": model,
        "overrides": " ".join(knobs),
        "params": results.num_params,
        "s_per_epoch": seconds_per_epoch,
        "test_acc": results.test_acc,
        "best_val_acc": results.best_val_acc,
        "status": results.status,
        "train_size": results.train_size,
        "test_size": results.test_size,
    }


def table(rows: list[dict], args) -> str:
    lines = [
        f"Measured on {describe()}, "
        f"{args.epochs} epoch(s) on {rows[0]['train_size']:,} MNIST images (seed {args.seed}), tested on "
        f"{rows[0]['test_size']:,}; every other knob at the model's default.",
        "",
        "| model | overrides | parameters | s / epoch | test acc | best val acc |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['overrides'] or '-'} | {r['params']:,} | {r['s_per_epoch']:.1f} "
            f"| {r['test_acc']:.4f} | {r['best_val_acc']:.4f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", choices=list(ROWS), default=list(ROWS))
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared/data/mnist"))
    parser.add_argument("--out", default="benchmarks/results/zoo.md")
    args = parser.parse_args()
    if not (Path(args.data_dir) / "MNIST" / "raw").is_dir():
        parser.error(f"--data-dir {args.data_dir!r} holds no MNIST/raw folder")
    register_resolvers()
    rows = []
    with tempfile.TemporaryDirectory(prefix="zoo-") as tmp:
        for name in args.models:
            rows.append(train(name, args, Path(tmp)))
            r = rows[-1]
            print(
                f"{name}: {r['params']:,} params, {r['s_per_epoch']:.1f} s/epoch, test_acc {r['test_acc']:.4f}",
                file=sys.stderr,
                flush=True,
            )
            # rewrite the table after every model: an interrupted run keeps what it measured
            write_text_atomic(args.out, table(rows, args))
            write_json_atomic(Path(args.out).with_suffix(".json"), rows)
    print(table(rows, args))


if __name__ == "__main__":
    main()
