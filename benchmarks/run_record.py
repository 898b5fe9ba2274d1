#!/usr/bin/env python
"""What a run's record (run.json, environment.txt, code.patch, the data fingerprint) costs, per dataset.

Each run writes its record before training (sweeplab.runs.provenance.start_record).
This times it on the shared datasets, twice each: the first time hashes the data
files, the second reads the fingerprint from its cache (what every later run pays).
Loading the data is not timed (a run does it anyway; the folder dataset decodes its
images the first time, which takes a while).

    python benchmarks/run_record.py [--data-root ../shared/data]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from machine import describe  # benchmarks/machine.py

from sweeplab.config.compose import compose_train
from sweeplab.config.resolvers import register_resolvers
from sweeplab.runs.build import build_datamodule
from sweeplab.runs.provenance import start_record

RESULTS = Path(__file__).resolve().parent / "results"
DATASETS = [  # (name, overrides)
    ("mnist-10k", ["data=mnist", "data.data_dir={root}/mnist-10k"]),
    ("mnist (full)", ["data=mnist", "data.data_dir={root}/mnist"]),
    ("cifar10-jpeg (folder)", ["data=folder", "data.data_dir={root}/cifar10-jpeg", "data.cache_dir={out}/decoded"]),
    ("fake", ["data=fake"]),
]


def time_record(overrides: list[str], out: Path) -> tuple[float, float, dict]:
    cfg = compose_train([*overrides, f"paths.output_dir={out}"])
    datamodule = build_datamodule(cfg)
    datamodule.prepare_data()
    datamodule.setup("fit")
    times = []
    for attempt in ("first", "cached"):
        began = time.perf_counter()
        record = start_record(cfg, out / f"run_{attempt}", datamodule, parent=None)
        times.append(time.perf_counter() - began)
    return times[0], times[1], record.data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    args = parser.parse_args()
    register_resolvers()
    lines = [
        f"machine: {describe()}",
        "",
        "| data | files | MB | first record, s | cached record, s |",
        "|---|---:|---:|---:|---:|",
    ]
    with tempfile.TemporaryDirectory() as scratch:
        for name, overrides in DATASETS:
            filled = [o.format(root=args.data_root, out=scratch) for o in overrides]
            first, cached, data = time_record(filled, Path(scratch) / name.split()[0])
            lines.append(f"| {name} | {data['files']} | {data['bytes'] / 1e6:.1f} | {first:.3f} | {cached:.3f} |")
            print(lines[-1], flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "run_record.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
