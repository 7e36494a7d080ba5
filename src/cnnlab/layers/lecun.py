"""The layers of LeNet-5 as published, which no other library has: trainable subsampling, a
convolution with a connection table, and the fixed Euclidean RBF output.

Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-based learning applied to document
recognition", Proc. IEEE 86(11), 1998 (Section II.B, Appendix C). models/lenet.py builds LeNet-5
from them; analysis/trace.py counts their work.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

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


def paper_uniform_(tensor: torch.Tensor, fan_in: int) -> None:
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
        paper_uniform_(self.weight, fan_in=kernel_size * kernel_size)

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
