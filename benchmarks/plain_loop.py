"""The plain PyTorch loop cnnlab's training is compared with: torchvision's FashionMNIST dataset and
transforms, a DataLoader with worker processes, float32 (shared by train_speed.py and
time_to_accuracy.py)."""

from __future__ import annotations

import gzip
import shutil
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from cnnlab.data.sources import FASHION_MNIST_DIR


def torchvision_fashion_mnist(root: str | Path) -> Path:
    """Debian's gzipped IDX files unpacked where torchvision's FashionMNIST looks (ROOT/FashionMNIST/raw)."""
    raw = Path(root) / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for path in FASHION_MNIST_DIR.glob("*.gz"):
        with gzip.open(path) as packed, open(raw / path.stem, "wb") as unpacked:
            shutil.copyfileobj(packed, unpacked)
    return Path(root)


def images_per_second(model: torch.nn.Module, optimizer: torch.optim.Optimizer, loader, images: int, device: str,
                      label_smoothing: float = 0.0, schedule=None) -> tuple[float, int]:
    """Train on the loader's batches until `images` have been seen; (images/s, images seen)."""
    model.train()
    seen, start = 0, time.perf_counter()
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        loss = F.cross_entropy(model(x), y, label_smoothing=label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if schedule is not None:
            schedule.step()
        seen += len(y)
        if seen >= images:
            break
    if device == "cuda":
        torch.cuda.synchronize()
    return seen / (time.perf_counter() - start), seen
