"""FractalNet: depth from self-similarity, without residuals.

G. Larsson, M. Maire, G. Shakhnarovich, "FractalNet: Ultra-Deep Neural Networks without
Residuals", ICLR 2017 (Figure 1, Section 3 and 4), one of seed 002's "other architectures to know".

The expansion rule: f_1(z) = conv(z) and f_{C+1}(z) = join(f_C(f_C(z)), conv(z)), where join is
the element-wise mean. Unrolled, a block of C columns has columns 1, 2, 4, ..., 2^(C-1) convs
deep; joins that fall at the same depth merge into one, so at depth d every column that ends a
conv there is averaged, and each of them continues from that mean. B blocks, each followed by a
2x2 max pool, make the net: the deepest path has B x 2^(C-1) convs (5 x 4 = 20 for C = 3). The
CIFAR nets start with the first block on the image; FractalNet-34 (ImageNet) puts ResNet-34's first
layer before the blocks and its last layer (global average pool, fc) after them.

Drop-path (Section 3.1) regularizes the columns' co-adaptation. Local: each join drops each of its
inputs with probability p and keeps at least one. Global: one column is chosen for the whole net
and only its path runs. Training mixes the two per mini-batch (`global_drop` is the share of global
batches; the paper uses 50%). `column=` runs one column alone at test time, as the paper's
"deepest column alone" evaluation does.
"""

from __future__ import annotations

import random

import torch
from torch import nn

from cnnlab.errors import ModelConfigError
from cnnlab.layers.conv import ConvBnAct
from cnnlab.models.base import PooledLinearNet, stage_info
from cnnlab.models.registry import register_model

# Section 4 (CIFAR): five blocks of these widths, each ending with a 2x2 max pool; dropout rates
# per block when dropout is on; local drop-path 15%, global drop-path in half the mini-batches.
# Each conv is the authors' unit (conv_unit below: conv with bias, dropout, BatchNorm without scale
# or shift, ReLU), so the nets count as the net their generator (gustavla/fractalnet,
# generation/fractalnet.py, COLUMNS = 3 or 4 with these FILTERS) builds: 33,714,314 parameters for
# the 20-layer net and 76,084,554 for the 40-layer one (tests/models/test_fractalnet.py recounts
# them from that description alone). Table 1 prints 38.6M and 22.9M, and neither can be matched:
# the 20-layer net's text adds nothing to reach 4.9M more (khanrc/pt.fractalnet, an independent
# reproduction, counts 33.7M too, and 38.9M only with a 1x1 conv doubling the width at each block's
# entry, which the paper does not describe); and the 40-layer net (C = 4, B = 5, the same widths in
# the code) cannot be smaller than the 20-layer one, which it contains twice over: halving every
# width gives 19.0M, keeping 256 in the last three blocks 27.7M, and no width schedule that Section 4
# or the code states gives 22.9M. cnnlab builds what the code builds and does not tune widths to
# meet a printed count.
CIFAR_WIDTHS = (64, 128, 256, 512, 512)
CIFAR_DROPOUT = (0.0, 0.1, 0.2, 0.3, 0.4)
# The paper's drop-path, to pass as local_drop= and global_drop= (the builders default to none).
# It is a regularizer for the paper's 400 epochs; in short budgets it costs much accuracy. Measured
# here (fractalnet20, MNIST digits, SGD lr 0.01, batch 32, cosine): with neither, 99% validation
# top-1 after 3 epochs on 2,000 images; local only, 81% after 2; both, 67% training top-1 (mixed
# modes) but 12% validation after 3 epochs on 4,500. Global batches train one column at a time,
# and BatchNorm's running statistics then mix single-column and full-net inputs: with batch
# statistics instead, the shallowest column alone scores 54% where the running ones give 32%
# (torch.optim.swa_utils.update_bn recomputes them for the mode to be evaluated).
# Longer, it learns but still trails: on 10,000 Fashion-MNIST images, 15 epochs, 82.2% test
# top-1 with both against 91.6% with neither (same settings).
LOCAL_DROP, GLOBAL_SHARE = 0.15, 0.5

# Section 4.1 (CIFAR): SGD with momentum 0.9, batch 100, lr 0.02 for 400 epochs, divided by 10 each
# time the remaining epochs halve (at 200, 300, 350 and 375); it names no weight decay.
RECIPE = dict(optimizer="sgd", lr=0.02, momentum=0.9, weight_decay=0.0, schedule="multistep",
              milestones=(0.5, 0.75, 0.875, 0.9375), gamma=0.1, epochs=400, batch_size=100)


