"""VGG: configurations A to E, stacks of 3x3 convs and 2x2 pools.

K. Simonyan, A. Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", ICLR 2015 (Table 1).
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.layers import krizhevsky_lrn
from cnnlab.models.base import MLPHeadNet, image_side, stage_info
from cnnlab.models.registry import register_model

# Simonyan & Zisserman, Sec. 3.1: batch 256, momentum 0.9, weight decay 5e-4, lr 0.01 /10 on plateaus.
RECIPE = dict(optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=5e-4, schedule="step", epochs=74, batch_size=256)

# Table 1. An int is a 3x3 conv (stride 1, pad 1) of that width, ("1x1", C) a 1x1 conv (config C),
# "M" a 2x2 max pool with stride 2, "LRN" local response normalization (config A-LRN).
VGG_CONFIGS: dict[str, tuple] = {
    "A": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "A-LRN": (64, "LRN", "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "B": (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "C": (64, 64, "M", 128, 128, "M", 256, 256, ("1x1", 256), "M", 512, 512, ("1x1", 512), "M",
          512, 512, ("1x1", 512), "M"),
    "D": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    "E": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
          512, 512, 512, 512, "M"),
}


def make_vgg_features(config: tuple, in_chans: int, batch_norm: bool) -> tuple[nn.Sequential, list[dict]]:
    """The conv stack as one flat Sequential, indexed as torchvision indexes it."""
    layers: list[nn.Module] = []
    feature_info, channels, reduction = [], in_chans, 1
    for item in config:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            reduction *= 2
            feature_info.append(stage_info(f"features.{len(layers) - 1}", channels, reduction))
            continue
        if item == "LRN":
            layers.append(krizhevsky_lrn())
            continue
        kernel, width = (1, item[1]) if isinstance(item, tuple) else (3, item)
        # torchvision keeps the conv bias even before BatchNorm; kept for checkpoint compatibility.
        layers.append(nn.Conv2d(channels, width, kernel_size=kernel, padding=kernel // 2))
        if batch_norm:
            layers.append(nn.BatchNorm2d(width))
        layers.append(nn.ReLU(inplace=True))
        channels = width
    return nn.Sequential(*layers), feature_info


def vgg_paper_names(features: nn.Sequential) -> dict[str, str]:
    """The names Simonyan & Zisserman's tables and the seeds give the layers: conv{stage}_{n}
    (a stage ends at each max pool) and fc6-fc8, keyed by the module path."""
    names, stage, count = {}, 1, 0
    for index, module in enumerate(features):
        if isinstance(module, nn.Conv2d):
            count += 1
            names[f"features.{index}"] = f"conv{stage}_{count}"
        elif isinstance(module, nn.MaxPool2d):
            names[f"features.{index}"] = f"pool{stage}"
            stage, count = stage + 1, 0
    names.update({"classifier.0": "fc6", "classifier.3": "fc7", "classifier.6": "fc8"})
    return names


class VGG(MLPHeadNet):
    """A VGG configuration, laid out as torchvision's VGG (features / avgpool / classifier)."""

    def __init__(
        self, config: tuple, *, num_classes: int, in_chans: int, batch_norm: bool = False, dropout: float = 0.5,
        input_size: int | tuple[int, ...] = 224,
    ) -> None:
        super().__init__()
        self.num_classes, self.in_chans, self.num_features = num_classes, in_chans, 4096
        # Any input of 32x32 or more runs: the adaptive pool below gives fc6 its 7x7 maps.
        self.default_input_size = (in_chans, *image_side(input_size))
        self.features, self.feature_info = make_vgg_features(config, in_chans, batch_norm)
        # Identity at 224x224 (7x7 maps already); torchvision's addition, kept so other sizes work.
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )
        self.paper_names = vgg_paper_names(self.features)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0, 0.01)
                nn.init.zeros_(module.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

_PAPER = "Simonyan & Zisserman 2014"
_PAPER_BN = _PAPER + " + BatchNorm (torchvision)"


def _vgg(config: str, batch_norm: bool, num_classes: int, in_chans: int, dropout: float, input_size) -> VGG:
    return VGG(VGG_CONFIGS[config], num_classes=num_classes, in_chans=in_chans, batch_norm=batch_norm, dropout=dropout,
               input_size=input_size)


@register_model(recipe=RECIPE, family="vgg", paper=_PAPER, input_size=(3, 224, 224))
def vgg11(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5, input_size: int | tuple = 224) -> VGG:
    """VGG-11 (configuration A of Table 1)."""
    return _vgg("A", False, num_classes, in_chans, dropout, input_size)


@register_model(recipe=RECIPE, family="vgg", paper=_PAPER_BN, input_size=(3, 224, 224))
def vgg11_bn(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5, input_size: int | tuple = 224) -> VGG:
    """VGG-11 with BatchNorm after every conv (torchvision's vgg11_bn; BN postdates the paper)."""
    return _vgg("A", True, num_classes, in_chans, dropout, input_size)


@register_model(recipe=RECIPE, family="vgg", paper=_PAPER, input_size=(3, 224, 224))
def vgg13(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5, input_size: int | tuple = 224) -> VGG:
    """VGG-13 (configuration B of Table 1)."""
    return _vgg("B", False, num_classes, in_chans, dropout, input_size)


@register_model(recipe=RECIPE, family="vgg", paper=_PAPER_BN, input_size=(3, 224, 224))
def vgg13_bn(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5, input_size: int | tuple = 224) -> VGG:
    """VGG-13 with BatchNorm after every conv (torchvision's vgg13_bn; BN postdates the paper)."""
    return _vgg("B", True, num_classes, in_chans, dropout, input_size)


@register_model(recipe=RECIPE, family="vgg", paper=_PAPER, input_size=(3, 224, 224))
def vgg16(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5, input_size: int | tuple = 224) -> VGG:
    """VGG-16 (configuration D of Table 1)."""
    return _vgg("D", False, num_classes, in_chans, dropout, input_size)


@register_model(recipe=RECIPE, family="vgg", paper=_PAPER_BN, input_size=(3, 224, 224))
def vgg16_bn(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5, input_size: int | tuple = 224) -> VGG:
    """VGG-16 with BatchNorm after every conv (torchvision's vgg16_bn; BN postdates the paper)."""
    return _vgg("D", True, num_classes, in_chans, dropout, input_size)


@register_model(recipe=RECIPE, family="vgg", paper=_PAPER, input_size=(3, 224, 224))
def vgg19(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5, input_size: int | tuple = 224) -> VGG:
    """VGG-19 (configuration E of Table 1)."""
    return _vgg("E", False, num_classes, in_chans, dropout, input_size)


@register_model(recipe=RECIPE, family="vgg", paper=_PAPER_BN, input_size=(3, 224, 224))
def vgg19_bn(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5, input_size: int | tuple = 224) -> VGG:
    """VGG-19 with BatchNorm after every conv (torchvision's vgg19_bn; BN postdates the paper)."""
    return _vgg("E", True, num_classes, in_chans, dropout, input_size)


@register_model(recipe=RECIPE, family="vgg", paper=_PAPER, input_size=(3, 224, 224))
def vgg11_lrn(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5, input_size: int | tuple = 224) -> VGG:
    """VGG-11 with LRN after the first conv (configuration A-LRN of Table 1)."""
    return _vgg("A-LRN", False, num_classes, in_chans, dropout, input_size)


@register_model(recipe=RECIPE, family="vgg", paper=_PAPER, input_size=(3, 224, 224))
def vgg16_c(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5, input_size: int | tuple = 224) -> VGG:
    """VGG-16 configuration C: the last conv of stages 3-5 is 1x1 (Table 1; D replaces them with 3x3)."""
    return _vgg("C", False, num_classes, in_chans, dropout, input_size)
