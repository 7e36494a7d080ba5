"""Network in Network: an MLP (two 1x1 convs) after every conv, and no fully-connected layer.

M. Lin, Q. Chen, S. Yan, "Network In Network", ICLR 2014; as built in Dive into Deep Learning,
Sec. 8.3 (seed 001).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from cnnlab.models.base import CnnModel, stage_info
from cnnlab.models.registry import register_model

# Lin et al. 2014, Sec. 4.1: AlexNet's protocol: batches of 128, the rate lowered 10x when accuracy stops improving.
RECIPE = dict(optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=5e-4, schedule="step", epochs=90, batch_size=128)

# (output channels, kernel, stride, padding) of each NiN block; a 3x3/2 max pool follows the
# first three, and the last block's width is the number of classes.
NIN_BLOCKS = ((96, 11, 4, 0), (256, 5, 1, 2), (384, 3, 1, 1))


def nin_block(in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: int) -> nn.Sequential:
    """One kxk conv, then two 1x1 convs (a per-pixel MLP), each followed by ReLU."""
    return nn.Sequential(OrderedDict(
        conv=nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding),
        relu=nn.ReLU(inplace=True),
        mlp1=nn.Conv2d(out_channels, out_channels, kernel_size=1),
        relu1=nn.ReLU(inplace=True),
        mlp2=nn.Conv2d(out_channels, out_channels, kernel_size=1),
        relu2=nn.ReLU(inplace=True),
    ))


class NiN(CnnModel):
    """Three NiN blocks with pools, dropout, a class-wide NiN block, then global average pooling."""

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> None:
        super().__init__()
        self.num_classes, self.in_chans = num_classes, in_chans
        self.default_input_size = (in_chans, 224, 224)
        layers: list[tuple[str, nn.Module]] = []
        self.feature_info, channels, reduction = [], in_chans, 1
        for number, (width, kernel, stride, padding) in enumerate(NIN_BLOCKS, start=1):
            layers.append((f"block{number}", nin_block(channels, width, kernel, stride, padding)))
            layers.append((f"pool{number}", nn.MaxPool2d(3, stride=2)))
            channels, reduction = width, reduction * stride * 2
            self.feature_info.append(stage_info(f"features.pool{number}", channels, reduction))
        self.features = nn.Sequential(OrderedDict(layers))
        self.num_features = channels
        self.drop = nn.Dropout(dropout)
        self.classifier = nin_block(channels, num_classes, 3, 1, 1)
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if pre_logits:  # the pooled 384-wide features, for a linear probe
            return self.flatten(self.global_pool(x))
        # The last ReLU acts on the class maps before pooling, as in d2l and the NiN paper's model.
        return self.flatten(self.global_pool(self.classifier(self.drop(x))))

    def get_classifier(self) -> nn.Module:
        return self.classifier

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.classifier = nin_block(self.num_features, num_classes, 3, 1, 1)


@register_model(recipe=RECIPE, family="nin", paper="Lin et al. 2013", input_size=(3, 224, 224))
def nin(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> NiN:
    """Network in Network as in d2l: NiN blocks 96-256-384-classes, global average pooling, no FC layer."""
    return NiN(num_classes=num_classes, in_chans=in_chans, dropout=dropout)
