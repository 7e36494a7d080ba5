"""ShuffleNet V2: channel split, depthwise convs and channel shuffle for cheap inference.

N. Ma, X. Zhang, H.-T. Zheng, J. Sun, "ShuffleNet V2: Practical Guidelines for Efficient CNN
Architecture Design", ECCV 2018 (Table 5, Figure 3 c-d). Layout and names are torchvision's.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.models.base import PooledLinearNet, stage_info
from cnnlab.models.registry import register_model

# Table 5, 1.0x: blocks per stage (2, 3, 4) and output channels (conv1, stages 2-4, conv5).
SHUFFLENET_V2_X1_0 = ((4, 8, 4), (24, 116, 232, 464, 1024))


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave the channels of `groups` groups, so information crosses between branches."""
    batch, channels, height, width = x.shape
    x = x.view(batch, groups, channels // groups, height, width).transpose(1, 2).contiguous()
    return x.view(batch, channels, height, width)


def depthwise_conv(channels: int, stride: int) -> nn.Conv2d:
    return nn.Conv2d(channels, channels, kernel_size=3, stride=stride, padding=1, groups=channels, bias=False)


class InvertedResidual(nn.Module):
    """Fig. 3c (stride 1): split the channels in half, transform one half, concatenate, shuffle.
    Fig. 3d (stride 2): both halves see the whole input and are downsampled; channels double."""

    def __init__(self, inp: int, oup: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        branch_features = oup // 2
        if stride > 1:
            self.branch1 = nn.Sequential(
                depthwise_conv(inp, stride), nn.BatchNorm2d(inp),
                nn.Conv2d(inp, branch_features, kernel_size=1, bias=False), nn.BatchNorm2d(branch_features),
                nn.ReLU(inplace=True),
            )
        else:
            self.branch1 = nn.Sequential()
        self.branch2 = nn.Sequential(
            nn.Conv2d(inp if stride > 1 else branch_features, branch_features, kernel_size=1, bias=False),
            nn.BatchNorm2d(branch_features), nn.ReLU(inplace=True),
            depthwise_conv(branch_features, stride), nn.BatchNorm2d(branch_features),
            nn.Conv2d(branch_features, branch_features, kernel_size=1, bias=False), nn.BatchNorm2d(branch_features),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            kept, transformed = x.chunk(2, dim=1)
            out = torch.cat((kept, self.branch2(transformed)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(PooledLinearNet):
    def __init__(self, stages_repeats, stages_out_channels, *, num_classes: int = 1000, in_chans: int = 3) -> None:
        super().__init__()
        self.num_classes, self.in_chans = num_classes, in_chans
        self.default_input_size = (in_chans, 224, 224)
        stem = stages_out_channels[0]
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_chans, stem, 3, 2, 1, bias=False), nn.BatchNorm2d(stem), nn.ReLU(inplace=True)
        )
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        channels, self.feature_info = stem, [stage_info("maxpool", stem, 4)]
        for index, (repeats, out_channels) in enumerate(zip(stages_repeats, stages_out_channels[1:4])):
            blocks = [InvertedResidual(channels, out_channels, 2)]
            blocks += [InvertedResidual(out_channels, out_channels, 1) for _ in range(repeats - 1)]
            setattr(self, f"stage{index + 2}", nn.Sequential(*blocks))
            channels = out_channels
            self.feature_info.append(stage_info(f"stage{index + 2}", channels, 8 * 2**index))
        self.num_features = stages_out_channels[-1]
        self.conv5 = nn.Sequential(
            nn.Conv2d(channels, self.num_features, 1, 1, 0, bias=False), nn.BatchNorm2d(self.num_features),
            nn.ReLU(inplace=True),
        )
        self.feature_info.append(stage_info("conv5", self.num_features, 32))
        self.fc = nn.Linear(self.num_features, num_classes)

    def global_pool(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean([2, 3])

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.conv1(x))
        return self.conv5(self.stage4(self.stage3(self.stage2(x))))

@register_model(family="shufflenet", paper="Ma et al. 2018", input_size=(3, 224, 224))
def shufflenet_v2_x1_0(*, num_classes: int = 1000, in_chans: int = 3) -> ShuffleNetV2:
    """ShuffleNet V2 1.0x: channel split and shuffle, depthwise 3x3, 116-232-464 stage widths."""
    repeats, channels = SHUFFLENET_V2_X1_0
    return ShuffleNetV2(repeats, channels, num_classes=num_classes, in_chans=in_chans)
