#!/usr/bin/env python
"""Training step time of every zoo model in NCHW and in channels-last layout.

`model.channels_last=auto` turns channels-last on for convolutional models on CPUs
and GPUs; this measures what that buys on the machine at hand: the median time of a
forward + backward + AdamW step on a batch of random images, each layout timed in
turn (NCHW, channels-last, NCHW, ...) after warm-up steps.

    python benchmarks/memory_layout.py                  # CPU, batch 64
    python benchmarks/memory_layout.py --device cuda --batch-size 256
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from machine import describe  # benchmarks/machine.py

from sweeplab.config.compose import compose_train
from sweeplab.config.resolvers import register_resolvers
from sweeplab.files import write_text_atomic
from sweeplab.runs.build import build_architecture

# (model, overrides, input shape): the zoo at the widths benchmarks/zoo.py trains
MODELS = [
    ("lenet", [], (1, 28, 28)),
    ("convnet", [], (1, 28, 28)),
    ("alexnet", ["model.width_divisor=8"], (3, 32, 32)),
    ("vgg", ["model.width_divisor=8", "model.norm=batch"], (3, 32, 32)),
    ("nin", ["model.width_divisor=4", "model.norm=batch"], (1, 28, 28)),
    ("googlenet", ["model.width_divisor=4", "model.norm=batch"], (3, 32, 32)),
    ("resnet", ["model.width_divisor=8"], (3, 32, 32)),
    ("torchvision", ["model.name=resnet18"], (3, 32, 32)),
]


def step_times(model, images, labels, steps: int, warm_up: int) -> list[float]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    times = []
    for _ in range(warm_up + steps):
        start = time.perf_counter()
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if images.is_cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times[warm_up:]


def measure(name: str, overrides: list[str], shape: tuple[int, int, int], args) -> dict:
    cfg = compose_train([f"model={name}", *overrides])
    times: dict[str, list[float]] = {"NCHW": [], "channels-last": []}
    for _ in range(args.rounds):
        for layout, memory_format in (("NCHW", torch.contiguous_format), ("channels-last", torch.channels_last)):
            torch.manual_seed(0)
            model = build_architecture(cfg, shape, 10).to(args.device, memory_format=memory_format)
            images = torch.randn(args.batch_size, *shape, device=args.device).contiguous(memory_format=memory_format)
            labels = torch.randint(0, 10, (args.batch_size,), device=args.device)
            times[layout] += step_times(model, images, labels, args.steps, args.warm_up)
    ms = {layout: 1000 * statistics.median(values) for layout, values in times.items()}
    row = {
        "model": " ".join([name, *overrides]),
        "nchw_ms": ms["NCHW"],
        "cl_ms": ms["channels-last"],
        "speedup": ms["NCHW"] / ms["channels-last"],
    }
    print(
        f"  {row['model']}: NCHW {row['nchw_ms']:.1f} ms, channels-last {row['cl_ms']:.1f} ms, "
        f"speedup {row['speedup']:.2f}",
        flush=True,
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per layout and round")
    parser.add_argument("--warm-up", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2, help="each layout is timed this many times, in turn")
    parser.add_argument(
        "--table", default="benchmarks/results/memory_layout.md", help="also write the table here ('' to skip)"
    )
    args = parser.parse_args()
    register_resolvers()
    rows = [measure(name, overrides, shape, args) for name, overrides, shape in MODELS]
    lines = [
        f"machine: {describe(args.device)}; batch {args.batch_size}, median of "
        f"{args.steps * args.rounds} training steps per layout (forward, backward, AdamW), layouts timed in turn",
        "",
        "| model | NCHW ms / step | channels-last ms / step | speedup |",
        "|---|---:|---:|---:|",
        *[f"| {r['model']} | {r['nchw_ms']:.1f} | {r['cl_ms']:.1f} | {r['speedup']:.2f} |" for r in rows],
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.table:
        write_text_atomic(args.table, text)


if __name__ == "__main__":
    main()