# Section 4.2 (ImageNet), FractalNet-34: ResNet-34's first and last layers, and in between four
# blocks (B = 4) of C = 4 columns, widths 64-128-256-512: 1 + 4 x 8 + 1 = 34 layers on the deepest
# path. The paper states these rules, not a layer table, and prints no parameter count (Table 2
# gives errors only). cnnlab composes the rules as stated: ResNet-34's first layer is its 7x7/2
# conv (its 3x3/2 max pool opens the conv2_x stage, the middle that the blocks replace), each block
# keeps its 2x2 pool as in every FractalNet, so the blocks work at 112, 56, 28 and 14 and the last
# layer averages a 7x7 map, as ResNet-34's does. That makes 41,345,384 parameters and 25.1G
# multiply-adds at 224x224 (ResNet-34: 3.7G). Keeping ResNet's max pool as well would give 6.4G,
# but a 3x3 map where ResNet-34's last layer averages a 7x7 one.
IMAGENET_WIDTHS = (64, 128, 256, 512)

# Section 4.1 for ImageNet: 70 epochs, lr 0.001, batch 32, momentum 0.9, the same halving schedule.
IMAGENET_RECIPE = dict(RECIPE, lr=0.001, epochs=70, batch_size=32)


def conv_unit(in_channels: int, out_channels: int, dropout: float) -> nn.Sequential:
    """One conv of a column as the authors' code builds it (gustavla/fractalnet, generation/
    globals.crox, the `conv` macro): a 3x3 convolution with a bias, dropout, BatchNorm with no
    scale or shift (Caffe's BatchNorm layer alone: its three blobs are the running statistics, held
    at lr_mult 0, and no Scale layer follows), then ReLU. Dropout sits between the convolution and
    BatchNorm, not after the ReLU."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1),
                         *([nn.Dropout(dropout)] if dropout else []),
                         nn.BatchNorm2d(out_channels, affine=False), nn.ReLU(inplace=True))


class FractalBlock(nn.Module):
    """C columns; column c (0 = the shallowest) is 2^c convs deep and steps once every 2^(C-1-c)
    depths; at each depth the columns that step there are joined by their element-wise mean. The
    block ends with its 2x2 max pool, applied to each column before the last join: the authors'
    generator (gustavla/fractalnet, generation/fractalnet.py, the `if l == L - 1` branch of its loop
    over depths) pools every column after its last conv and then joins the pooled maps (the Keras
    port snf/keras-fractalnet reads the paper the same way: the last join of each block switched
    with the pool). A max pool of the mean is not the mean of the max pools: the order is part of
    the function."""

    def __init__(self, in_channels: int, out_channels: int, columns: int, dropout: float = 0.0) -> None:
        super().__init__()
        if columns < 1:
            raise ModelConfigError(f"a fractal block needs at least one column (C >= 1), got C = {columns}")
        self.num_columns = columns
        self.depth = 2 ** (columns - 1)
        self.columns = nn.ModuleList(
            nn.ModuleList(conv_unit(in_channels if k == 0 else out_channels, out_channels, dropout)
                          for k in range(2**c))
            for c in range(columns))
        self.pool = nn.MaxPool2d(2, 2)

    def stepping(self, depth: int) -> list[int]:
        """The columns that end a conv at `depth` (1 .. 2^(C-1))."""
        return [c for c in range(self.num_columns) if depth % (self.depth // 2**c) == 0]

    def forward(self, x: torch.Tensor, column: int | None = None, local_drop: float = 0.0) -> torch.Tensor:
        inputs = [x] * self.num_columns
        for depth in range(1, self.depth + 1):
            last = depth == self.depth
            active = self.stepping(depth)
            if column is not None:  # one column alone (global drop-path, or the column test)
                if column in active:
                    inputs[column] = self.columns[column][depth * 2**column // self.depth - 1](inputs[column])
                continue
            outputs = [self.columns[c][depth * 2**c // self.depth - 1](inputs[c]) for c in active]
            if last:  # every column is pooled, then joined
                return join([self.pool(output) for output in outputs], local_drop)
            joined = join(outputs, local_drop)
            for c in active:
                inputs[c] = joined
        return self.pool(inputs[column])


def join(inputs: list[torch.Tensor], drop: float = 0.0) -> torch.Tensor:
    """The element-wise mean; with local drop-path, of the inputs that survive (at least one)."""
    if drop > 0 and len(inputs) > 1:
        kept = [tensor for tensor in inputs if random.random() >= drop] or [random.choice(inputs)]
        inputs = kept
    return inputs[0] if len(inputs) == 1 else torch.stack(inputs, 1).mean(1)


class FractalNet(PooledLinearNet):
    """B fractal blocks, each ending with a 2x2 max pool, then global pooling and one fc layer.

    stem="cifar": the first block reads the image. stem="imagenet": ResNet-34's first layer, a 7x7/2
    conv of widths[0] filters with BatchNorm and ReLU, comes first (FractalNet-34).
    """

    def __init__(self, widths=CIFAR_WIDTHS, columns: int = 3, *, stem: str = "cifar", num_classes: int = 10,
                 in_chans: int = 3, dropout: bool = False, local_drop: float = 0.0, global_drop: float = 0.0) -> None:
        super().__init__()
        if columns < 1:
            raise ModelConfigError(f"FractalNet needs at least one column (C >= 1), got C = {columns}")
        if not 0 <= local_drop < 1 or not 0 <= global_drop <= 1:
            raise ModelConfigError("local_drop must be in [0, 1) and global_drop (the share of global mini-batches) in [0, 1]")
        if stem not in ("cifar", "imagenet"):
            raise ModelConfigError(f"stem must be 'cifar' (the first block reads the image) or 'imagenet' (ResNet-34's "
                                   f"7x7/2 conv first), not {stem!r}")
        if dropout and len(widths) != len(CIFAR_DROPOUT):
            raise ModelConfigError(f"dropout uses Section 4's rates for five blocks {CIFAR_DROPOUT}; this net has "
                                   f"{len(widths)} blocks")
        self.num_classes, self.in_chans, self.num_features = num_classes, in_chans, widths[-1]
        self.num_columns, self.local_drop, self.global_drop = columns, local_drop, global_drop
        if stem == "imagenet":
            self.stem = ConvBnAct(in_chans, widths[0], 7, stride=2, padding=3)
            channels, stride, side = widths[0], 2, 224
            self.feature_info = [stage_info("stem", channels, stride)]
        else:
            self.stem, channels, stride, side = None, in_chans, 1, 32
            self.feature_info = []
        self.default_input_size = (in_chans, side, side)
        rates = CIFAR_DROPOUT if dropout else (0.0,) * len(widths)
        blocks = []
        for index, (width, rate) in enumerate(zip(widths, rates)):
            blocks.append(FractalBlock(channels, width, columns, rate))
            channels = width
            self.feature_info.append(stage_info(f"blocks.{index}", width, stride * 2 ** (index + 1)))
        self.blocks = nn.ModuleList(blocks)
        self.avgpool = nn.AdaptiveAvgPool2d(1)  # CIFAR: the last pool leaves 1x1, an identity; ImageNet: 7x7
        self.fc = nn.Linear(channels, num_classes)
        self.column: int | None = None  # set (e.g. by `deepest_column()`) to evaluate one column alone

    def deepest_column(self) -> int:
        return self.num_columns - 1

    def forward_column(self, x: torch.Tensor, column: int) -> torch.Tensor:
        """The net with only `column` of every block (0 = the shallowest, `deepest_column()`)."""
        if not 0 <= column < self.num_columns:
            raise ModelConfigError(f"this FractalNet has columns 0 to {self.num_columns - 1}, not {column}")
        self.column, kept = column, self.column
        try:
            return self(x)
        finally:
            self.column = kept

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        column, local_drop = self.column, 0.0
        if self.training and column is None:
            if self.global_drop and random.random() < self.global_drop:
                column = random.randrange(self.num_columns)  # one column for the whole net
            else:
                local_drop = self.local_drop
        if self.stem is not None:
            x = self.stem(x)
        for block in self.blocks:
            x = block(x, column=column, local_drop=local_drop)
        return x


def _fractalnet(columns: int, num_classes: int, in_chans: int, **options) -> FractalNet:
    return FractalNet(CIFAR_WIDTHS, columns, num_classes=num_classes, in_chans=in_chans, **options)


@register_model(recipe=RECIPE, family="fractalnet", paper="Larsson et al. 2017", input_size=(3, 32, 32), num_classes=10)
def fractalnet20(*, num_classes: int = 10, in_chans: int = 3, dropout: bool = False, local_drop: float = 0.0,
                 global_drop: float = 0.0) -> FractalNet:
    """FractalNet, CIFAR: B = 5 blocks of C = 3 columns (deepest path 20 convs), 64-128-256-512-512."""
    return _fractalnet(3, num_classes, in_chans, dropout=dropout, local_drop=local_drop, global_drop=global_drop)


@register_model(recipe=RECIPE, family="fractalnet", paper="Larsson et al. 2017", input_size=(3, 32, 32), num_classes=10)
def fractalnet40(*, num_classes: int = 10, in_chans: int = 3, dropout: bool = False, local_drop: float = 0.0,
                 global_drop: float = 0.0) -> FractalNet:
    """FractalNet, CIFAR: B = 5 blocks of C = 4 columns (deepest path 40 convs), 64-128-256-512-512."""
    return _fractalnet(4, num_classes, in_chans, dropout=dropout, local_drop=local_drop, global_drop=global_drop)


@register_model(recipe=IMAGENET_RECIPE, family="fractalnet", paper="Larsson et al. 2017", input_size=(3, 224, 224))
def fractalnet34(*, num_classes: int = 1000, in_chans: int = 3, local_drop: float = 0.0,
                 global_drop: float = 0.0) -> FractalNet:
    """FractalNet-34, ImageNet: ResNet-34's first and last layers around B = 4 blocks of C = 4 columns.

    Section 4.2; widths 64-128-256-512; the deepest path is 1 + 4 x 8 + 1 = 34 layers."""
    return FractalNet(IMAGENET_WIDTHS, 4, stem="imagenet", num_classes=num_classes, in_chans=in_chans,
                      local_drop=local_drop, global_drop=global_drop)
