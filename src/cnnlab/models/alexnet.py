"""AlexNet: the single-stream net of the lecture notes, the paper's two-GPU grouping, and
torchvision's "one weird trick" variant.

A. Krizhevsky, I. Sutskever, G. E. Hinton, "ImageNet Classification with Deep Convolutional
Neural Networks", NeurIPS 2012. A. Krizhevsky, "One weird trick for parallelizing convolutional
neural networks", arXiv:1404.5997, 2014 (alexnet_owt).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from cnnlab.layers import fc_classifier, krizhevsky_lrn, window_output_size
from cnnlab.errors import InputShapeError
from cnnlab.models.base import MLPHeadNet, image_side, stage_info
from cnnlab.models.registry import register_model

# Krizhevsky et al. 2012, Sec. 5: SGD, batch 128, momentum 0.9, weight decay 5e-4, lr 0.01 divided by 10 on plateaus.
RECIPE = dict(optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=5e-4, schedule="step", epochs=90, batch_size=128)


@dataclass(frozen=True)
class ConvLayer:
    """One conv of an AlexNet-style net, followed by ReLU, then optionally LRN and a 3x3/2 max pool."""

    channels: int
    kernel: int
    stride: int = 1
    padding: int = 0
    groups: int = 1
    norm: bool = False
    pool: bool = False


# Seeds 000/003: 227x227 input, 96-256-384-384-256, LRN after conv1 and conv2, overlapping pools.
ALEXNET = (
    ConvLayer(96, 11, stride=4, norm=True, pool=True),
    ConvLayer(256, 5, padding=2, norm=True, pool=True),
    ConvLayer(384, 3, padding=1),
    ConvLayer(384, 3, padding=1),
    ConvLayer(256, 3, padding=1, pool=True),
)
# The paper's Figure 2: conv2, conv4 and conv5 see only the maps on their own GPU (groups=2).
ALEXNET_GROUPED = tuple(
    ConvLayer(**{**layer.__dict__, "groups": 2}) if index in (1, 3, 4) else layer
    for index, layer in enumerate(ALEXNET)
)


class ClassicConvNet(MLPHeadNet):
    """conv-ReLU[-LRN][-pool] layers, flatten, then fc-ReLU-dropout layers: AlexNet and ZFNet.

    AlexNet normalizes before it pools (Krizhevsky et al., Sec. 3.5); ZFNet pools first, then
    normalizes (Zeiler & Fergus, Fig. 3): `norm_after_pool=True`. Pools are the papers'
    overlapping 3x3/2; `pool_kernel=2` gives the 2x2/2 pools AlexNet compared them with (Sec. 3.4).

    Children are named as in the papers and seed 003's tables: features.conv1, features.norm1,
    features.pool1, ..., classifier.fc6, classifier.fc7, classifier.fc8.
    """

    def __init__(
        self,
        layers: Sequence[ConvLayer],
        *,
        num_classes: int,
        in_chans: int,
        input_size: int | tuple[int, ...],
        hidden: Sequence[int] = (4096, 4096),
        dropout: float = 0.5,
        pool_ceil_mode: bool = False,
        norm_after_pool: bool = False,
        pool_kernel: int = 3,
        name: str = "this network",
        designed_size: int = 224,
    ) -> None:
        super().__init__()
        self.num_classes, self.in_chans = num_classes, in_chans
        height, width = image_side(input_size)
        self.default_input_size = (in_chans, height, width)
        features: list[tuple[str, nn.Module]] = []
        self.feature_info = []
        channels, reduction, pools = in_chans, 1, 0
        for number, layer in enumerate(layers, start=1):
            features += [
                (f"conv{number}", nn.Conv2d(channels, layer.channels, layer.kernel, layer.stride, layer.padding, groups=layer.groups)),
                (f"relu{number}", nn.ReLU(inplace=True)),
            ]
            channels = layer.channels
            reduction *= layer.stride
            norm = [(f"norm{number}", krizhevsky_lrn())] if layer.norm else []
            if not norm_after_pool:
                features += norm
            if layer.pool:
                pools += 1
                features.append((f"pool{pools}", nn.MaxPool2d(pool_kernel, stride=2, ceil_mode=pool_ceil_mode)))
                reduction *= 2
            if norm_after_pool:
                features += norm
            if layer.pool:
                self.feature_info.append(stage_info(f"features.{features[-1][0]}", channels, reduction))
        self.features = nn.Sequential(OrderedDict(features))
        self.num_features = hidden[-1]
        first_fc = len(layers) + 1
        # fc6 takes what the last pool leaves of the input (6x6 at AlexNet's 227x227, 5x5 at 224x224)
        sides = lambda side: self.feature_sides(layers, side, pool_ceil_mode, pool_kernel)  # noqa: E731
        final_height, final_width = (sides(side)[-1] for side in (height, width))
        if min(final_height, final_width) < 1:
            smallest = next(side for side in range(1, 4096) if min(sides(side)) >= 1)
            raise InputShapeError(f"input {height}x{width} does not fit {name}: its maps shrink to nothing before the "
                                  f"classifier; the smallest input it accepts is {smallest}x{smallest} (designed for "
                                  f"{designed_size}x{designed_size}); resize the images")
        self.classifier = fc_classifier(channels * final_height * final_width, hidden, num_classes, dropout,
                                        first_layer_number=first_fc)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    @staticmethod
    def feature_sides(layers: Sequence[ConvLayer], side: int, pool_ceil_mode: bool, pool_kernel: int = 3) -> list[int]:
        """The side of the maps after each layer, for a square input of `side`."""
        sides = []
        for layer in layers:
            side = window_output_size(side, layer.kernel, layer.stride, layer.padding)
            if layer.pool and side >= pool_kernel:
                side = window_output_size(side, pool_kernel, 2, ceil_mode=pool_ceil_mode)
            elif layer.pool:
                side = 0
            sides.append(side)
        return sides

class AlexNetOWT(MLPHeadNet):
    """torchvision's AlexNet: 64-192-384-256-256, no LRN, adaptive 6x6 pool, dropout before fc."""

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> None:
        super().__init__()
        self.num_classes, self.in_chans, self.num_features = num_classes, in_chans, 4096
        self.default_input_size = (in_chans, 224, 224)
        # Indices and layout as torchvision.models.alexnet, so its state_dict loads unchanged.
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )
        self.feature_info = [
            stage_info("features.2", 64, 8), stage_info("features.5", 192, 16), stage_info("features.12", 256, 32),
        ]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

