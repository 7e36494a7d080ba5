"""Wide ResNets for CIFAR: pre-activation basic blocks, widened k times.

S. Zagoruyko, N. Komodakis, "Wide Residual Networks", BMVC 2016 (Table 1): WRN-d-k has a
3x3 conv with 16 maps, then three groups of n = (d - 4) / 6 blocks with 16k, 32k and 64k maps,
BN-ReLU, global average pooling and fc. Blocks are BN-ReLU-conv3x3 twice (He et al. 2016's
pre-activation), optional dropout between the convs, and a 1x1 conv shortcut where the shape
changes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import ModelConfigError
from cnnlab.layers import DropPath, kaiming_init_, linear_drop_path_rates
from cnnlab.layers.drop_path import DROP_PATH_MODES
from cnnlab.models.base import PooledLinearNet, stage_info
from cnnlab.models.registry import register_model

# Zagoruyko & Komodakis (CIFAR), Sec. 3: lr 0.1, Nesterov 0.9, weight decay 5e-4, /5 at 30%, 60%, 80% (gamma 0.2).
RECIPE = dict(optimizer="sgd", lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4, schedule="multistep",
              milestones=(0.3, 0.6, 0.8), gamma=0.2, epochs=200, batch_size=128)
from cnnlab.layers.conv import conv1x1, conv3x3


class PreActBlock(nn.Module):
    """BN-ReLU-conv3x3, (dropout), BN-ReLU-conv3x3, plus the shortcut."""

    def __init__(self, inplanes: int, planes: int, stride: int, dropout: float, drop_path: float,
                 drop_path_mode: str = "batch") -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes)
        self.drop_rate = dropout
        self.shortcut = conv1x1(inplanes, planes, stride) if stride != 1 or inplanes != planes else None
        self.drop_path = DropPath(drop_path, drop_path_mode) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = F.relu(self.bn1(x))
        # Where the shape changes, the projection sees the pre-activated input, as in the paper's code.
        identity = x if self.shortcut is None else self.shortcut(pre)
        out = self.conv1(pre)
        out = F.relu(self.bn2(out))
        if self.drop_rate:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        return self.drop_path(self.conv2(out)) + identity


class WideResNet(PooledLinearNet):
    def __init__(
        self, depth: int, widen_factor: int, *, num_classes: int = 10, in_chans: int = 3,
        dropout: float = 0.0, drop_path_rate: float = 0.0, drop_path_mode: str = "batch",
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        if drop_path_mode not in DROP_PATH_MODES:
            raise ModelConfigError(f"drop_path_mode must be 'batch' (Huang et al.: a block dropped for the whole "
                                   f"mini-batch) or 'sample' (timm: per image), not {drop_path_mode!r}")
        if (depth - 4) % 6:
            raise ModelConfigError(f"a WRN has 6n+4 layers; {depth} is not of that form (e.g. 16, 22, 28, 40)")
        blocks_per_group = (depth - 4) // 6
        widths = (16 * widen_factor, 32 * widen_factor, 64 * widen_factor)
        self.num_classes, self.in_chans, self.num_features = num_classes, in_chans, widths[-1]
        self.default_input_size = (in_chans, 32, 32)
        self.conv1 = conv3x3(in_chans, 16)
        rates = iter(linear_drop_path_rates(drop_path_rate, 3 * blocks_per_group))
        inplanes, self.feature_info = 16, []
        for index, planes in enumerate(widths):
            blocks = []
            for block_index in range(blocks_per_group):
                stride = 2 if index > 0 and block_index == 0 else 1
                blocks.append(PreActBlock(inplanes, planes, stride, dropout, next(rates), drop_path_mode))
                inplanes = planes
            setattr(self, f"layer{index + 1}", nn.Sequential(*blocks))
            self.feature_info.append(stage_info(f"layer{index + 1}", planes, 2**index))
        self.bn = nn.BatchNorm2d(widths[-1])
        self.relu = nn.ReLU(inplace=True)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[-1], num_classes)
        kaiming_init_(self)
        nn.init.zeros_(self.fc.bias)
        if zero_init_residual:  # pre-activation: the branch ends in conv2, so zero it
            for module in self.modules():
                if isinstance(module, PreActBlock):
                    nn.init.zeros_(module.conv2.weight)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(self.conv1(x))))
        return self.relu(self.bn(x))

@register_model(recipe=RECIPE, family="wide_resnet", paper="Zagoruyko & Komodakis 2016", input_size=(3, 32, 32), num_classes=10)
def wrn28_10(*, num_classes: int = 10, in_chans: int = 3, dropout: float = 0.0, drop_path_rate: float = 0.0,
             drop_path_mode: str = "batch", zero_init_residual: bool = False) -> WideResNet:
    """WRN-28-10 for CIFAR: 4 pre-activation blocks per group, 160-320-640 maps (dropout=0.3 as the paper's best)."""
    return WideResNet(28, 10, num_classes=num_classes, in_chans=in_chans, dropout=dropout,
                      drop_path_rate=drop_path_rate, drop_path_mode=drop_path_mode,
                      zero_init_residual=zero_init_residual)
