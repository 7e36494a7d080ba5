"""SqueezeNet: AlexNet-level accuracy with 50x fewer parameters, from Fire modules.

F. N. Iandola et al., "SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and
<0.5MB model size", arXiv:1602.07360, 2016 (Table 1; v1.1 from the authors' repository).
Layout and names are torchvision's.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.models.base import CnnModel, stage_info
from cnnlab.models.registry import register_model

# Iandola et al. 2016's released solver: lr 0.04 with Caffe's poly decay, momentum 0.9, weight decay 2e-4
# (cosine stands in for poly here).
RECIPE = dict(optimizer="sgd", lr=0.04, momentum=0.9, weight_decay=2e-4, schedule="cosine", epochs=90, batch_size=256)

# (stem conv channels, stem kernel, [Fire squeeze widths or "M" for a 3x3/2 max pool]); a Fire
# module with squeeze width s expands to 4s maps through 1x1 and 4s through 3x3 (8s in all).
SQUEEZENET_CONFIGS = {
    "1_0": (96, 7, ("M", 16, 16, 32, "M", 32, 48, 48, 64, "M", 64)),
    "1_1": (64, 3, ("M", 16, 16, "M", 32, 32, "M", 48, 48, 64, 64)),
}


class Fire(nn.Module):
    """Squeeze (1x1 to few maps), then expand with 1x1 and 3x3 convs side by side, concatenated."""

    def __init__(self, inplanes: int, squeeze_planes: int, expand1x1_planes: int, expand3x3_planes: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(inplanes, squeeze_planes, kernel_size=1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze_planes, expand1x1_planes, kernel_size=1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze_planes, expand3x3_planes, kernel_size=3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.squeeze_activation(self.squeeze(x))
        return torch.cat(
            [self.expand1x1_activation(self.expand1x1(x)), self.expand3x3_activation(self.expand3x3(x))], 1
        )


class SqueezeNet(CnnModel):
    def __init__(self, version: str, *, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> None:
        super().__init__()
        stem_channels, stem_kernel, plan = SQUEEZENET_CONFIGS[version]
        self.num_classes, self.in_chans = num_classes, in_chans
        self.default_input_size = (in_chans, 224, 224)
        layers: list[nn.Module] = [nn.Conv2d(in_chans, stem_channels, kernel_size=stem_kernel, stride=2), nn.ReLU(inplace=True)]
        channels, reduction, self.feature_info = stem_channels, 2, []
        for item in plan:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True))
                reduction *= 2
                continue
            layers.append(Fire(channels, item, 4 * item, 4 * item))
            channels = 8 * item
            self.feature_info.append(stage_info(f"features.{len(layers) - 1}", channels, reduction))
        # keep one entry per resolution: the last Fire before each pool
        by_reduction = {info["reduction"]: info for info in self.feature_info}
        self.feature_info = list(by_reduction.values())
        self.features = nn.Sequential(*layers)
        self.num_features = channels
        final_conv = nn.Conv2d(channels, num_classes, kernel_size=1)
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout), final_conv, nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d((1, 1))
        )
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                if module is final_conv:
                    nn.init.normal_(module.weight, mean=0.0, std=0.01)
                else:
                    nn.init.kaiming_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if pre_logits:
            return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return torch.flatten(self.classifier(x), 1)

    def get_classifier(self) -> nn.Module:
        return self.classifier[1]

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        final_conv = nn.Conv2d(self.num_features, num_classes, kernel_size=1)
        nn.init.normal_(final_conv.weight, mean=0.0, std=0.01)
        nn.init.zeros_(final_conv.bias)
        self.classifier[1] = final_conv


@register_model(recipe=RECIPE, family="squeezenet", paper="Iandola et al. 2016", input_size=(3, 224, 224))
def squeezenet1_0(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> SqueezeNet:
    """SqueezeNet 1.0: 7x7/2 stem of 96 maps, eight Fire modules, a 1x1 conv classifier and global pooling."""
    return SqueezeNet("1_0", num_classes=num_classes, in_chans=in_chans, dropout=dropout)


@register_model(recipe=RECIPE, family="squeezenet", paper="Iandola et al. 2016 (v1.1)", input_size=(3, 224, 224))
def squeezenet1_1(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> SqueezeNet:
    """SqueezeNet 1.1: a 3x3/2 stem of 64 maps and earlier pools, 2.4x less compute for the same accuracy."""
    return SqueezeNet("1_1", num_classes=num_classes, in_chans=in_chans, dropout=dropout)