@register_model(recipe=RECIPE, family="alexnet", paper="Krizhevsky et al. 2012", input_size=(3, 227, 227))
def alexnet(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5,
            input_size: int | tuple[int, ...] = 227) -> ClassicConvNet:
    """AlexNet as in the lecture notes: one stream, 96-256-384-384-256, LRN, overlapping pools, 227x227.

    LRN follows the ReLU of conv1 and conv2 and precedes their pools, as in the paper (Sec. 3.5);
    seed 000's "simplified" listing puts NORM after POOL, which changes neither shapes nor
    parameters. Dropout 0.5 follows fc6 and fc7. `input_size` builds fc6 for another input: at
    224x224 (d2l's, seed 002's "AlexNet vs LeNet" column) conv5's pool leaves 5x5x256 = 6,400.
    """
    return ClassicConvNet(ALEXNET, num_classes=num_classes, in_chans=in_chans, input_size=input_size, dropout=dropout,
                          name="alexnet", designed_size=227)


@register_model(recipe=RECIPE, family="alexnet", paper="Krizhevsky et al. 2012", input_size=(3, 227, 227))
def alexnet_grouped(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5,
                    input_size: int | tuple[int, ...] = 227) -> ClassicConvNet:
    """AlexNet with the paper's two-GPU split: conv2, conv4 and conv5 in 2 groups (60,965,224 parameters).

    Differs from `alexnet` only there: each half of those layers sees only the maps computed on
    its own GPU, as in the paper's Figure 2.
    """
    return ClassicConvNet(ALEXNET_GROUPED, num_classes=num_classes, in_chans=in_chans, input_size=input_size,
                          dropout=dropout, name="alexnet_grouped", designed_size=227)


@register_model(recipe=RECIPE, family="alexnet", paper="Krizhevsky 2014 (one weird trick); torchvision", input_size=(3, 224, 224))
def alexnet_owt(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> AlexNetOWT:
    """torchvision's AlexNet (64-192-384-256-256, no LRN, 224x224); loads torchvision checkpoints as they are.

    Differs from `alexnet`: the 2014 single-GPU widths, padding 2 in conv1, no LRN, an adaptive
    6x6 average pool before the classifier, and dropout before fc6/fc7 instead of after.
    """
    return AlexNetOWT(num_classes=num_classes, in_chans=in_chans, dropout=dropout)
