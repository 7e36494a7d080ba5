"""Time to accuracy on the full Fashion-MNIST: wall time from the command to the first epoch whose
*test* top-1 reaches the target, with `cnnlab train MODEL --recipe fast` (bf16 where the hardware
has it, data in memory, batched augmentation); and the training throughput of that run against a
plain PyTorch float32 loop (torchvision's dataset and transforms, a DataLoader with workers) with
the same model, batch, optimizer, schedule and augmentation.

    python benchmarks/time_to_accuracy.py --model resnet20 --target 0.93 [--epochs N] [--device cuda]
    python benchmarks/time_to_accuracy.py --model lenet5_modern --target 0.90
    python benchmarks/time_to_accuracy.py --model resnet20 --baseline-only   # the plain loop's img/s alone

The clock starts before the `cnnlab train` process is launched, so it counts the interpreter's
start, reading the data, building the model and every validation and test pass: what a user waits.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from plain_loop import images_per_second, torchvision_fashion_mnist  # beside this script

from cnnlab.data.sources import FASHION_MNIST_DIR
from cnnlab.models import create_model, get_entry
from cnnlab.train.config import TrainConfig, with_family_defaults

MODEL_OPTIONS = {"lenet5_modern": ["--set", "activation=relu", "--set", "pool=max", "--set", "batch_norm=true"]}
EPOCH_LINE = re.compile(r"epoch\s+(\d+)/(\d+).*\| test top-1 ([\d.]+)%")


def run_cnnlab(model: str, target: float, device: str, out: Path, extra: list[str]) -> dict:
    """Launch `cnnlab train`, timestamp its epoch lines, and stop at the end of the run."""
    command = [sys.executable, "-m", "cnnlab", "train", model, "--data", "fashion-mnist", "--recipe", "fast", "--watch-test",
               "--device", device, "--out", str(out), "--overwrite", *MODEL_OPTIONS.get(model, []), *extra]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    reached, epochs, settings = None, [], []
    for line in process.stdout:
        now = time.perf_counter() - started
        if line.startswith(("settings:", "compute:")):
            settings.append(line.strip())
        match = EPOCH_LINE.search(line)
        if match:
            accuracy = float(match.group(3)) / 100
            epochs.append({"epoch": int(match.group(1)), "test_top1": accuracy, "seconds": round(now, 1)})
            print(f"  epoch {match.group(1)}/{match.group(2)}: test top-1 {accuracy:.2%} at {now:.1f} s", flush=True)
            if reached is None and accuracy >= target:
                reached = {"epoch": int(match.group(1)), "seconds": round(now, 1), "test_top1": accuracy}
    if process.wait() != 0:
        raise SystemExit(f"cnnlab train failed (exit {process.returncode})")
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    throughput = sorted(record["images_per_second"] for record in history)[len(history) // 2]
    return {"reached": reached, "epochs": epochs, "settings": settings, "train_images_per_second": round(throughput),
            "total_seconds": round(time.perf_counter() - started, 1)}


def plain_pytorch(model: str, device: str, images: int, workers: int) -> dict:
    """The same recipe as `--recipe fast` picks, in a plain float32 loop over torchvision's
    FashionMNIST + transforms + DataLoader; images/s over the first `images` training images."""
    config, _ = with_family_defaults(TrainConfig(model=model, data="fashion-mnist", recipe="fast"), get_entry(model).family)
    options = {"lenet5_modern": dict(activation="relu", pool="max", batch_norm=True)}.get(model, {})
    with tempfile.TemporaryDirectory() as root:
        torchvision_fashion_mnist(root)
        pipeline = [transforms.RandomCrop(28, padding=2), transforms.RandomHorizontalFlip(), transforms.ToTensor(),
                    transforms.Normalize((0.2860,), (0.3530,))]
        dataset = datasets.FashionMNIST(root, train=True, transform=transforms.Compose(pipeline), download=False)
        loader = DataLoader(dataset, batch_size=config.batch_size, shuffle=True, num_workers=workers, drop_last=True,
                            persistent_workers=workers > 0)
        torch.manual_seed(0)
        net = create_model(model, num_classes=10, in_chans=1, **options).to(device)
        optimizer = torch.optim.SGD(net.parameters(), lr=config.lr, momentum=config.momentum or 0.0,
                                    nesterov=bool(config.nesterov), weight_decay=config.weight_decay) \
            if config.optimizer == "sgd" else torch.optim.Adam(net.parameters(), lr=config.lr)
        steps = images // config.batch_size
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=steps + 1, pct_start=0.3)
        rate, seen = images_per_second(net, optimizer, loader, images, device, config.label_smoothing, schedule)
        return {"train_images_per_second": round(rate), "images": seen, "batch": config.batch_size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--target", type=float, default=0.93, help="test top-1 to reach (default 0.93)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--baseline-images", type=int, default=15_360, help="images the plain loop is timed on")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--baseline-only", action="store_true")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("extra", nargs="*", help="more `cnnlab train` flags after --, e.g. -- --epochs 12")
    args = parser.parse_args()
    if not FASHION_MNIST_DIR.is_dir():
        raise SystemExit("Fashion-MNIST is not installed: run `make data` first")
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    result = {"model": args.model, "device": device_name, "target": args.target}
    if not args.baseline_only:
        with tempfile.TemporaryDirectory() as folder:
            result["cnnlab"] = run_cnnlab(args.model, args.target, args.device, Path(folder) / "run", args.extra)
    if not args.no_baseline:
        result["plain_pytorch_float32"] = plain_pytorch(args.model, args.device, args.baseline_images, args.workers)
    if "cnnlab" in result and "plain_pytorch_float32" in result:
        result["throughput_ratio"] = round(result["cnnlab"]["train_images_per_second"]
                                           / result["plain_pytorch_float32"]["train_images_per_second"], 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
