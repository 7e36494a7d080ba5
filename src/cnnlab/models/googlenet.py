"""GoogLeNet (Inception v1): stacked inception modules with 1x1 bottlenecks.

C. Szegedy et al., "Going Deeper with Convolutions", CVPR 2015 (Table 1, Figures 2-3,
Section 5 for the auxiliary classifiers). Names follow torchvision (conv1, inception3a, aux1,
fc, ...), whose `googlenet` is kept as the named variant `googlenet_tv`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.layers import ConvBnAct
from cnnlab.models.base import AuxHeadNet, stage_info
from cnnlab.models.registry import register_model

# Szegedy et al. 2014: momentum 0.9, lr decreased 4% every 8 epochs.
RECIPE = dict(optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=2e-4, schedule="step", epochs=90, batch_size=128)

# Table 1: the six widths of each inception module, in seed 003's column order:
# #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj. None marks a 3x3/2 max pool.
GOOGLENET_MODULES: tuple[tuple[str, tuple[int, int, int, int, int, int] | None], ...] = (
    ("inception3a", (64, 96, 128, 16, 32, 32)),
    ("inception3b", (128, 128, 192, 32, 96, 64)),
    ("maxpool3", None),
    ("inception4a", (192, 96, 208, 16, 48, 64)),
    ("inception4b", (160, 112, 224, 24, 64, 64)),
    ("inception4c", (128, 128, 256, 24, 64, 64)),
    ("inception4d", (112, 144, 288, 32, 64, 64)),
    ("inception4e", (256, 160, 320, 32, 128, 128)),
    ("maxpool4", None),
    ("inception5a", (256, 160, 320, 32, 128, 128)),
    ("inception5b", (384, 192, 384, 48, 128, 128)),
)


class Inception(nn.Module):
    """Four parallel branches concatenated along channels: 1x1; 1x1 -> 3x3; 1x1 -> 5x5; 3x3 max pool -> 1x1.

    The 1x1 "reduce" convs before the 3x3 and 5x5 (and after the pool) keep the cost in check:
    seed 000's example drops from 854M to 271M multiply-adds (the slide prints 358M, counting the
    3x3 conv twice; docs/analysis.md).
    """

    def __init__(
        self,
        in_channels: int,
        ch1x1: int,
        ch3x3red: int,
        ch3x3: int,
        ch5x5red: int,
        ch5x5: int,
        pool_proj: int,
        *,
        batch_norm: bool = False,
        five_by_five_kernel: int = 5,
    ) -> None:
        super().__init__()

        def conv(c_in: int, c_out: int, kernel: int) -> ConvBnAct:
            return ConvBnAct(c_in, c_out, kernel, padding=kernel // 2, batch_norm=batch_norm, bn_eps=0.001)

        self.branch1 = conv(in_channels, ch1x1, 1)
        self.branch2 = nn.Sequential(conv(in_channels, ch3x3red, 1), conv(ch3x3red, ch3x3, 3))
        self.branch3 = nn.Sequential(conv(in_channels, ch5x5red, 1), conv(ch5x5red, ch5x5, five_by_five_kernel))
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True), conv(in_channels, pool_proj, 1)
        )
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj
        self.widths = (ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj)
        # (kernel, stride, padding) of each branch's widest window, for the seed's K, S, P cells:
        # 1x1, 3x3, 5x5 (or 3x3), and the 3x3 max pool.
        self.branch_geometry = ((1, 1, 0), (3, 1, 1), (five_by_five_kernel, 1, five_by_five_kernel // 2), (3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class NaiveInception(nn.Module):
    """Seed 000's naive module: 1x1, 3x3 and 5x5 convs and a 3x3 max pool side by side, no 1x1
    reductions: 854M multiply-adds at 28x28x256 with 128/192/96 filters (271M with bottlenecks)."""

    def __init__(self, in_channels: int, ch1x1: int, ch3x3: int, ch5x5: int) -> None:
        super().__init__()
        self.branch1 = ConvBnAct(in_channels, ch1x1, 1, batch_norm=False)
        self.branch2 = ConvBnAct(in_channels, ch3x3, 3, padding=1, batch_norm=False)
        self.branch3 = ConvBnAct(in_channels, ch5x5, 5, padding=2, batch_norm=False)
        self.branch4 = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionAux(nn.Module):
    """Section 5: 5x5/3 average pool (4x4 maps at 14x14), 1x1 conv 128, fc 1024, dropout 0.7, fc.

    `paper_pool=False` is torchvision's adaptive 4x4 average pool instead: 4x4 at any input size,
    but not the same windows at 14x14 (4 wide at 0/3/7/10 against the paper's 5 wide at 0/3/6/9).
    """

    def __init__(self, in_channels: int, num_classes: int, *, batch_norm: bool = False, dropout: float = 0.7,
                 paper_pool: bool = True) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(5, stride=3) if paper_pool else nn.AdaptiveAvgPool2d((4, 4))
        self.conv = ConvBnAct(in_channels, 128, 1, batch_norm=batch_norm, bn_eps=0.001)
        self.fc1 = nn.Linear(2048, 1024)
        self.fc2 = nn.Linear(1024, num_classes)
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(self.pool(x))
        x = self.dropout(F.relu(self.fc1(torch.flatten(x, 1)), inplace=True))
        return self.fc2(x)


class GoogLeNetOutputs(NamedTuple):
    logits: torch.Tensor
    aux_logits2: torch.Tensor
    aux_logits1: torch.Tensor


class GoogLeNet(AuxHeadNet):
    """Stem, nine inception modules, global average pool, dropout, fc; optional auxiliary heads.

    With `aux_logits=True`, a model in training mode returns `GoogLeNetOutputs(logits,
    aux_logits2, aux_logits1)` (the paper weights the auxiliary losses by 0.3); in eval mode,
    and always without `aux_logits`, it returns the logits alone.
    """

    def __init__(
        self,
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        aux_logits: bool = False,
        batch_norm: bool = False,
        five_by_five_kernel: int = 5,
        stem_lrn: bool = True,
        last_pool_kernel: int = 3,
        dropout: float = 0.4,
        aux_dropout: float = 0.7,
        aux_paper_pool: bool = True,
    ) -> None:
        super().__init__()
        self.num_classes, self.in_chans, self.num_features = num_classes, in_chans, 1024
        self.default_input_size = (in_chans, 224, 224)
        self.aux_logits = aux_logits

        def conv(c_in: int, c_out: int, kernel: int, stride: int = 1) -> ConvBnAct:
            return ConvBnAct(c_in, c_out, kernel, stride, kernel // 2, batch_norm=batch_norm, bn_eps=0.001)

        self.conv1 = conv(in_chans, 64, 7, stride=2)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        # Figure 3's LocalRespNorm after the first pool and after conv3, with the reference Caffe
        # model's constants (size 5, alpha 1e-4 averaged over the window, beta 0.75, k 1).
        self.lrn1 = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0) if stem_lrn else nn.Identity()
        self.conv2 = conv(64, 64, 1)
        self.conv3 = conv(64, 192, 3)
        self.lrn2 = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0) if stem_lrn else nn.Identity()
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)

        channels, reduction = 192, 8
        self.feature_info = [stage_info("maxpool2", 192, 8)]
        for name, widths in GOOGLENET_MODULES:
            if widths is None:
                kernel = last_pool_kernel if name == "maxpool4" else 3
                setattr(self, name, nn.MaxPool2d(kernel, stride=2, ceil_mode=True))
                self.feature_info.append(stage_info(name, channels, reduction * 2))
                reduction *= 2
                continue
            module = Inception(channels, *widths, batch_norm=batch_norm, five_by_five_kernel=five_by_five_kernel)
            setattr(self, name, module)
            channels = module.out_channels
        self.feature_info.append(stage_info("inception5b", channels, reduction))
        self.module_names = [name for name, _ in GOOGLENET_MODULES]

        if aux_logits:
            aux = dict(batch_norm=batch_norm, dropout=aux_dropout, paper_pool=aux_paper_pool)
            self.aux1 = InceptionAux(512, num_classes, **aux)
            self.aux2 = InceptionAux(528, num_classes, **aux)
        else:
            self.aux1 = self.aux2 = None
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(1024, num_classes)

        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(module.weight, mean=0.0, std=0.01, a=-2, b=2)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def _stem(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lrn1(self.maxpool1(self.conv1(x)))
        return self.maxpool2(self.lrn2(self.conv3(self.conv2(x))))

    def features_and_aux(self, x: torch.Tensor, with_aux: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x, aux = self._stem(x), []
        for name in self.module_names:
            x = getattr(self, name)(x)
            if with_aux and name == "inception4a":
                aux.append(self.aux1(x))
            elif with_aux and name == "inception4d":
                aux.append(self.aux2(x))
        return x, aux

    def aux_outputs(self, logits: torch.Tensor, aux: list[torch.Tensor]) -> GoogLeNetOutputs:
        return GoogLeNetOutputs(logits, aux[1], aux[0])

    def reset_classifier(self, num_classes: int) -> None:
        super().reset_classifier(num_classes)
        if self.aux_logits:
            self.aux1.fc2 = nn.Linear(1024, num_classes)
            self.aux2.fc2 = nn.Linear(1024, num_classes)


@register_model(recipe=RECIPE, family="googlenet", paper="Szegedy et al. 2014", input_size=(3, 224, 224))
def googlenet(*, num_classes: int = 1000, in_chans: int = 3, aux_logits: bool = False, dropout: float = 0.4) -> GoogLeNet:
    """GoogLeNet as published: 5x5 convs in the 5x5 branch, no BatchNorm, LRN in the stem, optional aux heads."""
    return GoogLeNet(num_classes=num_classes, in_chans=in_chans, aux_logits=aux_logits, dropout=dropout)


@register_model(recipe=RECIPE, family="googlenet", paper="Szegedy et al. 2014; torchvision", input_size=(3, 224, 224))
def googlenet_tv(*, num_classes: int = 1000, in_chans: int = 3, aux_logits: bool = False, dropout: float = 0.2) -> GoogLeNet:
    """torchvision's GoogLeNet: BatchNorm after every conv, 3x3 convs in the "5x5" branch, no LRN.

    Differs from `googlenet`: BN (eps 1e-3) and no conv biases, a 3x3 kernel where the paper has
    5x5 (a known slip carried from the reference port), no LRN, a 2x2 max pool before stage 5,
    dropout 0.2, and an adaptive 4x4 average pool in the aux heads where the paper has 5x5/3.
    Loads torchvision's checkpoints (with aux_logits=True when they hold aux heads).
    """
    return GoogLeNet(num_classes=num_classes, in_chans=in_chans, aux_logits=aux_logits, batch_norm=True,
                     five_by_five_kernel=3, stem_lrn=False, last_pool_kernel=2, dropout=dropout, aux_paper_pool=False)
