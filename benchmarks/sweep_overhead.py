#!/usr/bin/env python
"""What a sweep costs beyond its training: ``sweep.py`` against the same study written by hand.

The study: ``--trials`` one-epoch LeNet-5 trials on MNIST (by default the 8,000-image copy),
AdamW, Optuna's random sampler (seed 0) over the learning rate and weight decay, no pruning,
batch size 64, one validation per epoch; its value is the trial's validation accuracy. Two ways,
each a fresh process, timed end to end (start-up, data, every trial, the report):

  sweep: ``python sweep.py sweep=<this study's file>`` (MNIST's default shifts off, no schedule),
  hand:  plain Optuna and a plain PyTorch loop over tensors standardized once (this file's ``--worker``).

They take turns, ``--repeats`` rounds after an untimed warm-up of the disk caches; the ratio is the
median of the rounds' ratios (this shared machine's speed drifts from minute to minute). Then one more
sweep runs under ``cProfile`` (not timed) to say where a trial's seconds go, phase by phase
(:data:`PHASES`); the hand-written way times its own phases. The table goes to
``benchmarks/results/sweep_overhead.md``.

    python benchmarks/sweep_overhead.py                           # 12 trials on ../shared/data/mnist-10k
    python benchmarks/sweep_overhead.py --trials 4 --repeats 1 --no-profile
"""

from __future__ import annotations

import argparse
import json
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
LIMIT = 1.3  # the goal: sweep / hand at most this
LR, WEIGHT_DECAY = (1e-4, 1e-2), (1e-6, 1e-2)
BATCH, EVAL_BATCH, VAL_FRACTION, SPLIT_SEED, SEED = 64, 1000, 0.1, 0, 42
STUDY = f"""# written by benchmarks/sweep_overhead.py
overrides: [data=mnist, model=lenet, optimizer=adamw, scheduler=none, data.augment.translate=0,
            data.batch_size={BATCH}, trainer.max_epochs=1, progress_bar=false, seed={SEED}]
metric: val_acc
direction: maximize
sampler: {{name: random, seed: 0}}
pruner: {{name: none}}
space:
  optimizer.lr: {{type: float, low: {LR[0]}, high: {LR[1]}, log: true}}
  optimizer.weight_decay: {{type: float, low: {WEIGHT_DECAY[0]}, high: {WEIGHT_DECAY[1]}, log: true}}
"""

# phase -> (functions whose cumulative time counts, functions whose time is taken back out). A function is
# (file suffix, name), or (file suffix, name, caller's file suffix, caller's name): its time when called from
# that caller only. Lightning's validation inside ``fit`` runs through the same ``_no_grad_context`` wrapper
# (loops/utilities.py ``_decorator``) as the test, so each is told apart by its caller; the phases do not overlap.
Function = tuple[str, ...]
_IN_FIT_VALIDATION = ("loops/utilities.py", "_decorator", "loops/training_epoch_loop.py", "on_advance_end")
PHASES: dict[str, tuple[list[Function], list[Function]]] = {
    "start-up imports": (
        [
            ("<frozen importlib._bootstrap>", "_find_and_load", "sweep.py", "<module>"),
            ("<frozen importlib._bootstrap>", "_find_and_load", "cli/sweep.py", "run"),
        ],
        [],
    ),
    "sampling": ([("sweeps/space.py", "sample")], []),
    "Optuna bookkeeping": (
        [("optuna/study/_optimize.py", "_run_trial"), ("optuna/trial/_trial.py", "set_user_attr")],
        [("sweeps/workers.py", "__call__")],
    ),
    "compose": (
        [("sweeps/trial_config.py", "compose_train_config"), ("runs/config_record.py", "record_run_config")],
        [],
    ),
    "checks": ([("runs/checks.py", "check_config")], []),
    "data": (
        [("data/datasets.py", "prepare_data"), ("data/datamodule.py", "setup"), ("runs/build.py", "build_datamodule")],
        [],
    ),
    "model/trainer set-up": (
        [
            ("runs/build.py", "build_module"),
            ("runs/build.py", "build_trainer"),
            ("runs/fit.py", "_write_model_summary"),
        ],
        [],
    ),
    "Lightning run set-up/teardown": (
        [("trainer/trainer.py", "_run")],
        [("trainer/trainer.py", "_run_stage"), ("reports/run_plots.py", "on_fit_end")],
    ),
    "training": ([("loops/training_epoch_loop.py", "run")], [_IN_FIT_VALIDATION]),
    "validation": ([_IN_FIT_VALIDATION, ("trainer/trainer.py", "_validate_impl")], []),
    "test": ([("trainer/trainer.py", "_test_impl")], [("reports/run_plots.py", "on_test_end")]),
    "artifacts/plots": (
        [
            ("reports/run_plots.py", "_write"),
            ("sweeps/artifacts.py", "upload_plots"),
            ("sweeps/session.py", "draw_best_trial_plots"),
        ],
        [],
    ),
    "record": ([("runs/provenance.py", "start_record"), ("runs/fit.py", "_finish")], []),
    "report": ([("sweeps/report.py", "write_report")], []),
}


