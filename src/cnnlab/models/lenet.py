"""LeNet: the 1998 network as published, and the PyTorch LeNet of the lecture notes.

Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-based learning applied to document
recognition", Proc. IEEE 86(11), 1998 (Section II.B, Table I, Appendix A).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.layers import ScaledTanh, make_activation
from cnnlab.models.base import CnnModel, image_side, stage_info
from cnnlab.models.registry import register_model
from cnnlab.errors import ModelConfigError

# Table I: which S2 maps (rows 0-5) feed each C3 map (0-15). The first six C3 maps see three
# contiguous S2 maps, the next six four contiguous ones, the next three four non-contiguous ones,
# and the last sees all six: 60 of the 96 possible connections, "to break the symmetry".
C3_CONNECTIONS: tuple[tuple[int, ...], ...] = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (0, 4, 5), (0, 1, 5),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (0, 3, 4, 5), (0, 1, 4, 5), (0, 1, 2, 5),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)

# The output RBF's fixed parameter vectors are "stylized images of the corresponding character
# class drawn on a 7x12 bitmap" with entries +1 or -1 (Section II.B). The paper does not print
# the bitmaps; these are drawn in the same spirit, one digit per 12 rows of 7 pixels.
DIGIT_BITMAPS: tuple[str, ...] = (
    "..###.. .#...#. #.....# #.....# #.....# #.....# #.....# #.....# #.....# #.....# .#...#. ..###..",
    "...#... ..##... .#.#... ...#... ...#... ...#... ...#... ...#... ...#... ...#... ...#... .#####.",
    "..###.. .#...#. #.....# ......# .....#. ....#.. ...#... ..#.... .#..... #...... #...... #######",
    ".#####. #.....# ......# ......# .....#. ..###.. .....#. ......# ......# ......# #.....# .#####.",
    "....##. ...#.#. ..#..#. .#...#. #....#. #....#. ####### .....#. .....#. .....#. .....#. .....#.",
    "####### #...... #...... #...... #####.. .....#. ......# ......# ......# ......# #....#. .####..",
    "..####. .#..... #...... #...... #.###.. ##...#. #.....# #.....# #.....# #.....# .#...#. ..###..",
    "####### ......# ......# .....#. .....#. ....#.. ....#.. ...#... ...#... ..#.... ..#.... ..#....",
    "..###.. .#...#. #.....# #.....# .#...#. ..###.. .#...#. #.....# #.....# #.....# .#...#. ..###..",
    "..###.. .#...#. #.....# #.....# #.....# .#...## ..###.# ......# ......# .....#. ....#.. .###...",
)


def _paper_uniform_(tensor: torch.Tensor, fan_in: int) -> None:
    """Appendix C: weights drawn uniformly in (-2.4/F_i, 2.4/F_i), F_i the unit's fan-in."""
    bound = 2.4 / fan_in
    nn.init.uniform_(tensor, -bound, bound)


class TrainableSubsampling(nn.Module):
    """S2/S4: each unit adds its 2x2 inputs, times a trainable coefficient, plus a trainable bias.

    Two parameters per feature map (so S2 has 12 and S4 has 32).
    """

    def __init__(self, channels: int, kernel_size: int = 2) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.weight = nn.Parameter(torch.empty(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        _paper_uniform_(self.weight, fan_in=kernel_size * kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        window_sum = F.avg_pool2d(x, self.kernel_size) * (self.kernel_size**2)
        return window_sum * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return f"channels={self.weight.numel()}, kernel_size={self.kernel_size}, stride={self.kernel_size}"


class SparseConnectionConv2d(nn.Module):
    """A convolution where output map m sees only the input maps listed in `connections[m]`.

    Only the connected kernels are parameters (C3: 60 kernels of 5x5 + 16 biases = 1,516); the
    dense weight is assembled for each forward pass, the unconnected kernels fixed at zero.
    """

    def __init__(self, in_channels: int, connections: tuple[tuple[int, ...], ...], kernel_size: int) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = len(connections)
        self.kernel_size = (kernel_size, kernel_size)
        self.connections = connections
        pairs = [(out, inp) for out, inputs in enumerate(connections) for inp in inputs]
        self.register_buffer("out_index", torch.tensor([o for o, _ in pairs]), persistent=False)
        self.register_buffer("in_index", torch.tensor([i for _, i in pairs]), persistent=False)
        self.weight = nn.Parameter(torch.empty(len(pairs), kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(self.out_channels))
        start = 0
        with torch.no_grad():  # pairs are grouped by output map: each map's kernels are one slice
            for out, inputs in enumerate(connections):
                bound = 2.4 / (len(inputs) * kernel_size * kernel_size)
                self.weight[start : start + len(inputs)].uniform_(-bound, bound)
                self.bias[out].uniform_(-bound, bound)
                start += len(inputs)

    def dense_weight(self) -> torch.Tensor:
        shape = (self.out_channels, self.in_channels, *self.kernel_size)
        return self.weight.new_zeros(shape).index_put((self.out_index, self.in_index), self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.dense_weight(), self.bias)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"connections={self.out_index.numel()} of {self.in_channels * self.out_channels}"
        )


class EuclideanRBF(nn.Module):
    """The output layer: y_i = sum_j (x_j - w_ij)^2, with fixed +-1 codes w_i (not trained).

    Returns -y, so the nearest code has the largest score and argmax/cross-entropy work as with
    any logits (the paper trains by pulling y of the correct class down, its Eq. 9). The codes are
    a buffer: LeNet-5's 840 output weights (84 x 10) are fixed, not trainable parameters.
    """

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.in_features = in_features
        self.num_classes = num_classes
        self.register_buffer("codes", self.make_codes(in_features, num_classes))

    @staticmethod
    def make_codes(in_features: int, num_classes: int) -> torch.Tensor:
        if in_features == 84 and num_classes == 10:
            return torch.tensor(
                [[1.0 if pixel == "#" else -1.0 for pixel in bitmap.replace(" ", "")] for bitmap in DIGIT_BITMAPS]
            )
        # Other class counts: random +-1 codes (the paper's choice for unrelated classes), seeded.
        generator = torch.Generator().manual_seed(1998)
        return torch.randint(0, 2, (num_classes, in_features), generator=generator).float() * 2 - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        squared_distance = (x.unsqueeze(1) - self.codes.unsqueeze(0)).pow(2).sum(-1)
        return -squared_distance

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, num_classes={self.num_classes}, codes=fixed +-1"


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
            _paper_uniform_(layer.weight, fan_in)
            _paper_uniform_(layer.bias, fan_in)

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
            raise ModelConfigError(f"lenet5_modern needs inputs of at least 12x12, got {height}x{width}")

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


@register_model(family="lenet", paper="LeCun et al. 1998", input_size=(1, 32, 32), num_classes=10)
def lenet5(*, num_classes: int = 10, in_chans: int = 1) -> LeNet5:
    """LeNet-5 as published: C3 connection table, trainable subsampling, scaled tanh, RBF output (60,000 trainable)."""
    return LeNet5(num_classes=num_classes, in_chans=in_chans)


@register_model(family="lenet", paper="d2l / seed 002 (after LeCun et al. 1998)", input_size=(1, 28, 28), num_classes=10)
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
