"""Fully-connected classifier heads (AlexNet, ZFNet, VGG)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

from torch import nn


def fc_classifier(
    in_features: int,
    hidden: Sequence[int],
    num_classes: int,
    dropout: float,
    first_layer_number: int | None = None,
) -> nn.Sequential:
    """Linear -> ReLU -> Dropout for each hidden width, then the output Linear.

    With `first_layer_number` (6 for AlexNet) the children are named fc6, relu6, drop6, ..., as
    the papers and the seeds' tables name them; without it they are numbered 0, 1, 2, ... as in
    torchvision's VGG, so its checkpoints load unchanged.
    """
    layers: list[tuple[str, nn.Module]] = []
    width = in_features
    for index, out_width in enumerate(hidden):
        layers += [
            ("fc", nn.Linear(width, out_width)),
            ("relu", nn.ReLU(inplace=True)),
            ("drop", nn.Dropout(dropout)),
        ]
        width = out_width
    layers.append(("fc", nn.Linear(width, num_classes)))
    if first_layer_number is None:
        return nn.Sequential(*(module for _, module in layers))
    named, number = [], first_layer_number
    for kind, module in layers:
        named.append((f"{kind}{number}", module))
        if kind == "drop" or (kind == "fc" and module is layers[-1][1]):
            number += 1
    return nn.Sequential(OrderedDict(named))


def replace_last_linear(classifier: nn.Sequential, num_classes: int) -> None:
    """Swap the final Linear of `classifier` for a fresh one with `num_classes` outputs."""
    name, last = list(classifier.named_children())[-1]
    if not isinstance(last, nn.Linear):
        raise TypeError(f"the classifier ends in {type(last).__name__}, not Linear")
    setattr(classifier, name, nn.Linear(last.in_features, num_classes))
