"""DenseNet: every layer sees the maps of all the layers before it in its block.

G. Huang, Z. Liu, L. van der Maaten, K. Q. Weinberger, "Densely Connected Convolutional
Networks", CVPR 2017 (Table 1 for ImageNet, Sec. 3-4 for CIFAR). All nets here are DenseNet-BC:
1x1 bottlenecks of 4k maps in each layer and transitions that halve the maps (compression 0.5).
Layout and names are torchvision's (features.denseblockN.denselayerM.norm1 ...).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as checkpoint
from torch import nn

from cnnlab.models.base import PooledLinearNet, stage_info
from cnnlab.models.registry import register_model

# Huang et al. 2016: SGD, Nesterov momentum 0.9, weight decay 1e-4, lr /10 at 50% and 75%.
RECIPE = dict(optimizer="sgd", lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4, schedule="multistep",
              milestones=(0.5, 0.75), epochs=90, batch_size=256)

# Table 1: (growth rate k, layers per dense block, maps of the stem conv).
DENSENET_CONFIGS: dict[str, tuple[int, tuple[int, ...], int]] = {
    "densenet121": (32, (6, 12, 24, 16), 64),
    "densenet161": (48, (6, 12, 36, 24), 96),
    "densenet169": (32, (6, 12, 32, 32), 64),
    "densenet201": (32, (6, 12, 48, 32), 64),
    "densenet264": (32, (6, 12, 64, 48), 64),
}


class DenseLayer(nn.Module):
    """BN-ReLU-conv1x1 (4k maps), BN-ReLU-conv3x3 (k maps) over the concatenation of all earlier maps.

    With `memory_efficient`, the concatenation and bottleneck are recomputed in the backward pass
    instead of stored: the quadratic memory of concatenations becomes linear, for ~15-20% time.
    """

    def __init__(self, in_features: int, growth_rate: int, bn_size: int = 4, drop_rate: float = 0.0,
                 memory_efficient: bool = False) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_features)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_features, bn_size * growth_rate, kernel_size=1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, kernel_size=3, padding=1, bias=False)
        self.drop_rate = drop_rate
        self.memory_efficient = memory_efficient

    def bottleneck(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.conv1(self.relu1(self.norm1(torch.cat(inputs, 1))))

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        if self.memory_efficient and self.training and any(t.requires_grad for t in inputs):
            out = checkpoint.checkpoint(self.bottleneck, *inputs, use_reentrant=False)
        else:
            out = self.bottleneck(*inputs)
        out = self.conv2(self.relu2(self.norm2(out)))
        if self.drop_rate > 0:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        return out


class DenseBlock(nn.ModuleDict):
    """`num_layers` dense layers; returns the input and every layer's k new maps, concatenated."""

    def __init__(self, num_layers: int, in_features: int, growth_rate: int, bn_size: int = 4,
                 drop_rate: float = 0.0, memory_efficient: bool = False) -> None:
        super().__init__()
        for index in range(num_layers):
            self[f"denselayer{index + 1}"] = DenseLayer(
                in_features + index * growth_rate, growth_rate, bn_size, drop_rate, memory_efficient
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class Transition(nn.Sequential):
    """BN-ReLU-conv1x1 that compresses the maps, then a 2x2/2 average pool."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(in_features)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=1, bias=False)
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)


class DenseNet(PooledLinearNet):
    """Stem, dense blocks joined by transitions, BN-ReLU, global average pool, fc."""

    def __init__(
        self,
        growth_rate: int,
        block_config: Sequence[int],
        num_init_features: int,
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        bn_size: int = 4,
        compression: float = 0.5,
        drop_rate: float = 0.0,
        memory_efficient: bool = False,
        zero_init_residual: bool = False,
        cifar_stem: bool = False,
    ) -> None:
        super().__init__()
        self.num_classes, self.in_chans = num_classes, in_chans
        if cifar_stem:  # Sec. 3: one 3x3 conv of 2k maps, no pooling, for 32x32 images
            self.default_input_size = (in_chans, 32, 32)
            stem = [("conv0", nn.Conv2d(in_chans, num_init_features, kernel_size=3, padding=1, bias=False))]
            reduction = 1
        else:
            self.default_input_size = (in_chans, 224, 224)
            stem = [
                ("conv0", nn.Conv2d(in_chans, num_init_features, kernel_size=7, stride=2, padding=3, bias=False)),
                ("norm0", nn.BatchNorm2d(num_init_features)),
                ("relu0", nn.ReLU(inplace=True)),
                ("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1)),
            ]
            reduction = 4
        self.features = nn.Sequential(OrderedDict(stem))
        self.feature_info = []
        channels = num_init_features
        for index, num_layers in enumerate(block_config):
            self.features.add_module(
                f"denseblock{index + 1}",
                DenseBlock(num_layers, channels, growth_rate, bn_size, drop_rate, memory_efficient),
            )
            channels += num_layers * growth_rate
            if index != len(block_config) - 1:
                self.feature_info.append(stage_info(f"features.denseblock{index + 1}", channels, reduction))
                compressed = int(channels * compression)
                self.features.add_module(f"transition{index + 1}", Transition(channels, compressed))
                channels, reduction = compressed, reduction * 2
        self.features.add_module(f"norm{len(block_config) + 1}", nn.BatchNorm2d(channels))
        self.feature_info.append(stage_info(f"features.norm{len(block_config) + 1}", channels, reduction))
        self.num_features = channels
        self.classifier = nn.Linear(channels, num_classes)

        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.zeros_(module.bias)
        if zero_init_residual:  # each layer's new maps start at zero, so the block starts as its input
            for module in self.modules():
                if isinstance(module, DenseLayer):
                    nn.init.zeros_(module.conv2.weight)

    classifier_name = "classifier"

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def global_pool(self, x: torch.Tensor) -> torch.Tensor:
        # norm5 is the last layer of `features`; its ReLU runs here, as in torchvision.
        return torch.flatten(F.adaptive_avg_pool2d(F.relu(x), (1, 1)), 1)

def _densenet(name: str, num_classes: int, in_chans: int, drop_rate: float, memory_efficient: bool,
              zero_init_residual: bool) -> DenseNet:
    growth, blocks, stem = DENSENET_CONFIGS[name]
    return DenseNet(growth, blocks, stem, num_classes=num_classes, in_chans=in_chans, drop_rate=drop_rate,
                    memory_efficient=memory_efficient, zero_init_residual=zero_init_residual)


@register_model(recipe=RECIPE, family="densenet", paper="Huang et al. 2016", input_size=(3, 224, 224))
def densenet121(*, num_classes: int = 1000, in_chans: int = 3, drop_rate: float = 0.0, memory_efficient: bool = False,
                zero_init_residual: bool = False) -> DenseNet:
    """DenseNet-BC-121 (k=32, blocks 6-12-24-16); memory_efficient=True checkpoints the bottlenecks."""
    return _densenet("densenet121", num_classes, in_chans, drop_rate, memory_efficient, zero_init_residual)


@register_model(recipe=RECIPE, family="densenet", paper="Huang et al. 2016", input_size=(3, 224, 224))
def densenet161(*, num_classes: int = 1000, in_chans: int = 3, drop_rate: float = 0.0, memory_efficient: bool = False,
                zero_init_residual: bool = False) -> DenseNet:
    """DenseNet-BC-161 (k=48, blocks 6-12-36-24); memory_efficient=True checkpoints the bottlenecks."""
    return _densenet("densenet161", num_classes, in_chans, drop_rate, memory_efficient, zero_init_residual)


@register_model(recipe=RECIPE, family="densenet", paper="Huang et al. 2016", input_size=(3, 224, 224))
def densenet169(*, num_classes: int = 1000, in_chans: int = 3, drop_rate: float = 0.0, memory_efficient: bool = False,
                zero_init_residual: bool = False) -> DenseNet:
    """DenseNet-BC-169 (k=32, blocks 6-12-32-32); memory_efficient=True checkpoints the bottlenecks."""
    return _densenet("densenet169", num_classes, in_chans, drop_rate, memory_efficient, zero_init_residual)


@register_model(recipe=RECIPE, family="densenet", paper="Huang et al. 2016", input_size=(3, 224, 224))
def densenet201(*, num_classes: int = 1000, in_chans: int = 3, drop_rate: float = 0.0, memory_efficient: bool = False,
                zero_init_residual: bool = False) -> DenseNet:
    """DenseNet-BC-201 (k=32, blocks 6-12-48-32); memory_efficient=True checkpoints the bottlenecks."""
    return _densenet("densenet201", num_classes, in_chans, drop_rate, memory_efficient, zero_init_residual)


@register_model(recipe=RECIPE, family="densenet", paper="Huang et al. 2016", input_size=(3, 224, 224))
def densenet264(*, num_classes: int = 1000, in_chans: int = 3, drop_rate: float = 0.0, memory_efficient: bool = False,
                zero_init_residual: bool = False) -> DenseNet:
    """DenseNet-BC-264 (k=32, blocks 6-12-64-48); memory_efficient=True checkpoints the bottlenecks."""
    return _densenet("densenet264", num_classes, in_chans, drop_rate, memory_efficient, zero_init_residual)


@register_model(recipe=RECIPE, family="densenet", paper="Huang et al. 2016 (CIFAR)", input_size=(3, 32, 32), num_classes=10)
def densenet_bc_100_12(*, num_classes: int = 10, in_chans: int = 3, drop_rate: float = 0.0, memory_efficient: bool = False,
                       zero_init_residual: bool = False) -> DenseNet:
    """DenseNet-BC (L=100, k=12) for CIFAR: 3x3 stem of 24 maps, 3 dense blocks of 16 layers, compression 0.5."""
    return DenseNet(12, (16, 16, 16), 24, num_classes=num_classes, in_chans=in_chans, drop_rate=drop_rate,
                    memory_efficient=memory_efficient, zero_init_residual=zero_init_residual, cifar_stem=True)
