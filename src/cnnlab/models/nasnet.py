"""NASNet-A: the cells that architecture search found, stacked by hand.

B. Zoph, V. Vasudevan, J. Shlens, Q. V. Le, "Learning Transferable Architectures for Scalable
Image Recognition", CVPR 2018 (Figure 2 for the stacking, Figure 4 for the cells, Table 2 for
the ImageNet models): the "Neural Architecture Search" seed 002 names among the "other
architectures to know". A controller searched for two cells on CIFAR-10, a Normal cell that keeps
the map size and a Reduction cell that halves it; ImageNet nets are those cells repeated.

Each cell reads the two previous cells' outputs, h (the last) and h_prev (the one before), and
builds B = 5 blocks; a block applies one operation to each of two inputs (h, h_prev, or an
earlier block) and adds the results. The blocks no other block reads are concatenated. Below,
the cells are data (NORMAL_CELL, REDUCTION_CELL: the search's result, as the paper's Figure 4
and TensorFlow's reference code write it), and one `Cell` class builds either.

Names follow timm's `nasnetalarge` (a port of the TensorFlow weights), so its state dict loads
into `nasnet_a_large` and the outputs are equal. The stride-2 operations pad as TensorFlow's
"SAME" (layers/same_padding.py), as the weights were trained with.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from cnnlab.errors import ModelConfigError
from cnnlab.layers import ConvBnAct, ScheduledDropPath, kaiming_init_
from cnnlab.layers.same_padding import conv2d_same, pool2d_same
from cnnlab.models.base import PooledLinearNet, stage_info
from cnnlab.models.registry import register_model

# Zoph et al. 2018, Appendix A: RMSProp (decay 0.9, epsilon 1.0), label smoothing 0.1, an auxiliary
# head, weight decay 4e-5 (mobile) / 5e-5 (large), ScheduledDropPath; SGD with momentum and a cosine
# schedule stand in for RMSProp and its exponential decay here.
RECIPE = dict(optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=4e-5, schedule="cosine", epochs=150, batch_size=256,
              label_smoothing=0.1)

# Figure 4. Each block is (left operand, right operand), an operand (input, operation); inputs are
# "h", "h_prev" or the index of an earlier block. In the Reduction cell every operation that
# reads h or h_prev has stride 2. OUTPUT: what the cell concatenates (the states no block used).
NORMAL_CELL = (
    (("h", "sep5x5"), ("h_prev", "sep3x3")),
    (("h_prev", "sep5x5"), ("h_prev", "sep3x3")),
    (("h", "avg3x3"), ("h_prev", "identity")),
    (("h_prev", "avg3x3"), ("h_prev", "avg3x3")),
    (("h", "sep3x3"), ("h", "identity")),
)
NORMAL_OUTPUT = ("h_prev", 0, 1, 2, 3, 4)
REDUCTION_CELL = (
    (("h", "sep5x5"), ("h_prev", "sep7x7")),
    (("h", "max3x3"), ("h_prev", "sep7x7")),
    (("h", "avg3x3"), ("h_prev", "sep5x5")),
    ((1, "identity"), (0, "avg3x3")),
    ((0, "sep3x3"), ("h", "max3x3")),
)
REDUCTION_OUTPUT = (1, 2, 3, 4)

# Tables 1 and 2: "N @ F" is N Normal cells per stage and F filters in the penultimate layer; the
# stem conv has 32 filters (mobile) or 96 (large and CIFAR, TensorFlow's stem_multiplier 3).
NASNET_CONFIGS = {
    "mobile": dict(cells_per_stage=4, penultimate_filters=1056, stem_filters=32, input_side=224),
    "large": dict(cells_per_stage=6, penultimate_filters=4032, stem_filters=96, input_side=331),
    # Table 1 (CIFAR-10): 6 @ 768, a 3x3 conv of 96 filters as the stem (TensorFlow's cifar_config)
    "cifar": dict(cells_per_stage=6, penultimate_filters=768, stem_filters=96, input_side=32, stem="cifar"),
}


def batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.1)  # TensorFlow's epsilon


class ActConvBn(nn.Sequential):
    """ReLU -> 1x1 conv -> BatchNorm: how a cell brings an input to its width."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(OrderedDict(act=nn.ReLU(), conv=nn.Conv2d(in_channels, out_channels, 1, bias=False),
                                     bn=batch_norm(out_channels)))

    def figure_label(self) -> str:
        return f"ReLU, 1x1 conv, {self.conv.out_channels}, BN"


