"""ShuffleNet (V1) and ShuffleNet V2: grouped 1x1 convs, depthwise convs and channel shuffle.

ShuffleNet: X. Zhang, X. Zhou, M. Lin, J. Sun, "ShuffleNet: An Extremely Efficient Convolutional
Neural Network for Mobile Devices", CVPR 2018 (Table 1, Figure 2): the net seed 002 names among
the "other architectures to know". Its 1x1 convs are grouped to save work, and a channel shuffle
after the first lets information cross between the groups.

ShuffleNet V2, the later paper: N. Ma, X. Zhang, H.-T. Zheng, J. Sun, "ShuffleNet V2: Practical
Guidelines for Efficient CNN Architecture Design", ECCV 2018 (Table 5, Figure 3 c-d). Layout and
names are torchvision's.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.errors import ModelConfigError
from cnnlab.models.base import PooledLinearNet, stage_info
from cnnlab.models.registry import register_model

# Zhang et al. 2018 and Ma et al. 2018: batch 1024, lr 0.5 decayed linearly to 0 (cosine here), weight decay 4e-5.
RECIPE = dict(optimizer="sgd", lr=0.5, momentum=0.9, weight_decay=4e-5, schedule="cosine", epochs=240, batch_size=1024)

# ShuffleNet, Table 1 (1x): the output channels of stage 2 for each group count g (stages 3 and 4
# double them, twice); conv1 has 24 channels; stages 2-4 have 1 stride-2 unit then 3, 7 and 3 more.
SHUFFLENET_V1_STAGE2 = {1: 144, 2: 200, 3: 240, 4: 272, 8: 384}
SHUFFLENET_V1_REPEATS = (4, 8, 4)
# Other scales s ("ShuffleNet sx": every width times s), as the authors released them
# (megvii-model/ShuffleNet-Series): (conv1, stage 2) widths, rounded so the groups divide them.
SHUFFLENET_V1_RELEASED = {
    (3, 0.5): (12, 120), (3, 1.5): (24, 360), (3, 2.0): (48, 480),
    (8, 0.5): (16, 192), (8, 1.5): (24, 576), (8, 2.0): (48, 768),
}

# Table 5, 1.0x: blocks per stage (2, 3, 4) and output channels (conv1, stages 2-4, conv5).
SHUFFLENET_V2_X1_0 = ((4, 8, 4), (24, 116, 232, 464, 1024))


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave the channels of `groups` groups, so information crosses between branches."""
    batch, channels, height, width = x.shape
    x = x.view(batch, groups, channels // groups, height, width).transpose(1, 2).contiguous()
    return x.view(batch, channels, height, width)


def depthwise_conv(channels: int, stride: int) -> nn.Conv2d:
    return nn.Conv2d(channels, channels, kernel_size=3, stride=stride, padding=1, groups=channels, bias=False)


class ChannelShuffle(nn.Module):
    """Fig. 1 (c): reshape the channels to (groups, channels per group), transpose, flatten back.
    Moves data and computes nothing: the table shows it with zero FLOPs."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return channel_shuffle(x, self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


class ShuffleUnit(nn.Module):
    """Fig. 2 (b), stride 1: 1x1 group conv, shuffle, 3x3 depthwise, 1x1 group conv, added to the
    input. Fig. 2 (c), stride 2: the same on the main branch, concatenated with a 3x3 average pool
    of the input, so the channels grow without a projection. The bottleneck is a quarter of the
    output width; no ReLU follows the depthwise conv (the paper's choice)."""

    def __init__(self, inp: int, oup: int, groups: int, stride: int, group_first_conv: bool = True) -> None:
        super().__init__()
        self.stride = stride
        main_out = oup - inp if stride == 2 else oup  # the pooled input fills the rest
        mid = oup // 4
        first_groups = groups if group_first_conv else 1
        self.compress = nn.Sequential(nn.Conv2d(inp, mid, 1, groups=first_groups, bias=False), nn.BatchNorm2d(mid),
                                      nn.ReLU(inplace=True))
        self.shuffle = ChannelShuffle(groups) if groups > 1 else nn.Identity()
        self.depthwise = nn.Sequential(depthwise_conv(mid, stride), nn.BatchNorm2d(mid))
        self.expand = nn.Sequential(nn.Conv2d(mid, main_out, 1, groups=groups, bias=False), nn.BatchNorm2d(main_out))
        self.shortcut = nn.AvgPool2d(3, stride=2, padding=1) if stride == 2 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.expand(self.depthwise(self.shuffle(self.compress(x))))
        if self.stride == 1:
            return torch.relu(out + x)
        return torch.cat((self.shortcut(x), torch.relu(out)), dim=1)


class ShuffleNetV1(PooledLinearNet):
    """Table 1: conv1 3x3/2, max pool 3x3/2, three stages of ShuffleNet units, global pool, fc."""

    def __init__(self, groups: int = 3, scale: float = 1.0, *, num_classes: int = 1000, in_chans: int = 3) -> None:
        super().__init__()
        if groups not in SHUFFLENET_V1_STAGE2:
            raise ModelConfigError(f"ShuffleNet's Table 1 has group counts {', '.join(map(str, SHUFFLENET_V1_STAGE2))}, "
                                   f"not {groups}")
        if scale <= 0:
            raise ModelConfigError(f"scale must be positive (0.5, 1.0, 1.5, 2.0 as released), got {scale}")
        stem, stage2 = SHUFFLENET_V1_RELEASED.get((groups, scale),
                                                  (round(24 * min(scale, 1.0)), round(SHUFFLENET_V1_STAGE2[groups] * scale)))
        widths = (stage2, 2 * stage2, 4 * stage2)
        _check_groups_divide(groups, scale, stem, widths)
        self.groups, self.scale = groups, scale
        self.num_classes, self.in_chans = num_classes, in_chans
        self.default_input_size = (in_chans, 224, 224)
        self.conv1 = nn.Sequential(nn.Conv2d(in_chans, stem, 3, 2, 1, bias=False), nn.BatchNorm2d(stem),
                                   nn.ReLU(inplace=True))
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        channels, self.feature_info = stem, [stage_info("maxpool", stem, 4)]
        for index, (repeats, width) in enumerate(zip(SHUFFLENET_V1_REPEATS, widths)):
            # Stage 2's first 1x1 conv is not grouped: its input (conv1's 24 channels) is too narrow
            units = [ShuffleUnit(channels, width, groups, 2, group_first_conv=index > 0)]
            units += [ShuffleUnit(width, width, groups, 1) for _ in range(repeats - 1)]
            setattr(self, f"stage{index + 2}", nn.Sequential(*units))
            channels = width
            self.feature_info.append(stage_info(f"stage{index + 2}", width, 8 * 2**index))
        self.num_features = channels
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes, bias=False)  # as the authors' released models

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stage4(self.stage3(self.stage2(self.maxpool(self.conv1(x)))))


def _check_groups_divide(groups: int, scale: float, stem: int, widths: tuple[int, ...]) -> None:
    inputs = (stem, *widths[:-1])
    for stage, (inp, width) in enumerate(zip(inputs, widths), start=2):
        needs = {"the bottleneck (a quarter of the width)": width // 4, "the main branch of the first unit": width - inp}
        if stage > 2:
            needs["the stage's input"] = inp
        for what, value in needs.items():
            if value % groups:
                raise ModelConfigError(
                    f"ShuffleNet g={groups} at {scale}x: stage {stage} is {width} channels wide, and {what} "
                    f"({value}) does not divide into {groups} groups; choose a scale the groups divide "
                    f"(released: {', '.join(f'{s}x' for g, s in SHUFFLENET_V1_RELEASED if g == groups) or '1.0x'})")


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

@register_model(recipe=RECIPE, family="shufflenet", paper="Ma et al. 2018", input_size=(3, 224, 224))
def shufflenet_v2_x1_0(*, num_classes: int = 1000, in_chans: int = 3) -> ShuffleNetV2:
    """ShuffleNet V2 1.0x: channel split and shuffle, depthwise 3x3, 116-232-464 stage widths."""
    repeats, channels = SHUFFLENET_V2_X1_0
    return ShuffleNetV2(repeats, channels, num_classes=num_classes, in_chans=in_chans)


def _shufflenet_v1(groups: int, scale: float, num_classes: int, in_chans: int) -> ShuffleNetV1:
    return ShuffleNetV1(groups, scale, num_classes=num_classes, in_chans=in_chans)


_V1 = dict(recipe=RECIPE, family="shufflenet_v1", paper="Zhang et al. 2018", input_size=(3, 224, 224))


@register_model(**_V1)
def shufflenet_v1_g1_x1_0(*, num_classes: int = 1000, in_chans: int = 3, scale: float = 1.0) -> ShuffleNetV1:
    """ShuffleNet 1x, g = 1: plain 1x1 convs (no shuffle), 144-288-576 stage widths."""
    return _shufflenet_v1(1, scale, num_classes, in_chans)


@register_model(**_V1)
def shufflenet_v1_g2_x1_0(*, num_classes: int = 1000, in_chans: int = 3, scale: float = 1.0) -> ShuffleNetV1:
    """ShuffleNet 1x, g = 2: grouped 1x1 convs and channel shuffle, 200-400-800 stage widths."""
    return _shufflenet_v1(2, scale, num_classes, in_chans)


@register_model(**_V1)
def shufflenet_v1_g3_x1_0(*, num_classes: int = 1000, in_chans: int = 3, scale: float = 1.0) -> ShuffleNetV1:
    """ShuffleNet 1x, g = 3 (the paper's default): 240-480-960 stage widths."""
    return _shufflenet_v1(3, scale, num_classes, in_chans)


@register_model(**_V1)
def shufflenet_v1_g4_x1_0(*, num_classes: int = 1000, in_chans: int = 3, scale: float = 1.0) -> ShuffleNetV1:
    """ShuffleNet 1x, g = 4: 272-544-1088 stage widths."""
    return _shufflenet_v1(4, scale, num_classes, in_chans)


@register_model(**_V1)
def shufflenet_v1_g8_x1_0(*, num_classes: int = 1000, in_chans: int = 3, scale: float = 1.0) -> ShuffleNetV1:
    """ShuffleNet 1x, g = 8: 384-768-1536 stage widths."""
    return _shufflenet_v1(8, scale, num_classes, in_chans)


@register_model(**_V1)
def shufflenet_v1_g3_x0_5(*, num_classes: int = 1000, in_chans: int = 3) -> ShuffleNetV1:
    """ShuffleNet 0.5x, g = 3: 120-240-480 stage widths, 12-channel conv1 (as released)."""
    return _shufflenet_v1(3, 0.5, num_classes, in_chans)


@register_model(**_V1)
def shufflenet_v1_g3_x1_5(*, num_classes: int = 1000, in_chans: int = 3) -> ShuffleNetV1:
    """ShuffleNet 1.5x, g = 3: 360-720-1440 stage widths."""
    return _shufflenet_v1(3, 1.5, num_classes, in_chans)


@register_model(**_V1)
def shufflenet_v1_g3_x2_0(*, num_classes: int = 1000, in_chans: int = 3) -> ShuffleNetV1:
    """ShuffleNet 2x, g = 3: 480-960-1920 stage widths, 48-channel conv1 (as released)."""
    return _shufflenet_v1(3, 2.0, num_classes, in_chans)


@register_model(**_V1)
def shufflenet_v1_g8_x0_5(*, num_classes: int = 1000, in_chans: int = 3) -> ShuffleNetV1:
    """ShuffleNet 0.5x, g = 8: 192-384-768 stage widths, 16-channel conv1 (as released)."""
    return _shufflenet_v1(8, 0.5, num_classes, in_chans)


@register_model(**_V1)
def shufflenet_v1_g8_x1_5(*, num_classes: int = 1000, in_chans: int = 3) -> ShuffleNetV1:
    """ShuffleNet 1.5x, g = 8: 576-1152-2304 stage widths."""
    return _shufflenet_v1(8, 1.5, num_classes, in_chans)


@register_model(**_V1)
def shufflenet_v1_g8_x2_0(*, num_classes: int = 1000, in_chans: int = 3) -> ShuffleNetV1:
    """ShuffleNet 2x, g = 8: 768-1536-3072 stage widths, 48-channel conv1 (as released)."""
    return _shufflenet_v1(8, 2.0, num_classes, in_chans)
