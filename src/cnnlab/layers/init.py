"""Weight initialization shared by the residual families."""

from __future__ import annotations

from torch import nn


def kaiming_init_(model: nn.Module) -> None:
    """He et al. 2015's initialization for ReLU nets: conv weights ~ N(0, 2 / fan_out); BatchNorm
    gamma 1, beta 0 (torchvision's ResNet does the same)."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
