"""The CIFAR-10 ResNets and plain nets of the ResNet paper's Section 4.2.

K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image Recognition", CVPR 2016:
a 3x3 conv with 16 maps, then three stages of n blocks (16, 32 and 64 maps on 32x32, 16x16 and
8x8), global average pooling and a 10-way fc: 6n + 2 weighted layers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import ModelConfigError
from cnnlab.layers import kaiming_init_, linear_drop_path_rates
from cnnlab.layers.drop_path import DROP_PATH_MODES
from cnnlab.layers.conv import conv1x1, conv3x3
from cnnlab.layers.residual import BasicBlock
from cnnlab.models.base import PooledLinearNet, stage_info
from cnnlab.models.registry import register_model

CIFAR_WIDTHS = (16, 32, 64)
CIFAR_DEPTHS = (20, 32, 44, 56, 110)  # n = 3, 5, 7, 9, 18


class ZeroPadShortcut(nn.Module):
    """Option A: subsample by the stride and zero-pad the new channels; no parameters."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        extra = self.out_channels - self.in_channels
        return F.pad(x, (0, 0, 0, 0, extra // 2, extra - extra // 2))

    def extra_repr(self) -> str:
        return f"{self.in_channels} -> {self.out_channels}, stride={self.stride}"


def shortcut_for(inplanes: int, planes: int, stride: int, option: str) -> nn.Module:
    """The shortcut where a block changes shape: option A (zero padding, no parameters) or B (1x1 projection + BN)."""
    if option == "A":
        return ZeroPadShortcut(inplanes, planes, stride)
    return nn.Sequential(conv1x1(inplanes, planes, stride), nn.BatchNorm2d(planes))


class CifarResNet(PooledLinearNet):
    """conv3x3(16) - 3 stages of n blocks - global average pool - fc, for 32x32 images.

    `drop_path_rate` is stochastic depth as Huang et al. ran it on these nets (resnet110 with 0.5):
    block l of L drops its branch with probability l/L x rate, one draw per mini-batch
    (`drop_path_mode="batch"`), the branch scaled by its survival probability at test time;
    `drop_path_mode="sample"` draws per image (timm's DropPath)."""

    def __init__(
        self,
        depth: int,
        *,
        num_classes: int = 10,
        in_chans: int = 3,
        shortcut: str = "A",
        residual: bool = True,
        zero_init_residual: bool = False,
        drop_path_rate: float = 0.0,
        drop_path_mode: str = "batch",
    ) -> None:
        super().__init__()
        if (depth - 2) % 6:
            raise ModelConfigError(f"a CIFAR ResNet has 6n+2 layers; {depth} is not of that form (try 20, 32, 44, 56, 110)")
        if shortcut not in ("A", "B"):
            raise ModelConfigError(f"shortcut must be 'A' (zero-padding identity) or 'B' (1x1 projection), got {shortcut!r}")
        if not residual and drop_path_rate:
            raise ModelConfigError("drop_path_rate needs residual blocks: a plain net has no branch to drop")
        if drop_path_mode not in DROP_PATH_MODES:
            raise ModelConfigError(f"drop_path_mode must be 'batch' (Huang et al.: a block dropped for the whole "
                                   f"mini-batch) or 'sample' (timm: per image), not {drop_path_mode!r}")
        blocks_per_stage = (depth - 2) // 6
        self.num_classes, self.in_chans = num_classes, in_chans
        self.default_input_size = (in_chans, 32, 32)
        self.conv1 = conv3x3(in_chans, CIFAR_WIDTHS[0])
        self.bn1 = nn.BatchNorm2d(CIFAR_WIDTHS[0])
        self.relu = nn.ReLU(inplace=True)
        rates = iter(linear_drop_path_rates(drop_path_rate, 3 * blocks_per_stage))
        inplanes, self.feature_info = CIFAR_WIDTHS[0], []
        for index, planes in enumerate(CIFAR_WIDTHS):
            blocks = []
            for block_index in range(blocks_per_stage):
                stride = 2 if index > 0 and block_index == 0 else 1
                changes_shape = residual and (stride != 1 or inplanes != planes)
                downsample = shortcut_for(inplanes, planes, stride, shortcut) if changes_shape else None
                blocks.append(BasicBlock(inplanes, planes, stride, downsample, next(rates), residual, drop_path_mode))
                inplanes = planes
            setattr(self, f"layer{index + 1}", nn.Sequential(*blocks))
            self.feature_info.append(stage_info(f"layer{index + 1}", planes, 2**index))
        self.num_features = CIFAR_WIDTHS[-1]
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(self.num_features, num_classes)
        kaiming_init_(self)
        if zero_init_residual:
            for module in self.modules():
                if isinstance(module, BasicBlock):
                    nn.init.zeros_(module.last_bn().weight)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        return self.layer3(self.layer2(self.layer1(x)))

_PAPER = "He et al. 2015 (CIFAR-10, Sec. 4.2)"


# Sec. 4.2 (CIFAR): lr 0.1 divided by 10 at 32k and 48k of 64k iterations, batch 128, weight decay 1e-4.
RECIPE = dict(optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=1e-4, schedule="multistep", milestones=(0.5, 0.75),
              epochs=160, batch_size=128)
_CIFAR = dict(family="resnet_cifar", paper=_PAPER, input_size=(3, 32, 32), num_classes=10, recipe=RECIPE)


@register_model(**_CIFAR)
def resnet20(*, num_classes: int = 10, in_chans: int = 3, shortcut: str = "A", zero_init_residual: bool = False,
             drop_path_rate: float = 0.0, drop_path_mode: str = "batch") -> CifarResNet:
    """CIFAR ResNet-20 (n=3): 16-32-64 maps, option-A shortcuts (shortcut='B' for 1x1 projections)."""
    return CifarResNet(20, num_classes=num_classes, in_chans=in_chans, shortcut=shortcut,
                       zero_init_residual=zero_init_residual, drop_path_rate=drop_path_rate,
                       drop_path_mode=drop_path_mode)


@register_model(**_CIFAR)
def plain20(*, num_classes: int = 10, in_chans: int = 3) -> CifarResNet:
    """CIFAR plain-20 (n=3): resnet20 without shortcuts, the paper's baseline."""
    return CifarResNet(20, num_classes=num_classes, in_chans=in_chans, residual=False)


@register_model(**_CIFAR)
def resnet32(*, num_classes: int = 10, in_chans: int = 3, shortcut: str = "A", zero_init_residual: bool = False,
             drop_path_rate: float = 0.0, drop_path_mode: str = "batch") -> CifarResNet:
    """CIFAR ResNet-32 (n=5): 16-32-64 maps, option-A shortcuts (shortcut='B' for 1x1 projections)."""
    return CifarResNet(32, num_classes=num_classes, in_chans=in_chans, shortcut=shortcut,
                       zero_init_residual=zero_init_residual, drop_path_rate=drop_path_rate,
                       drop_path_mode=drop_path_mode)


@register_model(**_CIFAR)
def plain32(*, num_classes: int = 10, in_chans: int = 3) -> CifarResNet:
    """CIFAR plain-32 (n=5): resnet32 without shortcuts, the paper's baseline."""
    return CifarResNet(32, num_classes=num_classes, in_chans=in_chans, residual=False)


@register_model(**_CIFAR)
def resnet44(*, num_classes: int = 10, in_chans: int = 3, shortcut: str = "A", zero_init_residual: bool = False,
             drop_path_rate: float = 0.0, drop_path_mode: str = "batch") -> CifarResNet:
    """CIFAR ResNet-44 (n=7): 16-32-64 maps, option-A shortcuts (shortcut='B' for 1x1 projections)."""
    return CifarResNet(44, num_classes=num_classes, in_chans=in_chans, shortcut=shortcut,
                       zero_init_residual=zero_init_residual, drop_path_rate=drop_path_rate,
                       drop_path_mode=drop_path_mode)


@register_model(**_CIFAR)
def plain44(*, num_classes: int = 10, in_chans: int = 3) -> CifarResNet:
    """CIFAR plain-44 (n=7): resnet44 without shortcuts, the paper's baseline."""
    return CifarResNet(44, num_classes=num_classes, in_chans=in_chans, residual=False)


@register_model(**_CIFAR)
def resnet56(*, num_classes: int = 10, in_chans: int = 3, shortcut: str = "A", zero_init_residual: bool = False,
             drop_path_rate: float = 0.0, drop_path_mode: str = "batch") -> CifarResNet:
    """CIFAR ResNet-56 (n=9): 16-32-64 maps, option-A shortcuts (shortcut='B' for 1x1 projections)."""
    return CifarResNet(56, num_classes=num_classes, in_chans=in_chans, shortcut=shortcut,
                       zero_init_residual=zero_init_residual, drop_path_rate=drop_path_rate,
                       drop_path_mode=drop_path_mode)


@register_model(**_CIFAR)
def plain56(*, num_classes: int = 10, in_chans: int = 3) -> CifarResNet:
    """CIFAR plain-56 (n=9): resnet56 without shortcuts, the paper's baseline."""
    return CifarResNet(56, num_classes=num_classes, in_chans=in_chans, residual=False)


@register_model(**_CIFAR)
def resnet110(*, num_classes: int = 10, in_chans: int = 3, shortcut: str = "A", zero_init_residual: bool = False,
              drop_path_rate: float = 0.0, drop_path_mode: str = "batch") -> CifarResNet:
    """CIFAR ResNet-110 (n=18): 16-32-64 maps, option-A shortcuts (shortcut='B' for 1x1 projections)."""
    return CifarResNet(110, num_classes=num_classes, in_chans=in_chans, shortcut=shortcut,
                       zero_init_residual=zero_init_residual, drop_path_rate=drop_path_rate,
                       drop_path_mode=drop_path_mode)


@register_model(**_CIFAR)
def plain110(*, num_classes: int = 10, in_chans: int = 3) -> CifarResNet:
    """CIFAR plain-110 (n=18): resnet110 without shortcuts, the paper's baseline."""
    return CifarResNet(110, num_classes=num_classes, in_chans=in_chans, residual=False)
