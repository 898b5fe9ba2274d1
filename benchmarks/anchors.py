#!/usr/bin/env python
"""sweeplab's figures next to published ones, each from ``python train.py`` runs.

Each row trains a configuration with train.py (several seeds where the row says so),
reads every run's results.json, and puts the mean +- standard deviation of test accuracy
beside the published figure and its source, with the epochs and wall time it took.

    python benchmarks/anchors.py            # the full budget (about an hour on 2 CPU cores)
    python benchmarks/anchors.py --quick    # short runs of every row (a few minutes): not comparable
    python benchmarks/anchors.py --only lenet_mnist,convnet_mnist
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from machine import describe  # benchmarks/machine.py

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
RESULTS = REPO / "benchmarks" / "results"


@dataclass(frozen=True)
class Anchor:
    name: str
    overrides: tuple[str, ...]
    published: float  # test accuracy reported by the source
    source: str
    seeds: tuple[int, ...]
    epochs: int  # the full budget
    quick_epochs: int


ANCHORS = (
    Anchor(
        "lenet_mnist",
        ("model=lenet", f"data.data_dir={SHARED / 'mnist'}"),
        0.9905,
        "LeNet-5, LeCun et al. 1998 (0.95% test error)",
        (1, 2, 3),
        10,
        2,
    ),
    Anchor(
        "convnet_mnist",
        ("model=convnet", f"data.data_dir={SHARED / 'mnist'}"),
        0.995,
        "a single small CNN without ensembles (~99.5%)",
        (1,),
        10,
        2,
    ),
    Anchor(
        "resnet_cifar10",
        (
            "data=folder",
            f"data.data_dir={SHARED / 'cifar10-jpeg'}",
            "model=resnet",
            "model.width_divisor=4",
            "data.augment.translate=4",
            "data.augment.hflip=true",
            "scheduler=onecycle",
            "data.batch_size=128",
        ),
        0.93,
        "ResNet-18 on CIFAR-10 with long GPU schedules (~93-95%); here at a quarter of its width",
        (1,),
        20,
        1,
    ),
)


def train(anchor: Anchor, seed: int, epochs: int, out: Path) -> dict:
    run_dir = out / f"{anchor.name}_seed{seed}_{epochs}ep_{time.strftime('%Y%m%d-%H%M%S')}"
    command = [
        sys.executable,
        str(REPO / "train.py"),
        *anchor.overrides,
        f"seed={seed}",
        f"trainer.max_epochs={epochs}",
        "early_stopping.patience=1000",
        f"hydra.run.dir={run_dir}",
    ]
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    results = json.loads((run_dir / "results.json").read_text())
    results["wall_s"] = time.perf_counter() - started
    print(
        f"  {anchor.name} seed {seed}: test_acc {results['test_acc']:.4f} after {results['epochs_run']} epochs, "
        f"{results['wall_s']:.0f} s",
        file=sys.stderr,
        flush=True,
    )
    return results


def row(anchor: Anchor, runs: list[dict], epochs: int) -> dict:
    accuracies = [r["test_acc"] for r in runs]
    return {
        "name": anchor.name,
        "source": anchor.source,
        "published": anchor.published,
        "epochs": epochs,
        "seeds": [r["seed"] for r in runs],
        "test_acc": accuracies,
        "mean": statistics.fmean(accuracies),
        "std": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
        "wall_s": statistics.fmean(r["wall_s"] for r in runs),
        "val_acc_by_epoch": [[h.get("val_acc") for h in r["history"]] for r in runs],
    }


def table(rows: list[dict], quick: bool) -> str:
    lines = [
        f"machine: {describe()}" + (" (--quick: short runs, not comparable with the sources)" if quick else ""),
        "",
        "| configuration | published | source | sweeplab test_acc | seeds | epochs | minutes per run |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        spread = f" ± {r['std']:.4f}" if len(r["seeds"]) > 1 else ""
        lines.append(
            f"| {r['name']} | {r['published']:.4f} | {r['source']} | {r['mean']:.4f}{spread} | "
            f"{len(r['seeds'])} | {r['epochs']} | {r['wall_s'] / 60:.1f} |"
        )
    for r in rows:
        if r["epochs"] > 1:
            curve = ", ".join(f"{acc:.3f}" for acc in r["val_acc_by_epoch"][0] if acc is not None)
            lines.append(f"\n{r['name']}, val_acc by epoch (seed {r['seeds'][0]}): {curve}")
    return "\n".join(lines) + "\n"


def with_earlier_rows(rows: list[dict], earlier: Path) -> list[dict]:
    """``rows``, and the rows of the last table that were not run again (``--only``), in the order of ANCHORS."""
    try:
        kept = {r["name"]: r for r in json.loads(earlier.read_text())}
    except (OSError, ValueError, TypeError, KeyError):
        kept = {}
    kept.update({r["name"]: r for r in rows})
    return [kept[a.name] for a in ANCHORS if a.name in kept]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs of every row")
    parser.add_argument("--only", default=",".join(a.name for a in ANCHORS))
    args = parser.parse_args()
    wanted = args.only.split(",")
    unknown = sorted(set(wanted) - {a.name for a in ANCHORS})
    if unknown:
        sys.exit(f"error: --only {','.join(unknown)}: not a row; rows: {', '.join(a.name for a in ANCHORS)}")
    out = REPO / "outputs" / "benchmarks" / "anchors"
    rows = []
    for anchor in (a for a in ANCHORS if a.name in wanted):
        epochs = anchor.quick_epochs if args.quick else anchor.epochs
        rows.append(row(anchor, [train(anchor, seed, epochs, out) for seed in anchor.seeds], epochs))
    name = "anchors_quick" if args.quick else "anchors"
    rows = with_earlier_rows(rows, RESULTS / f"{name}.json")
    text = table(rows, args.quick)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.md").write_text(text)
    (RESULTS / f"{name}.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
