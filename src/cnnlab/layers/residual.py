"""The residual blocks of He et al. 2015 that several families share: BasicBlock (two 3x3 convs)
and Bottleneck (1x1 reduce, 3x3, 1x1 expand), each with BatchNorm and an optional DropPath on the
branch. `residual=False` (BasicBlock) gives the paper's plain baselines; `downsample` is whatever
shortcut the family uses (a 1x1 projection, ResNet-D's average pool + 1x1, or option A's zero pad)."""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.layers.conv import conv1x1, conv3x3
from cnnlab.layers.drop_path import DropPath


class BasicBlock(nn.Module):
    """Two 3x3 convs with BN; the input is added back before the last ReLU (unless plain)."""

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        drop_path: float = 0.0,
        residual: bool = True,
        drop_path_mode: str = "batch",
    ) -> None:
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.drop_path = DropPath(drop_path, drop_path_mode) if drop_path > 0 else nn.Identity()
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.residual:
            identity = x if self.downsample is None else self.downsample(x)
            out = self.drop_path(out) + identity
        return self.relu(out)

    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn2


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4), each with BN, plus the shortcut.

    The paper strides the first 1x1 conv ("v1"); ResNet-B (torchvision's "v1.5") strides the 3x3,
    so the 1x1 no longer skips three quarters of its input. `groups` and `base_width` give
    ResNeXt's cardinality and Wide ResNet's width.
    """

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        stride_in_3x3: bool = False,
        drop_path: float = 0.0,
        drop_path_mode: str = "batch",
    ) -> None:
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = conv1x1(inplanes, width, 1 if stride_in_3x3 else stride)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride if stride_in_3x3 else 1, groups)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.drop_path = DropPath(drop_path, drop_path_mode) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.drop_path(out) + identity)

    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn3
