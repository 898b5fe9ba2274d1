#!/usr/bin/env python
"""What pruning buys: the same Optuna study run with and without a pruner.

Both studies use the same search space (sweeps/mnist_lenet.yaml), the same seeded
sampler and the same number of trials, on the real MNIST copy. The random sampler
is the default here because, seeded, it proposes the same configuration for trial
N in both studies, so the only difference is the pruner; `--sampler tpe` runs the
comparison with TPE, whose later proposals depend on what was pruned. The table
gives the epochs trained in total (epochs reported to the pruner), the wall time
and the best value of each study, and the saving.

    python benchmarks/sweep_efficiency.py --quick
    python benchmarks/sweep_efficiency.py --trials 30 --epochs 8 --pruner hyperband
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import optuna
from machine import describe  # benchmarks/machine.py

from sweeplab.config.resolvers import register_resolvers
from sweeplab.files import write_json_atomic, write_text_atomic
from sweeplab.sweeps.plan import plan_sweep
from sweeplab.sweeps.session import run_sweep
from sweeplab.sweeps.settings import find_sweep_file, load_settings

REPO = Path(__file__).resolve().parents[1]


def run_study(label: str, pruner: str, args) -> dict:
    study_dir = Path(args.out) / label
    shutil.rmtree(study_dir, ignore_errors=True)
    sweep_args = [
        f"sweep.n_trials={args.trials}",
        f"sweep.dir={study_dir}",
        f"sweep.study_name=efficiency_{label}",
        f"sweep.sampler.name={args.sampler}",
        f"sweep.sampler.seed={args.seed}",
        f"sweep.pruner.name={pruner}",
    ]
    if pruner == "median":
        sweep_args += ["sweep.pruner.n_startup_trials=3", "sweep.pruner.n_warmup_steps=0"]
    training = [
        f"data.data_dir={args.data_dir}",
        "data.download=false",
        f"trainer.max_epochs={args.epochs}",
        "logger=csv",
        "progress_bar=false",
    ]
    plan = plan_sweep(load_settings(find_sweep_file(args.sweep), sweep_args), tuple(training))
    start = time.perf_counter()
    status = run_sweep(plan)
    seconds = time.perf_counter() - start
    study = optuna.load_study(study_name=plan.settings.study_name, storage=plan.storage_url)
    finished = [
        t for t in study.trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    ]
    return {
        "study": label,
        "pruner": pruner,
        "exit": status,
        "trials": len(finished),
        "pruned": sum(t.state == optuna.trial.TrialState.PRUNED for t in finished),
        "epochs": sum(len(t.intermediate_values) for t in finished),
        "seconds": seconds,
        "best": study.best_value,
    }


def table(rows: list[dict], args) -> str:
    base, pruned = rows
    saving = 1 - pruned["epochs"] / base["epochs"]
    gap = (base["best"] - pruned["best"]) * 100
    lines = [
        f"Measured on {describe()}: sweep {args.sweep}, {args.trials} trials of up to "
        f"{args.epochs} epochs, {args.sampler} sampler (seed {args.seed}), real MNIST (7,200 train / 800 val images).",
        "",
        "| study | pruner | trials (pruned) | epochs trained | wall time s | best val_acc |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['study']} | {r['pruner']} | {r['trials']} ({r['pruned']}) | {r['epochs']} "
            f"| {r['seconds']:.0f} | {r['best']:.4f} |"
        )
    lines += [
        "",
        f"epochs saved by pruning: {saving:.0%} (target >= 40%); "
        f"wall time ratio pruned/unpruned: {pruned['seconds'] / base['seconds']:.2f}; "
        f"best value gap: {gap:+.2f} accuracy points (target within 0.5)",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--quick", action="store_true", help="16 trials of up to 6 epochs (about 7 minutes on 2 idle CPUs)"
    )
    parser.add_argument("--sweep", default="mnist_lenet")
    parser.add_argument("--trials", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--sampler", default="random", choices=["random", "tpe"])
    parser.add_argument("--pruner", default="median", choices=["median", "hyperband"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=os.environ.get("DATA_DIR", str(REPO.parent / "shared/data/mnist-10k")))
    parser.add_argument("--out", default="outputs/benchmarks/sweep_efficiency")
    parser.add_argument("--table", default="benchmarks/results/sweep_efficiency.md")
    args = parser.parse_args()
    args.trials = args.trials or (16 if args.quick else 30)
    args.epochs = args.epochs or (6 if args.quick else 8)
    if not (Path(args.data_dir) / "MNIST" / "raw").is_dir():
        parser.error(f"--data-dir {args.data_dir!r} holds no MNIST/raw folder")
    register_resolvers()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = [run_study("unpruned", "none", args), run_study("pruned", args.pruner, args)]
    text = table(rows, args)
    print(text)
    write_text_atomic(args.table, text)
    write_json_atomic(Path(args.table).with_suffix(".json"), rows)
    print(f"table written to {args.table}", file=sys.stderr)


if __name__ == "__main__":
    main()
