"""Augmentation of whole batches on the training device, each sample with its own random draw.

Everything here takes a float batch (N, C, H, W) and a torch.Generator on the batch's device, and
does no Python work per image: offsets, boxes and factors are drawn as tensors of N values and
applied with indexing, `grid_sample` or broadcasting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

from cnnlab.errors import CnnlabError


def _uniform(n: int, low: float, high: float, generator: torch.Generator, device) -> torch.Tensor:
    return torch.rand(n, generator=generator, device=device) * (high - low) + low


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Zero-pad by `padding` and cut a window of the original size at a random offset per sample
    (the ResNet paper's CIFAR augmentation with padding 4)."""
    if padding <= 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=x.device)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, :, None]  # N, H, 1
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, :]  # N, 1, W
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded[batch, :, rows, cols].permute(0, 3, 1, 2)  # advanced indexing puts C last


def crop_and_flip(x: torch.Tensor, padding: int, flip_probability: float, generator: torch.Generator) -> torch.Tensor:
    """Random crop (zero padding) and horizontal flip together, for any dtype (uint8 here, before
    conversion, so the copies move a quarter of the bytes a float copy would).

    The same result as random_crop then horizontal_flip. A crop's rows are one contiguous block
    per (sample, channel) of the padded image, so they are picked from an `unfold` view (block
    copies); one gather then takes each row's columns, mirrored where the sample flips.
    """
    n, c, h, w = x.shape
    width = w + 2 * padding
    padded = F.pad(x, (padding, padding, padding, padding)) if padding else x
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=x.device)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=x.device)
    flip = torch.rand(n, generator=generator, device=x.device) < flip_probability
    windows = padded.reshape(n * c, -1).unfold(1, h * width, width)  # (N*C, 2p+1, h*width), a view
    rows = windows[torch.arange(n * c, device=x.device), dy.repeat_interleave(c)].view(n, c, h, width)
    across = torch.arange(w, device=x.device)
    cols = dx[:, None] + torch.where(flip[:, None], w - 1 - across, across)  # N, W
    return torch.gather(rows, 3, cols[:, None, None, :].expand(n, c, h, w))