class SeparableConv2d(nn.Sequential):
    """A depthwise KxK conv (one filter per channel) then a pointwise 1x1 conv across channels."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int) -> None:
        super().__init__(OrderedDict(
            depthwise_conv2d=conv2d_same(in_channels, in_channels, kernel_size, stride, groups=in_channels),
            pointwise_conv2d=nn.Conv2d(in_channels, out_channels, 1, bias=False),
        ))


class SeparableBranch(nn.Sequential):
    """The paper's "sep KxK" operation: ReLU, separable conv, BatchNorm, applied twice (the first
    carries the stride and the change of width)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int) -> None:
        super().__init__(OrderedDict(
            act_1=nn.ReLU(),  # not in place: the cell's other operations read the same input
            separable_1=SeparableConv2d(in_channels, out_channels, kernel_size, stride),
            bn_sep_1=batch_norm(out_channels),
            act_2=nn.ReLU(inplace=True),
            separable_2=SeparableConv2d(out_channels, out_channels, kernel_size, 1),
            bn_sep_2=batch_norm(out_channels),
        ))
        self.kernel_size, self.stride = kernel_size, stride

    def figure_label(self) -> str:
        return f"sep {self.kernel_size}x{self.kernel_size}" + (f", /{self.stride}" if self.stride > 1 else "")


def make_operation(name: str, in_channels: int, width: int, stride: int) -> nn.Module:
    """One of the search space's operations that Figure 4's cells use (identity is no module)."""
    if name.startswith("sep"):
        return SeparableBranch(in_channels, width, int(name[3]), stride)
    return pool2d_same(name[:3], int(name[3]), stride)