# --- the hand-written study -------------------------------------------------------------
def hand_study(args) -> None:
    """Plain Optuna, a plain loop over tensors decoded and standardized once; prints its phases as JSON."""
    clock = {"start-up": time.perf_counter()}
    import optuna  # noqa: PLC0415 (the parent process needs no torch)
    import torch  # noqa: PLC0415
    import torch.nn.functional as F  # noqa: PLC0415
    from torchvision.datasets.mnist import read_image_file, read_label_file  # noqa: PLC0415

    from sweeplab.models.lenet import LeNet5  # noqa: PLC0415

    phases = dict.fromkeys(("sampling", "data", "model/trainer set-up", "training", "validation"), 0.0)
    began = time.perf_counter()
    raw = Path(args.data_dir) / "MNIST" / "raw"
    images, labels = (
        read_image_file(str(raw / "train-images-idx3-ubyte")).unsqueeze(1),
        read_label_file(str(raw / "train-labels-idx1-ubyte")),
    )
    values = images.double().div(255)
    mean, std = float(values.mean()), float(values.std())
    images = ((images.float().div(255) - mean) / std).contiguous(memory_format=torch.channels_last)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(SPLIT_SEED))
    n_val = round(len(labels) * VAL_FRACTION)
    train, val = order[n_val:].sort().values, order[:n_val].sort().values
    phases["data"] += time.perf_counter() - began
    clock["start-up"] = began - clock["start-up"]

    def objective(trial: optuna.Trial) -> float:
        began = time.perf_counter()
        lr = trial.suggest_float("optimizer.lr", *LR, log=True)
        weight_decay = trial.suggest_float("optimizer.weight_decay", *WEIGHT_DECAY, log=True)
        phases["sampling"] += time.perf_counter() - began
        began = time.perf_counter()
        torch.manual_seed(SEED)
        model = LeNet5((1, 28, 28), 10).to(memory_format=torch.channels_last)
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, fused=True)
        phases["model/trainer set-up"] += time.perf_counter() - began
        for epoch in range(args.epochs):
            began = time.perf_counter()
            model.train()
            shuffled = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(SEED + epoch))]
            for start in range(0, len(shuffled), BATCH):
                batch = shuffled[start : start + BATCH]
                loss = F.cross_entropy(model(images[batch]), labels[batch])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            phases["training"] += time.perf_counter() - began
            began = time.perf_counter()
            model.eval()
            with torch.no_grad():
                correct = sum(
                    int((model(images[val[s : s + EVAL_BATCH]]).argmax(1) == labels[val[s : s + EVAL_BATCH]]).sum())
                    for s in range(0, len(val), EVAL_BATCH)
                )
            phases["validation"] += time.perf_counter() - began
        return correct / len(val)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=args.trials)
    print(json.dumps({"phases": phases, "best": study.best_value}))


# --- the parent: take turns, profile, tabulate ---------------------------------------------
def sweep_command(args, work: Path, study_file: Path, tag: str) -> list[str]:
    return [
        str(REPO / "sweep.py"),
        f"sweep={study_file}",
        f"sweep.n_trials={args.trials}",
        f"sweep.dir={work / tag}",
        f"trainer.max_epochs={args.epochs}",
        f"data.data_dir={args.data_dir}",
        f"paths.output_dir={work / 'outputs'}",
    ]


def run_way(way: str, args, work: Path, study_file: Path, tag: str, profile: Path | None = None) -> tuple[float, dict]:
    shutil.rmtree(work / tag, ignore_errors=True)
    if way == "sweep":
        command = [
            sys.executable,
            *(["-m", "cProfile", "-o", str(profile)] if profile else []),
            *sweep_command(args, work, study_file, tag),
        ]
    else:
        command = [
            sys.executable,
            __file__,
            "--worker",
            "--trials",
            str(args.trials),
            "--epochs",
            str(args.epochs),
            "--data-dir",
            str(args.data_dir),
        ]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=work, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{way} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    extra = json.loads(done.stdout.strip().splitlines()[-1]) if way == "hand" else {}
    print(f"  {way}{' (profiled)' if profile else ''}: {seconds:.1f} s", file=sys.stderr, flush=True)
    return seconds, extra


def _matches(key: tuple[str, int, str], wanted: Function) -> bool:
    return key[0].endswith(wanted[0]) and key[2] == wanted[1]


