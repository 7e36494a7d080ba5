"""ResNet for ImageNet: the paper's nets, their plain baselines, the "Bag of Tricks" tweaks,
ResNeXt and Wide ResNet.

K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image Recognition", CVPR 2016
(Table 1). T. He et al., "Bag of Tricks for Image Classification with Convolutional Neural
Networks", CVPR 2019 (ResNet-B/C/D, Fig. 2). S. Xie et al., "Aggregated Residual
Transformations for Deep Neural Networks", CVPR 2017 (ResNeXt). S. Zagoruyko, N. Komodakis,
"Wide Residual Networks", BMVC 2016.

Layout and state-dict names are torchvision's (conv1, bn1, layer1..layer4, fc), so its
checkpoints load where the architecture is the same.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from cnnlab.errors import ModelConfigError
from cnnlab.layers import kaiming_init_, linear_drop_path_rates
from cnnlab.layers.drop_path import DROP_PATH_MODES
from cnnlab.layers.conv import conv1x1, conv3x3
from cnnlab.layers.residual import BasicBlock, Bottleneck
from cnnlab.models.base import PooledLinearNet, stage_info
from cnnlab.models.registry import register_model

# Table 1: blocks per stage.
RESNET_DEPTHS: dict[int, tuple[str, tuple[int, int, int, int]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
STAGE_WIDTHS = (64, 128, 256, 512)


def _deep_stem(in_chans: int, stem_width: int = 32) -> nn.Sequential:
    """ResNet-C's stem: three 3x3 convs (32, 32, 64), the first with stride 2; BN+ReLU between.

    The last conv's BN and ReLU are the model's bn1 and relu, as in the 7x7 stem.
    """
    return nn.Sequential(
        conv3x3(in_chans, stem_width, stride=2), nn.BatchNorm2d(stem_width), nn.ReLU(inplace=True),
        conv3x3(stem_width, stem_width), nn.BatchNorm2d(stem_width), nn.ReLU(inplace=True),
        conv3x3(stem_width, 64),
    )


class ResNet(PooledLinearNet):
    """Stem, four stages of residual blocks (64-128-256-512 wide), global average pool, fc.

    `drop_path_rate`: stochastic depth, block l of L dropped with probability l/L x rate for the whole
    mini-batch (Huang et al.; `drop_path_mode="sample"`: per image, as timm)."""

    def __init__(
        self,
        block: str,
        layers: Sequence[int],
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        groups: int = 1,
        width_per_group: int = 64,
        stride_in_3x3: bool = False,
        deep_stem: bool = False,
        avg_down: bool = False,
        residual: bool = True,
        zero_init_residual: bool = False,
        drop_path_rate: float = 0.0,
        drop_path_mode: str = "batch",
    ) -> None:
        super().__init__()
        if not residual and drop_path_rate:
            raise ModelConfigError("drop_path_rate needs residual blocks: a plain net has no branch to drop")
        if not 0.0 <= drop_path_rate < 1.0:
            raise ModelConfigError(f"drop_path_rate must be in [0, 1), got {drop_path_rate}")
        if drop_path_mode not in DROP_PATH_MODES:
            raise ModelConfigError(f"drop_path_mode must be 'batch' (Huang et al.: a block dropped for the whole "
                                   f"mini-batch) or 'sample' (timm: per image), not {drop_path_mode!r}")
        self.drop_path_mode = drop_path_mode
        self.block = BasicBlock if block == "basic" else Bottleneck
        self.num_classes, self.in_chans = num_classes, in_chans
        self.default_input_size = (in_chans, 224, 224)
        self.groups, self.base_width = groups, width_per_group
        self.stride_in_3x3, self.avg_down, self.residual = stride_in_3x3, avg_down, residual
        self.inplanes = 64

        self.conv1 = (
            _deep_stem(in_chans) if deep_stem
            else nn.Conv2d(in_chans, 64, kernel_size=7, stride=2, padding=3, bias=False)
        )
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        rates = iter(linear_drop_path_rates(drop_path_rate, sum(layers)))
        self.feature_info = []
        for index, (width, blocks) in enumerate(zip(STAGE_WIDTHS, layers)):
            stride = 1 if index == 0 else 2
            stage = self._make_layer(width, blocks, stride, [next(rates) for _ in range(blocks)])
            setattr(self, f"layer{index + 1}", stage)
            self.feature_info.append(stage_info(f"layer{index + 1}", width * self.block.expansion, 4 * 2**index))
        self.num_features = STAGE_WIDTHS[-1] * self.block.expansion
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(self.num_features, num_classes)

        kaiming_init_(self)
        if zero_init_residual:  # each block starts as the identity (Goyal et al. 2017)
            for module in self.modules():
                if isinstance(module, (BasicBlock, Bottleneck)):
                    nn.init.zeros_(module.last_bn().weight)

    def _make_layer(self, planes: int, blocks: int, stride: int, drop_paths: list[float]) -> nn.Sequential:
        out_planes = planes * self.block.expansion
        downsample = None
        if self.residual and (stride != 1 or self.inplanes != out_planes):
            if self.avg_down and stride != 1:  # ResNet-D: average, then a 1x1 conv that sees every pixel
                downsample = nn.Sequential(
                    nn.AvgPool2d(2, stride=stride, ceil_mode=True, count_include_pad=False),
                    conv1x1(self.inplanes, out_planes),
                    nn.BatchNorm2d(out_planes),
                )
            else:  # option B: a strided 1x1 projection
                downsample = nn.Sequential(conv1x1(self.inplanes, out_planes, stride), nn.BatchNorm2d(out_planes))
        layers = []
        for index in range(blocks):
            block_stride, block_downsample = (stride, downsample) if index == 0 else (1, None)
            if self.block is BasicBlock:
                layers.append(BasicBlock(self.inplanes, planes, block_stride, block_downsample, drop_paths[index],
                                         self.residual, self.drop_path_mode))
            else:
                layers.append(Bottleneck(
                    self.inplanes, planes, block_stride, block_downsample, self.groups, self.base_width,
                    self.stride_in_3x3, drop_paths[index], self.drop_path_mode,
                ))
            self.inplanes = out_planes
        return nn.Sequential(*layers)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))




def _resnet(depth: int, **kwargs) -> ResNet:
    block, layers = RESNET_DEPTHS[depth]
    return ResNet(block, layers, **kwargs)


_PAPER = "He et al. 2015"
# He et al. 2015, Sec. 3.4: SGD lr 0.1, momentum 0.9, weight decay 1e-4, batch 256, lr /10 at fixed points
# (ResNeXt, Xie et al. 2017, Sec. 4: the same).
RECIPE = dict(optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=1e-4, schedule="multistep", milestones=(0.33, 0.67),
              epochs=90, batch_size=256)
# torchvision's ImageNet recipe for its wide_resnet50_2 (its references/classification: SGD lr 0.1,
# momentum 0.9, weight decay 1e-4, /10 every 30 of 90 epochs, batch 256), not the CIFAR WRN paper's.
TORCHVISION_RECIPE = dict(optimizer="sgd", lr=0.1, momentum=0.9, nesterov=False, weight_decay=1e-4, schedule="step",
                          epochs=90, batch_size=256)


@register_model(recipe=RECIPE, family="resnet", paper=_PAPER, input_size=(3, 224, 224))
def resnet18(*, num_classes: int = 1000, in_chans: int = 3, zero_init_residual: bool = False,
             drop_path_rate: float = 0.0, drop_path_mode: str = "batch", stride_in_3x3: bool = False) -> ResNet:
    """ResNet-18 as published: option-B projections."""
    return _resnet(18, num_classes=num_classes, in_chans=in_chans, stride_in_3x3=stride_in_3x3,
                   zero_init_residual=zero_init_residual, drop_path_rate=drop_path_rate, drop_path_mode=drop_path_mode)


@register_model(recipe=RECIPE, family="resnet", paper=_PAPER, input_size=(3, 224, 224))
def resnet34(*, num_classes: int = 1000, in_chans: int = 3, zero_init_residual: bool = False,
             drop_path_rate: float = 0.0, drop_path_mode: str = "batch", stride_in_3x3: bool = False) -> ResNet:
    """ResNet-34 as published: option-B projections."""
    return _resnet(34, num_classes=num_classes, in_chans=in_chans, stride_in_3x3=stride_in_3x3,
                   zero_init_residual=zero_init_residual, drop_path_rate=drop_path_rate, drop_path_mode=drop_path_mode)


@register_model(recipe=RECIPE, family="resnet", paper=_PAPER, input_size=(3, 224, 224))
def resnet50(*, num_classes: int = 1000, in_chans: int = 3, zero_init_residual: bool = False,
             drop_path_rate: float = 0.0, drop_path_mode: str = "batch", stride_in_3x3: bool = False) -> ResNet:
    """ResNet-50 as published: option-B projections, the bottleneck's stride in its first 1x1 conv (v1).

    stride_in_3x3=True moves it to the 3x3 (ResNet-B, torchvision's v1.5 weights).
    """
    return _resnet(50, num_classes=num_classes, in_chans=in_chans, stride_in_3x3=stride_in_3x3,
                   zero_init_residual=zero_init_residual, drop_path_rate=drop_path_rate, drop_path_mode=drop_path_mode)


@register_model(recipe=RECIPE, family="resnet", paper=_PAPER, input_size=(3, 224, 224))
def resnet101(*, num_classes: int = 1000, in_chans: int = 3, zero_init_residual: bool = False,
             drop_path_rate: float = 0.0, drop_path_mode: str = "batch", stride_in_3x3: bool = False) -> ResNet:
    """ResNet-101 as published: option-B projections, the bottleneck's stride in its first 1x1 conv (v1).

    stride_in_3x3=True moves it to the 3x3 (ResNet-B, torchvision's v1.5 weights).
    """
    return _resnet(101, num_classes=num_classes, in_chans=in_chans, stride_in_3x3=stride_in_3x3,
                   zero_init_residual=zero_init_residual, drop_path_rate=drop_path_rate, drop_path_mode=drop_path_mode)


@register_model(recipe=RECIPE, family="resnet", paper=_PAPER, input_size=(3, 224, 224))
def resnet152(*, num_classes: int = 1000, in_chans: int = 3, zero_init_residual: bool = False,
             drop_path_rate: float = 0.0, drop_path_mode: str = "batch", stride_in_3x3: bool = False) -> ResNet:
    """ResNet-152 as published: option-B projections, the bottleneck's stride in its first 1x1 conv (v1).

    stride_in_3x3=True moves it to the 3x3 (ResNet-B, torchvision's v1.5 weights).
    """
    return _resnet(152, num_classes=num_classes, in_chans=in_chans, stride_in_3x3=stride_in_3x3,
                   zero_init_residual=zero_init_residual, drop_path_rate=drop_path_rate, drop_path_mode=drop_path_mode)


@register_model(recipe=RECIPE, family="resnet", paper="He et al. 2019 (Bag of Tricks); torchvision", input_size=(3, 224, 224))
def resnet50b(*, num_classes: int = 1000, in_chans: int = 3, zero_init_residual: bool = False,
              drop_path_rate: float = 0.0, drop_path_mode: str = "batch") -> ResNet:
    """ResNet-50-B: the bottleneck strides its 3x3 conv, not the 1x1 (torchvision's resnet50, "v1.5").

    Differs from `resnet50` only there: same parameters, more compute in stages 2-4's first blocks.
    """
    return _resnet(50, num_classes=num_classes, in_chans=in_chans, stride_in_3x3=True,
                   zero_init_residual=zero_init_residual, drop_path_rate=drop_path_rate, drop_path_mode=drop_path_mode)


@register_model(recipe=RECIPE, family="resnet", paper="He et al. 2019 (Bag of Tricks)", input_size=(3, 224, 224))
def resnet50c(*, num_classes: int = 1000, in_chans: int = 3, zero_init_residual: bool = False,
              drop_path_rate: float = 0.0, drop_path_mode: str = "batch") -> ResNet:
    """ResNet-50-C: ResNet-B with the 7x7 stem conv replaced by three 3x3 convs (32, 32, 64)."""
    return _resnet(50, num_classes=num_classes, in_chans=in_chans, stride_in_3x3=True, deep_stem=True,
                   zero_init_residual=zero_init_residual, drop_path_rate=drop_path_rate, drop_path_mode=drop_path_mode)


@register_model(recipe=RECIPE, family="resnet", paper="He et al. 2019 (Bag of Tricks)", input_size=(3, 224, 224))
def resnet50d(*, num_classes: int = 1000, in_chans: int = 3, zero_init_residual: bool = False,
              drop_path_rate: float = 0.0, drop_path_mode: str = "batch") -> ResNet:
    """ResNet-50-D: ResNet-C with a 2x2/2 average pool before each stride-1 1x1 projection."""
    return _resnet(50, num_classes=num_classes, in_chans=in_chans, stride_in_3x3=True, deep_stem=True, avg_down=True,
                   zero_init_residual=zero_init_residual, drop_path_rate=drop_path_rate, drop_path_mode=drop_path_mode)


@register_model(recipe=RECIPE, family="resnet", paper=_PAPER + " (plain baseline)", input_size=(3, 224, 224))
def plain18(*, num_classes: int = 1000, in_chans: int = 3) -> ResNet:
    """The paper's 18-layer plain net: ResNet-18 without shortcuts (Fig. 3, middle)."""
    return _resnet(18, num_classes=num_classes, in_chans=in_chans, residual=False)


@register_model(recipe=RECIPE, family="resnet", paper=_PAPER + " (plain baseline)", input_size=(3, 224, 224))
def plain34(*, num_classes: int = 1000, in_chans: int = 3) -> ResNet:
    """The paper's 34-layer plain net: ResNet-34 without shortcuts (Fig. 3, middle)."""
    return _resnet(34, num_classes=num_classes, in_chans=in_chans, residual=False)


@register_model(recipe=RECIPE, family="resnext", paper="Xie et al. 2017", input_size=(3, 224, 224))
def resnext50_32x4d(*, num_classes: int = 1000, in_chans: int = 3, zero_init_residual: bool = False,
              drop_path_rate: float = 0.0, drop_path_mode: str = "batch") -> ResNet:
    """ResNeXt-50 (32x4d): 32 groups of width 4 in each bottleneck's 3x3 conv (stride in the 3x3, as the paper's code)."""
    return _resnet(50, num_classes=num_classes, in_chans=in_chans, groups=32, width_per_group=4, stride_in_3x3=True,
                   zero_init_residual=zero_init_residual, drop_path_rate=drop_path_rate, drop_path_mode=drop_path_mode)


@register_model(recipe=TORCHVISION_RECIPE, family="wide_resnet", paper="Zagoruyko & Komodakis 2016", input_size=(3, 224, 224))
def wide_resnet50_2(*, num_classes: int = 1000, in_chans: int = 3, zero_init_residual: bool = False,
              drop_path_rate: float = 0.0, drop_path_mode: str = "batch") -> ResNet:
    """Wide ResNet-50-2: ResNet-50-B with bottlenecks twice as wide inside (torchvision's wide_resnet50_2)."""
    return _resnet(50, num_classes=num_classes, in_chans=in_chans, width_per_group=128, stride_in_3x3=True,
                   zero_init_residual=zero_init_residual, drop_path_rate=drop_path_rate, drop_path_mode=drop_path_mode)