def horizontal_flip(x: torch.Tensor, probability: float, generator: torch.Generator) -> torch.Tensor:
    flip = torch.rand(x.shape[0], generator=generator, device=x.device) < probability
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def random_resized_crop(x: torch.Tensor, size: int, generator: torch.Generator, scale=(0.08, 1.0),
                        ratio=(3 / 4, 4 / 3)) -> torch.Tensor:
    """A box of random area (`scale` of the image) and aspect (`ratio`) per sample, resized to
    `size` (AlexNet/Inception style), as one batched affine grid_sample."""
    n = x.shape[0]
    area = _uniform(n, *scale, generator, x.device)
    log_ratio = _uniform(n, math.log(ratio[0]), math.log(ratio[1]), generator, x.device)
    aspect = torch.exp(log_ratio)
    width = torch.sqrt(area * aspect).clamp(max=1.0)  # fractions of the image side
    height = torch.sqrt(area / aspect).clamp(max=1.0)
    centre_x = _uniform(n, 0, 1, generator, x.device) * (1 - width) * 2 - (1 - width)
    centre_y = _uniform(n, 0, 1, generator, x.device) * (1 - height) * 2 - (1 - height)
    theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0], theta[:, 0, 2] = width, centre_x
    theta[:, 1, 1], theta[:, 1, 2] = height, centre_y
    grid = F.affine_grid(theta, (n, x.shape[1], size, size), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def color_jitter(x: torch.Tensor, brightness: float, contrast: float, saturation: float,
                 generator: torch.Generator) -> torch.Tensor:
    """Per-sample brightness, contrast and (colour images) saturation factors in [1-s, 1+s]."""
    n = x.shape[0]
    if brightness:
        x = x * _uniform(n, 1 - brightness, 1 + brightness, generator, x.device)[:, None, None, None]
    if contrast:
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * _uniform(n, 1 - contrast, 1 + contrast, generator, x.device)[:, None, None, None] + mean
    if saturation and x.shape[1] == 3:
        gray = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
        x = (x - gray) * _uniform(n, 1 - saturation, 1 + saturation, generator, x.device)[:, None, None, None] + gray
    return x.clamp(0.0, 1.0)


def random_erasing(x: torch.Tensor, probability: float, generator: torch.Generator, scale=(0.02, 0.33),
                   ratio=(0.3, 3.3)) -> torch.Tensor:
    """Zero a random rectangle in a random subset of the samples (Zhong et al. 2017)."""
    n, _, h, w = x.shape
    area = _uniform(n, *scale, generator, x.device) * h * w
    aspect = torch.exp(_uniform(n, math.log(ratio[0]), math.log(ratio[1]), generator, x.device))
    box_h = torch.sqrt(area * aspect).clamp(1, h)
    box_w = torch.sqrt(area / aspect).clamp(1, w)
    top = _uniform(n, 0, 1, generator, x.device) * (h - box_h)
    left = _uniform(n, 0, 1, generator, x.device) * (w - box_w)
    rows = torch.arange(h, device=x.device)[None, :, None]
    cols = torch.arange(w, device=x.device)[None, None, :]
    inside = ((rows >= top[:, None, None]) & (rows < (top + box_h)[:, None, None])
              & (cols >= left[:, None, None]) & (cols < (left + box_w)[:, None, None]))
    chosen = torch.rand(n, generator=generator, device=x.device) < probability
    mask = inside & chosen[:, None, None]
    return x.masked_fill(mask[:, None], 0.0)


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """To the model's input size (e.g. 28 -> 32 for lenet5, 28 -> 227 for alexnet, as d2l does)."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=size < x.shape[-1])


@dataclass
class Augment:
    """What to do to each training batch; every field off is a no-op."""

    crop_padding: int = 0
    flip: float = 0.0
    resized_crop: bool = False
    jitter: float = 0.0
    erase: float = 0.0

    @property
    def active(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))

    @property
    def geometric_only(self) -> bool:
        """Only crop and flip: they can run on the uint8 batch before conversion."""
        return not (self.resized_crop or self.jitter or self.erase)

    def __call__(self, x: torch.Tensor, generator: torch.Generator, size: int) -> torch.Tensor:
        """`x` in [0, 1] at the stored size; returns the augmented batch at `size`."""
        if self.resized_crop:
            x = random_resized_crop(x, size, generator)
        else:
            x = random_crop(x, self.crop_padding, generator)
            x = resize(x, size)
        if self.flip:
            x = horizontal_flip(x, self.flip, generator)
        if self.jitter:
            x = color_jitter(x, self.jitter, self.jitter, self.jitter, generator)
        if self.erase:
            x = random_erasing(x, self.erase, generator)
        return x

    def describe(self) -> str:
        parts = []
        if self.resized_crop:
            parts.append("random resized crop")
        if self.crop_padding:
            parts.append(f"random crop (pad {self.crop_padding})")
        if self.flip:
            parts.append(f"horizontal flip (p={self.flip:g})")
        if self.jitter:
            parts.append(f"colour jitter ({self.jitter:g})")
        if self.erase:
            parts.append(f"random erasing (p={self.erase:g})")
        return ", ".join(parts) or "none"


PRESETS = {
    "none": Augment(),
    "digits": Augment(crop_padding=2),  # no flips: a mirrored 2 is not a 2
    "cifar": Augment(crop_padding=4, flip=0.5),  # He et al. 2015, Sec. 4.2
    "imagenet": Augment(resized_crop=True, flip=0.5, jitter=0.4),  # AlexNet/Inception style
}


def parse_augment(text: str | None, default: str = "none") -> Augment:
    """A preset name (none, digits, cifar, imagenet) or a list like "crop=4,flip,erase=0.25,jitter=0.4,rrc"."""
    text = (text or default).strip().lower()
    if text in PRESETS:
        return Augment(**PRESETS[text].__dict__)
    augment = Augment()
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, _, value = item.partition("=")
        try:
            if key == "crop":
                augment.crop_padding = int(value or 4)
            elif key == "flip":
                augment.flip = float(value or 0.5)
            elif key in ("rrc", "resized-crop"):
                augment.resized_crop = True
            elif key == "jitter":
                augment.jitter = float(value or 0.4)
            elif key == "erase":
                augment.erase = float(value or 0.25)
            else:
                raise KeyError(key)
        except (KeyError, ValueError):
            raise CnnlabError(
                f"unknown augmentation {item!r}; use a preset ({', '.join(PRESETS)}) or a list of "
                "crop=PAD, flip[=P], rrc, jitter=S, erase[=P]"
            ) from None
    return augment
