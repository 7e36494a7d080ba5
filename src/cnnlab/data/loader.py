"""Batches for training and evaluation, cut from an in-memory uint8 tensor on the device."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from cnnlab.data.augment import Augment, resize


def channel_stats(images: torch.Tensor, chunk: int = 4096) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of uint8 images, in [0, 1] units."""
    channels = images.shape[1]
    total = torch.zeros(channels, dtype=torch.float64)
    squares = torch.zeros(channels, dtype=torch.float64)
    count = 0
    for start in range(0, images.shape[0], chunk):
        block = images[start: start + chunk].to(torch.float64) / 255.0
        total += block.sum(dim=(0, 2, 3))
        squares += (block**2).sum(dim=(0, 2, 3))
        count += block.shape[0] * block.shape[2] * block.shape[3]
    mean = total / count
    std = (squares / count - mean**2).clamp(min=1e-12).sqrt()
    return tuple(round(float(v), 6) for v in mean), tuple(round(float(v), 6) for v in std)


@dataclass
class Normalization:
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
        return (x - mean) / std


class TensorBatches:
    """Minibatches of (float images, labels) from uint8 images kept whole on `device`.

    Each epoch is a permutation drawn from `seed + epoch` (`set_epoch`), so runs repeat exactly
    and a resumed run sees the same batches. Augmentation, resizing to `size` and normalization
    happen per batch, on the device.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        *,
        size: int,
        normalization: Normalization,
        augment: Augment | None = None,
        shuffle: bool = False,
        seed: int = 0,
        device: str | torch.device = "cpu",
        drop_last: bool = False,
    ) -> None:
        self.device = torch.device(device)
        self.images = images.to(self.device)
        self.labels = labels.to(self.device)
        self.batch_size = batch_size
        self.size = size
        self.normalization = normalization
        self.augment = augment if augment is not None and augment.active else None
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        n = self.images.shape[0]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def order(self) -> torch.Tensor:
        n = self.images.shape[0]
        if not self.shuffle:
            return torch.arange(n, device=self.device)
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(n, generator=generator).to(self.device)

    def __iter__(self):
        order = self.order()
        generator = torch.Generator(device=self.device).manual_seed(self.seed * 7_919 + self.epoch)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            index = order[start: start + self.batch_size]
            x = self.images[index].float().div_(255.0)
            x = self.augment(x, generator, self.size) if self.augment else resize(x, self.size)
            yield self.normalization(x), self.labels[index]
