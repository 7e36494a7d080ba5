"""Images per second delivered to a training step: cnnlab's in-memory batches, augmented as whole
tensors, against torchvision's datasets + transforms + DataLoader with worker processes doing the
same augmentation. Also the time to read Fashion-MNIST from disk.

    python benchmarks/data_speed.py [--workers 2] [--batch 128]

Fashion-MNIST: random crop with 2-pixel zero padding (the digits preset). CIFAR-shaped: 50,000
random 3x32x32 images (no CIFAR can be downloaded here), random crop with 4-pixel padding and
horizontal flip (the ResNet paper's). Both normalize. One pass over the training images each.
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import datasets, transforms

from cnnlab.data import Normalization, TensorBatches, channel_stats, load_source, parse_augment
from cnnlab.data.sources import FASHION_MNIST_DIR


class ArrayImages(Dataset):
    """What torchvision's CIFAR10 does per item: an HWC uint8 array to a PIL image, then transforms."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        return self.transform(Image.fromarray(self.images[index])), int(self.labels[index])


def drain(batches) -> tuple[float, int]:
    start, seen = time.perf_counter(), 0
    for x, y in batches:
        seen += len(y)
    return time.perf_counter() - start, seen


def cnnlab_rate(images: torch.Tensor, labels: torch.Tensor, augment: str, batch: int) -> float:
    mean, std = channel_stats(images)
    batches = TensorBatches(images, labels, batch, size=images.shape[-1], normalization=Normalization(mean, std),
                            augment=parse_augment(augment), shuffle=True, seed=0)
    seconds, seen = drain(batches)
    return seen / seconds


def torchvision_rate(dataset: Dataset, batch: int, workers: int) -> float:
    loader = DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers, persistent_workers=False)
    seconds, seen = drain(loader)
    return seen / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=128)
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"threads {torch.get_num_threads()}, DataLoader workers {args.workers}, batch {args.batch}")

    if FASHION_MNIST_DIR.is_dir():
        start = time.perf_counter()
        source = load_source("fashion-mnist")
        cnnlab_read = time.perf_counter() - start
        with tempfile.TemporaryDirectory() as folder:
            raw = Path(folder) / "FashionMNIST" / "raw"
            raw.mkdir(parents=True)
            for path in FASHION_MNIST_DIR.glob("*.gz"):  # torchvision reads the unpacked files
                with gzip.open(path) as packed, open(raw / path.stem, "wb") as unpacked:
                    shutil.copyfileobj(packed, unpacked)
            start = time.perf_counter()
            mean, std = 0.2860, 0.3530
            pipeline = transforms.Compose([transforms.RandomCrop(28, padding=2), transforms.ToTensor(), transforms.Normalize((mean,), (std,))])
            train = datasets.FashionMNIST(folder, train=True, transform=pipeline, download=False)
            datasets.FashionMNIST(folder, train=False, download=False)
            torchvision_read = time.perf_counter() - start
            ours = cnnlab_rate(source.train.images, source.train.labels, "digits", args.batch)
            theirs = torchvision_rate(train, args.batch, args.workers)
        print(f"| Fashion-MNIST, 60,000 train images, random crop (pad 2) | {ours:,.0f} | {theirs:,.0f} | {ours / theirs:.1f}x |")
        print(f"read from disk (train + test, from .gz): cnnlab {cnnlab_read:.2f} s; torchvision {torchvision_read:.2f} s "
              "(from the unpacked files it needs)")
    else:
        print("Fashion-MNIST is not installed (make data): skipped")

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(50_000, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=50_000)
    pipeline = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(), transforms.ToTensor(),
                                   transforms.Normalize((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))])
    ours = cnnlab_rate(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(labels), "cifar", args.batch)
    theirs = torchvision_rate(ArrayImages(images, labels, pipeline), args.batch, args.workers)
    print(f"| CIFAR-shaped, 50,000 images, crop (pad 4) + flip | {ours:,.0f} | {theirs:,.0f} | {ours / theirs:.1f}x |")


if __name__ == "__main__":
    main()
