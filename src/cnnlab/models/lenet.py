"""LeNet: the 1998 network as published, and the PyTorch LeNet of the lecture notes.

Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-based learning applied to document
recognition", Proc. IEEE 86(11), 1998 (Section II.B, Table I, Appendix A).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from cnnlab.layers import ScaledTanh, make_activation
from cnnlab.layers.lecun import EuclideanRBF, SparseConnectionConv2d, TrainableSubsampling, paper_uniform_
from cnnlab.models.base import CnnModel, image_side, stage_info
from cnnlab.models.registry import register_model
from cnnlab.errors import InputShapeError, ModelConfigError

# LeCun et al. 1998 train with stochastic diagonal Levenberg-Marquardt, which PyTorch does not
# have; Adam at 1e-3 with cosine decay is the usual stand-in.
RECIPE = dict(optimizer="adam", lr=1e-3, weight_decay=0.0, schedule="cosine", epochs=10, batch_size=128)

# Table I: which S2 maps (rows 0-5) feed each C3 map (0-15). The first six C3 maps see three
# contiguous S2 maps, the next six four contiguous ones, the next three four non-contiguous ones,
# and the last sees all six: 60 of the 96 possible connections, "to break the symmetry".
C3_CONNECTIONS: tuple[tuple[int, ...], ...] = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (0, 4, 5), (0, 1, 5),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (0, 3, 4, 5), (0, 1, 4, 5), (0, 1, 2, 5),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)

class LeNet5(CnnModel):
    """LeNet-5 as published: C1-S2-C3-S4-C5-F6-RBF on 32x32 inputs, scaled tanh everywhere."""

    def __init__(self, num_classes: int = 10, in_chans: int = 1) -> None:
        super().__init__()
        self.num_classes, self.in_chans, self.num_features = num_classes, in_chans, 84
        self.default_input_size = (in_chans, 32, 32)
        self.features = nn.Sequential(OrderedDict(
            c1=nn.Conv2d(in_chans, 6, kernel_size=5),
            act1=ScaledTanh(),
            s2=TrainableSubsampling(6),
            act2=ScaledTanh(),
            c3=SparseConnectionConv2d(6, C3_CONNECTIONS, kernel_size=5),
            act3=ScaledTanh(),
            s4=TrainableSubsampling(16),
            act4=ScaledTanh(),
            c5=nn.Conv2d(16, 120, kernel_size=5),
            act5=ScaledTanh(),
        ))
        self.pre_logits = nn.Sequential(OrderedDict(
            flatten=nn.Flatten(1),
            f6=nn.Linear(120, 84),
            act6=ScaledTanh(),
        ))
        self.output = EuclideanRBF(84, num_classes)
        self.feature_info = [
            stage_info("features.act2", 6, 2),
            stage_info("features.act4", 16, 4),
            stage_info("features.act5", 120, 4),
        ]
        for layer, fan_in in ((self.features.c1, 25 * in_chans), (self.features.c5, 400), (self.pre_logits.f6, 120)):
            paper_uniform_(layer.weight, fan_in)
            paper_uniform_(layer.bias, fan_in)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.pre_logits(x)
        return x if pre_logits else self.output(x)

    def get_classifier(self) -> nn.Module:
        return self.output

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.output = EuclideanRBF(84, num_classes)


POOLS = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}


class LeNet5Modern(CnnModel):
    """The lectures' PyTorch LeNet: conv 6@5x5 pad 2, conv 16@5x5, fc 400-120-84-classes, 28x28."""

    def __init__(
        self,
        num_classes: int = 10,
        in_chans: int = 1,
        activation: str = "sigmoid",
        pool: str = "avg",
        batch_norm: bool = False,
        input_size: int | tuple[int, ...] = 28,
    ) -> None:
        super().__init__()
        if pool not in POOLS:
            raise ModelConfigError(f"unknown pool {pool!r}; choose 'max' or 'avg'")
        self.num_classes, self.in_chans, self.num_features = num_classes, in_chans, 84
        height, width = image_side(input_size)
        self.default_input_size = (in_chans, height, width)
        # fc1 takes what conv2's pool leaves of the input: 5x5 at 28x28 (the seed's 16 x 5 x 5 = 400)
        side = lambda n: ((n // 2) - 4) // 2  # noqa: E731  pad-2 conv keeps n, pool /2, 5x5 conv -4, pool /2
        if min(side(height), side(width)) < 1:
            raise InputShapeError(f"input {height}x{width} does not fit lenet5_modern: its maps shrink to nothing before "
                                  "the classifier; the smallest input it accepts is 12x12 (designed for 28x28); resize the images")

        def conv_unit(index: int, conv: nn.Conv2d) -> list[tuple[str, nn.Module]]:
            unit = [(f"conv{index}", conv)]
            if batch_norm:
                unit.append((f"bn{index}", nn.BatchNorm2d(conv.out_channels)))
            unit += [(f"act{index}", make_activation(activation)), (f"pool{index}", POOLS[pool](2, 2))]
            return unit

        def fc_unit(index: int, fc: nn.Linear) -> list[tuple[str, nn.Module]]:
            unit = [(f"fc{index}", fc)]
            if batch_norm:
                unit.append((f"bn_fc{index}", nn.BatchNorm1d(fc.out_features)))
            return unit + [(f"act_fc{index}", make_activation(activation))]

        self.features = nn.Sequential(OrderedDict(
            conv_unit(1, nn.Conv2d(in_chans, 6, 5, padding=2, bias=not batch_norm))
            + conv_unit(2, nn.Conv2d(6, 16, 5, bias=not batch_norm))
        ))
        self.pre_logits = nn.Sequential(OrderedDict(
            [("flatten", nn.Flatten(1))]
            + fc_unit(1, nn.Linear(16 * side(height) * side(width), 120, bias=not batch_norm))
            + fc_unit(2, nn.Linear(120, 84, bias=not batch_norm))
        ))
        self.fc3 = nn.Linear(84, num_classes)
        self.feature_info = [stage_info("features.pool1", 6, 2), stage_info("features.pool2", 16, 4)]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.pre_logits(x)
        return x if pre_logits else self.fc3(x)

    def get_classifier(self) -> nn.Module:
        return self.fc3

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc3 = nn.Linear(84, num_classes)


@register_model(recipe=RECIPE, family="lenet", paper="LeCun et al. 1998", input_size=(1, 32, 32), num_classes=10)
def lenet5(*, num_classes: int = 10, in_chans: int = 1) -> LeNet5:
    """LeNet-5 as published: C3 connection table, trainable subsampling, scaled tanh, RBF output (60,000 trainable)."""
    return LeNet5(num_classes=num_classes, in_chans=in_chans)


@register_model(recipe=RECIPE, family="lenet", paper="d2l / seed 002 (after LeCun et al. 1998)", input_size=(1, 28, 28), num_classes=10)
def lenet5_modern(
    *, num_classes: int = 10, in_chans: int = 1, activation: str = "sigmoid", pool: str = "avg", batch_norm: bool = False,
    input_size: int | tuple[int, ...] = 28,
) -> LeNet5Modern:
    """The lectures' PyTorch LeNet on 28x28 (sigmoid + average pooling by default, as d2l; relu/max and BN selectable).

    Differs from LeNet-5: full C3 connections, ordinary pooling instead of trainable subsampling,
    a Linear output instead of the fixed RBF, and padding 2 on conv1 so 28x28 digits fit.
    `input_size` builds fc1 for another input (32x32: 16 x 6 x 6 inputs).
    """
    return LeNet5Modern(num_classes=num_classes, in_chans=in_chans, activation=activation, pool=pool, batch_norm=batch_norm,
                        input_size=input_size)
