"""Convolutions as the residual families use them (conv3x3, conv1x1: no bias, BatchNorm follows),
and conv -> BatchNorm -> activation."""

from __future__ import annotations

from torch import nn


class ConvBnAct(nn.Sequential):
    """conv -> BatchNorm -> activation, the unit most post-2015 nets are built of.

    The conv has no bias when BatchNorm follows (BN's shift makes it redundant). Children are
    named `conv`, `bn`, `act`, as in torchvision's `BasicConv2d`, so checkpoints map by name.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int = 1,
        padding: int | tuple[int, int] = 0,
        groups: int = 1,
        batch_norm: bool = True,
        activation: nn.Module | None = None,
        bn_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride=stride, padding=padding,
            groups=groups, bias=not batch_norm,
        )
        if batch_norm:
            self.bn = nn.BatchNorm2d(out_channels, eps=bn_eps)
        self.act = activation if activation is not None else nn.ReLU(inplace=True)


def conv3x3(in_planes: int, out_planes: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, groups=groups, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)