def _cumulative(stats: pstats.Stats, wanted: Function) -> float:
    """Cumulative seconds of the outermost calls of a function (recursive calls counted once by cProfile);
    with a caller in ``wanted``, only of its calls from that caller."""
    total = 0.0
    for key, value in stats.stats.items():
        if not _matches(key, wanted):
            continue
        if len(wanted) == 2:
            total += value[3]
        else:
            total += sum(timing[3] for caller, timing in value[4].items() if _matches(caller, wanted[2:]))
    return total


def profile_phases(profile: Path) -> tuple[dict[str, float], float]:
    stats = pstats.Stats(str(profile))
    total = max(value[3] for value in stats.stats.values())
    phases = {
        name: max(0.0, sum(_cumulative(stats, f) for f in plus) - sum(_cumulative(stats, f) for f in minus))
        for name, (plus, minus) in PHASES.items()
    }
    return phases, total


def table(
    rounds: list[dict], trials: int, sweep_phases: dict | None, sweep_total: float | None, hand_phases: dict
) -> str:
    sweeps, hands = [r["sweep"] for r in rounds], [r["hand"] for r in rounds]
    ratio = statistics.median(r["sweep"] / r["hand"] for r in rounds)
    lines = [
        f"{trials} one-epoch LeNet-5 trials on MNIST, AdamW, random sampler over lr and weight decay, no pruning; "
        f"{len(rounds)} round(s), the ways taking turns; median (range) of wall seconds, each a fresh process.",
        "",
        "| way | seconds | per trial |",
        "|---|---:|---:|",
        f"| `sweep.py` | {statistics.median(sweeps):.1f} ({min(sweeps):.1f}-{max(sweeps):.1f}) | "
        f"{statistics.median(sweeps) / trials:.2f} |",
        f"| by hand (Optuna + a plain loop) | {statistics.median(hands):.1f} ({min(hands):.1f}-{max(hands):.1f}) | "
        f"{statistics.median(hands) / trials:.2f} |",
        f"| **ratio sweep/hand** | **{ratio:.2f}** (goal <= {LIMIT}) | |",
        "",
    ]
    if sweep_phases is not None:
        lines += [
            f"Where a trial's seconds go (per trial; sweep.py from one more run under cProfile, {sweep_total:.1f} s "
            "in all, profiling included; the hand-written way timed by itself):",
            "",
            "| phase | sweep.py | by hand |",
            "|---|---:|---:|",
        ]
        for name in PHASES:
            hand = hand_phases.get(name)
            lines.append(
                f"| {name} | {sweep_phases[name] / trials:.3f} | {'-' if hand is None else f'{hand / trials:.3f}'} |"
            )
        accounted = sum(sweep_phases.values())
        lines.append(f"| start-up and the rest (whole study / trials) | {(sweep_total - accounted) / trials:.3f} | |")
        lines.append("")
    return "\n".join(lines)


def warm_caches(data_dir: Path) -> None:
    subprocess.run(
        [sys.executable, "-c", "import lightning.pytorch, hydra, optuna, torchvision, sweeplab.cli.sweep"], check=True
    )
    for path in Path(data_dir).rglob("*"):
        if path.is_file():
            path.read_bytes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data" / "mnist-10k")
    parser.add_argument("--no-profile", action="store_true", help="skip the profiled run (no per-phase table)")
    parser.add_argument("--out", type=Path, default=RESULTS / "sweep_overhead.md")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.data_dir = args.data_dir.resolve()
    if args.worker:
        hand_study(args)
        return
    with tempfile.TemporaryDirectory(prefix="sweep_overhead_") as scratch:
        work = Path(scratch)
        study_file = work / "overhead.yaml"
        study_file.write_text(STUDY)
        warm_caches(args.data_dir)
        rounds, hand_phases = [], {}
        for repeat in range(args.repeats):
            ways = ("sweep", "hand") if repeat % 2 == 0 else ("hand", "sweep")
            row = {}
            for way in ways:
                row[way], extra = run_way(way, args, work, study_file, f"{way}_{repeat}")
                hand_phases = extra.get("phases", hand_phases)
            rounds.append(row)
        sweep_phases = sweep_total = None
        if not args.no_profile:
            profile = work / "sweep.prof"
            run_way("sweep", args, work, study_file, "profiled", profile=profile)
            sweep_phases, sweep_total = profile_phases(profile)
    from machine import describe  # noqa: PLC0415 (imports torch: after the timed runs, which are fresh processes)

    text = f"Measured on {describe()}.\n\n" + table(rounds, args.trials, sweep_phases, sweep_total, hand_phases)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        f"# Sweep overhead\n\n`python benchmarks/sweep_overhead.py --trials {args.trials} --repeats "
        f"{args.repeats}`\n\n{text}"
    )


if __name__ == "__main__":
    main()
