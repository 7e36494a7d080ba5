"""Training images per second: cnnlab's loop against a plain PyTorch loop over torchvision's
datasets + transforms + DataLoader (with workers), same model, batch, optimizer and augmentation,
on Fashion-MNIST; cnnlab in its default precision (bf16 autocast where the hardware has it) and
with --amp none (float32); and the achieved GFLOP/s (the analysis module's FLOPs x 3 for forward
and backward) as a share of this machine's bf16 matmul peak, its real limit (benchmarks/peak.py).

    python benchmarks/train_speed.py [--images 12800] [--workers 2] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from cnnlab.analysis import summary
from cnnlab.data.sources import FASHION_MNIST_DIR
from cnnlab.models import create_model
from cnnlab.train import TrainConfig, fit
from plain_loop import images_per_second, torchvision_fashion_mnist  # beside this script

CASES = {  # model, options, augmentation (cnnlab's, torchvision's), input side
    "lenet5_modern (BN)": ("lenet5_modern", {"activation": "relu", "pool": "max", "batch_norm": True}, "crop=2", 28),
    "resnet20": ("resnet20", {}, "crop=2", 32),
}


def plain_pytorch(model_name, options, side, images, workers, device, batch, root) -> float:
    pipeline = [transforms.RandomCrop(28, padding=2)]
    if side != 28:
        pipeline.append(transforms.Resize(side))
    pipeline += [transforms.ToTensor(), transforms.Normalize((0.2860,), (0.3530,))]
    dataset = datasets.FashionMNIST(root, train=True, transform=transforms.Compose(pipeline), download=False)
    loader = DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True)
    torch.manual_seed(0)
    model = create_model(model_name, num_classes=10, in_chans=1, **options).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    return images_per_second(model, optimizer, loader, images, device)[0]


def with_cnnlab(model_name, options, augment, images, device, batch, out, amp="auto") -> float:
    config = TrainConfig(model=model_name, data="fashion-mnist", epochs=1, batch_size=batch, subset=images, optimizer="sgd",
                         lr=0.05, momentum=0.9, weight_decay=1e-4, schedule="constant", augment=augment,
                         model_kwargs=options, device=device, out=str(out), overwrite=True, amp=amp)
    result = fit(config, log=lambda _line: None)
    return result.history[0]["images_per_second"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=12_800)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if not FASHION_MNIST_DIR.is_dir():
        raise SystemExit("Fashion-MNIST is not installed: run `make data` first")
    from benchmarks_peak import matmul_gflops

    peak32 = matmul_gflops(args.device)
    peak = matmul_gflops(args.device, dtype=torch.bfloat16)
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"{device_name}; matmul peak {peak32:,.1f} GFLOP/s float32, {peak:,.1f} bf16; {args.images:,} images per "
          f"measurement, batch {args.batch}")
    print("| model | cnnlab default (img/s) | cnnlab --amp none | PyTorch + torchvision DataLoader, float32 | ratio | "
          "cnnlab GFLOP/s | % of bf16 peak |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as root:
        torchvision_fashion_mnist(root)
        for label, (name, options, augment, side) in CASES.items():
            ours = with_cnnlab(name, options, augment, args.images, args.device, args.batch, Path(root) / "run")
            ours32 = with_cnnlab(name, options, augment, args.images, args.device, args.batch, Path(root) / "run", "none")
            theirs = plain_pytorch(name, options, side, args.images, args.workers, args.device, args.batch, root)
            flops_per_image = summary(name, input_size=(1, side, side), batch=1, num_classes=10, in_chans=1, **options).totals.flops
            achieved = ours * flops_per_image * 3 / 1e9
            print(f"| {label} | {ours:,.0f} | {ours32:,.0f} | {theirs:,.0f} | {ours / theirs:.1f}x | {achieved:,.1f} | "
                  f"{100 * achieved / peak:.1f}% |")


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    sys.modules["benchmarks_peak"] = __import__("peak")
    main()
