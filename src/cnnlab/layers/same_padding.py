"""TensorFlow's "SAME" padding, for the nets whose weights were trained in TensorFlow (NASNet-A).

A window of size K and stride S gives ceil(N / S) outputs; the padding that takes is split with
the odd pixel after (bottom, right). PyTorch's `padding="same"` allows stride 1 only, where the
split is symmetric and a fixed `padding=K // 2` is the same thing; at stride 2 the split depends
on the input's size, so these modules pad in `forward`. They subclass PyTorch's conv and pools,
so analysis counts them as those layers and BatchNorm folds into the conv.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """(before, after) for one axis: total = max((ceil(N/S) - 1) S + D(K - 1) + 1 - N, 0)."""
    total = max((math.ceil(size / stride) - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return total // 2, total - total // 2


class SamePadded:
    """Mixin: pads the input as TensorFlow's "SAME" before the window slides."""

    pad_value = 0.0

    def padding_for(self, height: int, width: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """((top, bottom), (left, right)) for an input of this size."""
        kernel, stride, dilation = (_pair(getattr(self, name, 1)) for name in ("kernel_size", "stride", "dilation"))
        return (same_padding(height, kernel[0], stride[0], dilation[0]),
                same_padding(width, kernel[1], stride[1], dilation[1]))

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        (top, bottom), (left, right) = self.padding_for(x.shape[-2], x.shape[-1])
        if top == bottom == left == right == 0:
            return x
        return F.pad(x, (left, right, top, bottom), value=self.pad_value)


class Conv2dSame(SamePadded, nn.Conv2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(self.pad(x), self.weight, self.bias)


class MaxPool2dSame(SamePadded, nn.MaxPool2d):
    pad_value = -math.inf

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(self.pad(x), self.kernel_size, self.stride, 0, self.dilation, self.ceil_mode)


class AvgPool2dSame(SamePadded, nn.AvgPool2d):
    """The zero padding counts in the average, as in timm's port whose weights NASNet-A loads
    (TensorFlow itself leaves it out): the outputs then equal timm's."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(self.pad(x), self.kernel_size, self.stride, 0, self.ceil_mode, True)


def conv2d_same(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1,
                bias: bool = False) -> nn.Conv2d:
    """A conv with "SAME" padding: a plain nn.Conv2d at stride 1, Conv2dSame above it."""
    if stride == 1:
        return nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, groups=groups, bias=bias)
    return Conv2dSame(in_channels, out_channels, kernel_size, stride=stride, groups=groups, bias=bias)


def pool2d_same(kind: str, kernel_size: int, stride: int) -> nn.Module:
    """A max or average pool with "SAME" padding; at stride 1 the average leaves the padding out."""
    if stride == 1:
        if kind == "max":
            return nn.MaxPool2d(kernel_size, 1, padding=kernel_size // 2)
        return nn.AvgPool2d(kernel_size, 1, padding=kernel_size // 2, count_include_pad=False)
    return (MaxPool2dSame if kind == "max" else AvgPool2dSame)(kernel_size, stride)


def _pair(value) -> tuple[int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)