class Cell(nn.Module):
    """A Normal or Reduction cell (Figure 4) over the inputs (h, h_prev).

    Both inputs are first brought to `width` channels: h by ReLU-1x1 conv-BN (`conv_1x1`), h_prev
    the same way (`conv_prev_1x1`), or, when h_prev is twice h's size (the cell after a reduction),
    by the factorized reduction: two 1x1 convs on the even and on the odd pixels, half the width
    each, concatenated (`path_1`, `path_2`, `final_path_bn`). The first stem cell reads the stem
    conv's output as h_prev unchanged; its separable convs change the width themselves.
    """

    figure_depth = 1  # `cnnlab draw` shows a cell as Figure 4 does: one box per operation

    def __init__(self, blocks: tuple, output: tuple, h_channels: int, prev_channels: int, width: int,
                 prev_input: str, drop_prob: float = 0.0) -> None:
        super().__init__()
        self.blocks, self.output = blocks, output
        self.reduction = output == REDUCTION_OUTPUT
        self.conv_1x1 = ActConvBn(h_channels, width)
        self.prev_input = prev_input
        if prev_input == "conv":
            self.conv_prev_1x1 = ActConvBn(prev_channels, width)
        elif prev_input == "factorized":
            self.act = nn.ReLU()
            self.path_1 = nn.Sequential(OrderedDict(avgpool=nn.AvgPool2d(1, stride=2, count_include_pad=False),
                                                    conv=nn.Conv2d(prev_channels, width // 2, 1, bias=False)))
            self.path_2 = nn.Sequential(OrderedDict(pad=nn.ZeroPad2d((-1, 1, -1, 1)),  # shift by one pixel: the odd ones
                                                    avgpool=nn.AvgPool2d(1, stride=2, count_include_pad=False),
                                                    conv=nn.Conv2d(prev_channels, width // 2, 1, bias=False)))
            self.final_path_bn = batch_norm(width)
        elif prev_input != "as is":
            raise ValueError(f"prev_input must be 'conv', 'factorized' or 'as is', not {prev_input!r}")
        for index, operands in enumerate(blocks):
            for side, (source, operation) in zip(("left", "right"), operands):
                if operation == "identity":
                    continue
                from_input = source in ("h", "h_prev")
                in_channels = prev_channels if source == "h_prev" and prev_input == "as is" else width
                stride = 2 if self.reduction and from_input else 1
                setattr(self, f"comb_iter_{index}_{side}", make_operation(operation, in_channels, width, stride))
        self.drop_path = ScheduledDropPath(drop_prob) if drop_prob > 0 else None
        self.width, self.out_channels = width, width * len(output)

    def figure_label(self) -> str:
        return f"{'Reduction' if self.reduction else 'Normal'} cell, {self.width} x {len(self.output)}"

    def adapt_prev(self, h_prev: torch.Tensor) -> torch.Tensor:
        if self.prev_input == "conv":
            return self.conv_prev_1x1(h_prev)
        if self.prev_input == "factorized":
            h_prev = self.act(h_prev)
            return self.final_path_bn(torch.cat((self.path_1(h_prev), self.path_2(h_prev)), 1))
        return h_prev

    def forward(self, h: torch.Tensor, h_prev: torch.Tensor) -> torch.Tensor:
        states = {"h": self.conv_1x1(h), "h_prev": self.adapt_prev(h_prev)}
        for index, operands in enumerate(self.blocks):
            added = None
            for side, (source, operation) in zip(("left", "right"), operands):
                x = states[source]
                if operation != "identity":
                    x = getattr(self, f"comb_iter_{index}_{side}")(x)
                    if self.drop_path is not None:
                        x = self.drop_path(x)
                added = x if added is None else added + x
            states[index] = added
        return torch.cat([states[key] for key in self.output], 1)


class NASNetA(PooledLinearNet):
    """Figure 2. ImageNet: a 3x3/2 conv, two Reduction cells as the stem, then three stages of N
    Normal cells with a Reduction cell between them. CIFAR: a 3x3 conv as the whole stem, then
    the same three stages. The width doubles at each reduction.

    After a Reduction cell the next cell reads, as its h_prev, the Reduction cell's own h_prev in
    the ImageNet models (TensorFlow's `skip_reduction_layer_input`) and the Reduction cell's h in
    the CIFAR ones. `drop_path_rate` is ScheduledDropPath's final probability for the last cell,
    lower in earlier ones in proportion to depth (TensorFlow's reference; the paper's large model
    used 0.3).
    """

    classifier_name = "last_linear"
    figure_depth = 1  # `cnnlab draw` shows the stack of cells, as Figure 2 does

    def __init__(self, cells_per_stage: int, penultimate_filters: int, stem_filters: int, input_side: int = 224,
                 stem: str = "imagenet", *, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5,
                 drop_path_rate: float = 0.0) -> None:
        super().__init__()
        if cells_per_stage < 1:
            raise ModelConfigError(f"NASNet-A needs at least one Normal cell per stage, got N = {cells_per_stage}")
        if penultimate_filters % 24 or penultimate_filters <= 0:
            raise ModelConfigError(f"the penultimate filters F must be a positive multiple of 24 (the last stage "
                                   f"concatenates 6 states of F/6 channels, F/6 = 4 x the first stage's F/24 width), "
                                   f"got {penultimate_filters}")
        if not 0.0 <= drop_path_rate < 1.0:
            raise ModelConfigError(f"drop_path_rate must be in [0, 1), got {drop_path_rate}")
        if stem not in ("imagenet", "cifar"):
            raise ModelConfigError(f"stem must be 'imagenet' (a 3x3/2 conv and two Reduction cells) or 'cifar' (a 3x3 "
                                   f"conv), not {stem!r}")
        self.num_classes, self.in_chans = num_classes, in_chans
        self.default_input_size = (in_chans, input_side, input_side)
        base = penultimate_filters // 24  # the first stage's width
        imagenet = stem == "imagenet"
        self.conv0 = ConvBnAct(in_chans, stem_filters, 3, stride=2 if imagenet else 1, padding=0 if imagenet else 1,
                               bn_eps=1e-3, activation=nn.Identity())
        self.feature_info = [stage_info("conv0", stem_filters, 2 if imagenet else 1)]
        first_stage = 8 if imagenet else 1  # the first Normal cells' reduction: after the stem's three halvings, or none

        # (name, cell, width); the ImageNet stem's two Reduction cells are base/4 and base/2 wide
        plan = [("cell_stem_0", REDUCTION_CELL, base // 4), ("cell_stem_1", REDUCTION_CELL, base // 2)] if imagenet else []
        for stage in range(3):
            if stage:
                plan.append((f"reduction_cell_{stage - 1}", REDUCTION_CELL, base * 2**stage))
            plan += [(f"cell_{stage * cells_per_stage + i}", NORMAL_CELL, base * 2**stage) for i in range(cells_per_stage)]
        total = len(plan)

        self.cell_names, self.keeps_h_prev = [], set()  # the cells after which h_prev stays as it was
        h_channels = prev_channels = stem_filters
        prev_larger = False
        for depth, (name, blocks, width) in enumerate(plan, start=1):
            reduction = blocks is REDUCTION_CELL
            prev_input = "as is" if name == "cell_stem_0" else "factorized" if prev_larger else "conv"
            output = REDUCTION_OUTPUT if reduction else NORMAL_OUTPUT
            cell = Cell(blocks, output, h_channels, prev_channels, width, prev_input, drop_path_rate * depth / total)
            setattr(self, name, cell)
            self.cell_names.append(name)
            if reduction and imagenet and not name.startswith("cell_stem"):
                self.keeps_h_prev.add(name)
                h_channels = cell.out_channels
            else:
                h_channels, prev_channels = cell.out_channels, h_channels
            prev_larger = reduction
        taps = ((f"cell_{cells_per_stage - 1}", first_stage), (f"cell_{2 * cells_per_stage - 1}", 2 * first_stage))
        for last, reduction in ((("cell_stem_0", 4),) if imagenet else ()) + taps:
            self.feature_info.append(stage_info(last, getattr(self, last).out_channels, reduction))
        self.act = nn.ReLU(inplace=True)
        self.num_features = h_channels
        self.feature_info.append(stage_info("act", h_channels, 4 * first_stage))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None
        self.last_linear = nn.Linear(h_channels, num_classes)
        kaiming_init_(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        h = h_prev = self.conv0(x)
        for name in self.cell_names:
            out = getattr(self, name)(h, h_prev)
            if name in self.keeps_h_prev:
                h = out
            else:
                h, h_prev = out, h
        return self.act(h)


def _nasnet(size: str, num_classes: int, in_chans: int, **options) -> NASNetA:
    return NASNetA(**NASNET_CONFIGS[size], num_classes=num_classes, in_chans=in_chans, **options)


# Appendix A (CIFAR-10), as TensorFlow's cifar_config has it: SGD with momentum, lr 0.025 with cosine
# decay over 600 epochs at batch 32, weight decay 5e-4; ScheduledDropPath 0.4, no dropout, an auxiliary
# head (not built here) and cutout.
CIFAR_RECIPE = dict(optimizer="sgd", lr=0.025, momentum=0.9, weight_decay=5e-4, schedule="cosine", epochs=600,
                    batch_size=32)


@register_model(recipe=CIFAR_RECIPE, family="nasnet", paper="Zoph et al. 2018", input_size=(3, 32, 32), num_classes=10)
def nasnet_a_cifar(*, num_classes: int = 10, in_chans: int = 3, dropout: float = 0.0,
                   drop_path_rate: float = 0.0) -> NASNetA:
    """NASNet-A (6 @ 768) for CIFAR: the same cells on a 3x3 conv stem, 6 Normal cells per stage, 32x32."""
    return _nasnet("cifar", num_classes, in_chans, dropout=dropout, drop_path_rate=drop_path_rate)


@register_model(recipe=RECIPE, family="nasnet", paper="Zoph et al. 2018", input_size=(3, 224, 224))
def nasnet_a_mobile(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5,
                    drop_path_rate: float = 0.0) -> NASNetA:
    """NASNet-A (4 @ 1056): the searched Normal and Reduction cells, 4 Normal cells per stage, for 224x224."""
    return _nasnet("mobile", num_classes, in_chans, dropout=dropout, drop_path_rate=drop_path_rate)


@register_model(recipe={**RECIPE, "weight_decay": 5e-5}, family="nasnet", paper="Zoph et al. 2018",
                input_size=(3, 331, 331))
def nasnet_a_large(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5,
                   drop_path_rate: float = 0.0) -> NASNetA:
    """NASNet-A (6 @ 4032): 6 Normal cells per stage, for 331x331; timm's nasnetalarge weights load into it."""
    return _nasnet("large", num_classes, in_chans, dropout=dropout, drop_path_rate=drop_path_rate)
