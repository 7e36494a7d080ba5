"""Batches for training and evaluation, cut from an in-memory uint8 tensor on the device."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset

from cnnlab.data.augment import Augment, crop_and_flip, resize


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
        """(x - mean) / std for x in [0, 1]."""
        mean = torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
        return (x - mean) / std

    def from_uint8(self, x: torch.Tensor) -> torch.Tensor:
        """The same from uint8 pixels, as one multiply and one subtract: x / (255 std) - mean / std."""
        std = torch.tensor(self.std, device=x.device, dtype=torch.float32).view(1, -1, 1, 1)
        mean = torch.tensor(self.mean, device=x.device, dtype=torch.float32).view(1, -1, 1, 1)
        return x.float().mul_(1.0 / (255.0 * std)).sub_(mean / std)


def prepare(x: torch.Tensor, augment: Augment | None, generator: torch.Generator, size: int,
            normalization: Normalization) -> torch.Tensor:
    """uint8 batch on the device -> augmented (or just resized), normalized float batch."""
    if augment is None or augment.geometric_only:
        if augment is not None:
            x = crop_and_flip(x, augment.crop_padding, augment.flip, generator)
        if x.shape[-1] == size and x.shape[-2] == size:
            return normalization.from_uint8(x)
        return normalization(resize(x.float().div_(255.0), size))
    x = x.float().div_(255.0)
    return normalization(augment(x, generator, size))


def shard_order(count: int, shuffle: bool, seed: int, epoch: int, rank: int = 0, world_size: int = 1) -> torch.Tensor:
    """The epoch's permutation of range(count), drawn from seed x 1,000,003 + epoch; with several
    ranks, this rank's shard of it, cut by torch's DistributedSampler itself."""
    if world_size == 1:
        if not shuffle:
            return torch.arange(count)
        return torch.randperm(count, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
    from torch.utils.data import DistributedSampler

    sampler = DistributedSampler(range(count), num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed * 1_000_003)
    sampler.set_epoch(epoch)  # the same generator seed (seed + epoch) and randperm as above
    return torch.tensor(list(sampler), dtype=torch.int64)


def batches_per_epoch(count: int, batch_size: int, drop_last: bool, world_size: int = 1) -> int:
    """Steps one rank takes over its (padded) shard of `count` items."""
    shard = -(-count // world_size)
    return shard // batch_size if drop_last else -(-shard // batch_size)


class ShardedBatches:
    """Minibatches of `count` items in an epoch's order: the permutation drawn from the seed and the
    epoch (`set_epoch`), so runs repeat exactly and a resumed run sees the same batches; under
    data-parallel training (`world_size` > 1) this rank's shard of it, cut exactly as torch's
    DistributedSampler cuts it (disjoint, padded so every rank steps the same number of times).
    With one process the order is the same permutation, so N ranks at batch B see what one
    process sees at N x B. Subclasses say what an item is (`__iter__`)."""

    def __init__(self, count: int, batch_size: int, *, shuffle: bool = False, seed: int = 0, drop_last: bool = False,
                 rank: int = 0, world_size: int = 1, device: str | torch.device = "cpu") -> None:
        self.count, self.batch_size = count, batch_size
        self.shuffle, self.seed, self.drop_last, self.epoch = shuffle, seed, drop_last, 0
        self.rank, self.world_size = rank, world_size
        self.device = torch.device(device)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return batches_per_epoch(self.count, self.batch_size, self.drop_last, self.world_size)

    def order(self) -> torch.Tensor:
        """This rank's indices for the epoch (all of them in one process), on the CPU."""
        return shard_order(self.count, self.shuffle, self.seed, self.epoch, self.rank, self.world_size)

    def steps(self, order: torch.Tensor):
        """The epoch's index batches."""
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            yield order[start: start + self.batch_size]


class TensorBatches(ShardedBatches):
    """Minibatches of (float images, labels) from uint8 images kept whole on `device`.
    Augmentation, resizing to `size` and normalization happen per batch, on the device."""

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
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        super().__init__(images.shape[0], batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last, rank=rank,
                         world_size=world_size, device=device)
        self.images = images.to(self.device)
        self.labels = labels.to(self.device)
        self.size = size
        self.normalization = normalization
        self.augment = augment if augment is not None and augment.active else None

    def __iter__(self):
        generator = torch.Generator(device=self.device).manual_seed(self.seed * 7_919 + self.epoch)
        for index in self.steps(self.order().to(self.device)):
            yield prepare(self.images[index], self.augment, generator, self.size, self.normalization), self.labels[index]


class _DecodedFolder(Dataset):
    def __init__(self, paths: list, labels: torch.Tensor, image_size: int) -> None:
        self.paths, self.labels, self.image_size = paths, labels, image_size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        from cnnlab.data.sources import decode_resized

        return decode_resized(self.paths[index], self.image_size), self.labels[index]


class FolderBatches(ShardedBatches):
    """Batches of a StreamingImageSet: DataLoader workers decode and resize the files
    (torchvision), the device augments and normalizes whole batches, as TensorBatches does."""

    def __init__(self, images, batch_size: int, *, size: int, normalization: Normalization, augment: Augment | None = None,
                 shuffle: bool = False, seed: int = 0, device="cpu", drop_last: bool = False, workers: int = 2,
                 rank: int = 0, world_size: int = 1) -> None:
        super().__init__(len(images), batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last, rank=rank,
                         world_size=world_size, device=device)
        self.dataset = _DecodedFolder(images.paths, images.labels, images.image_size)
        self.size, self.normalization, self.workers = size, normalization, workers
        self.augment = augment if augment is not None and augment.active else None

    def __iter__(self):
        loader = DataLoader(self.dataset, batch_size=self.batch_size, sampler=self.order().tolist(), drop_last=self.drop_last,
                            num_workers=self.workers, pin_memory=self.device.type == "cuda")
        generator = torch.Generator(device=self.device).manual_seed(self.seed * 7_919 + self.epoch)
        for images, labels in loader:
            images, labels = images.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)
            yield prepare(images, self.augment, generator, self.size, self.normalization), labels


def make_batches(images, batch_size: int, **options) -> ShardedBatches:
    """Batches of an in-memory ImageSet or a StreamingImageSet."""
    from cnnlab.data.sources import StreamingImageSet

    if isinstance(images, StreamingImageSet):
        return FolderBatches(images, batch_size, **options)
    return TensorBatches(images.images, images.labels, batch_size, **options)


def image_stats(images) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean/std of a set (of a 2,000-image sample when it streams from disk)."""
    from cnnlab.data.sources import StreamingImageSet

    return channel_stats(images.sample_images() if isinstance(images, StreamingImageSet) else images.images)


def image_for_model(path, channels: int, stored_size: int, size: int, normalization: Normalization) -> torch.Tensor:
    """One image file as a run feeds its model: decoded to `channels`, resized to the stored size of
    its data set, then to the model's input size, normalized; shape (1, C, size, size)."""
    from cnnlab.data.sources import decode_image

    image = decode_image(path, channels)
    return normalization(resize(resize(image[None].float() / 255.0, stored_size), size))
