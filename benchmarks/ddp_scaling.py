"""Data-parallel scaling: training images per second with 1 and N processes (torchrun, gloo on
CPU / nccl on GPUs), same per-process batch, Fashion-MNIST, no augmentation.

    python benchmarks/ddp_scaling.py [--nproc 2] [--images 12800] [--device cpu|cuda]

Each configuration trains 2 epochs of --images images in a fresh process group; the figure is the
second epoch's (the first warms up). Efficiency = N-process throughput / (N x one process's) with
the same threads per process, so it measures the cost of the gradient all-reduce, not of sharing
cores; "1 process, all threads" is what a user would otherwise run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CASES = {
    "lenet5_modern (BN)": ["lenet5_modern", "--set", "activation=relu", "--set", "pool=max", "--set", "batch_norm=true"],
    "resnet20": ["resnet20"],
}


def images_per_second(out: Path, model_args: list[str], nproc: int, threads: int | None, images: int, device: str,
                      batch: int) -> float:
    arguments = [*model_args, "--data", "fashion-mnist", "--epochs", "2", "--subset", str(images), "--batch-size", str(batch),
                 "--augment", "none", "--device", device, "--val-fraction", "0.02", "--out", str(out)]
    environment = dict(os.environ)
    if threads is not None:
        environment["OMP_NUM_THREADS"] = str(threads)
    if nproc == 1:
        command = [sys.executable, "-m", "cnnlab", "train", *arguments]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
                   "-m", "cnnlab", "train", *arguments]
    subprocess.run(command, check=True, capture_output=True, env=environment)
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return history[-1]["images_per_second"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--images", type=int, default=12800)
    parser.add_argument("--batch", type=int, default=128, help="per process")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    per_process = max(1, cores // args.nproc) if args.device == "cpu" else None
    print(f"{cores} cores, device {args.device}; batch {args.batch} per process; {args.images:,} images per epoch\n")
    print(f"| model | 1 process, all threads | 1 process, {per_process or '-'} thread(s) | {args.nproc} processes "
          f"| speed-up vs all threads | efficiency |")
    print("|---|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        for label, model_args in CASES.items():
            run = lambda name, n, t: images_per_second(Path(folder) / f"{label}-{name}".replace(" ", "_"), model_args,  # noqa: E731
                                                      n, t, args.images, args.device, args.batch)
            everything = run("all", 1, None)
            one = run("one", 1, per_process)
            many = run("many", args.nproc, per_process)
            print(f"| {label} | {everything:,.0f} img/s | {one:,.0f} img/s | {many:,.0f} img/s | {many / everything:.2f}x "
                  f"| {many / (args.nproc * one):.0%} |", flush=True)


if __name__ == "__main__":
    main()
