"""Activations by name, including LeCun's scaled tanh."""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.errors import ModelConfigError


class ScaledTanh(nn.Module):
    """f(a) = A tanh(S a) with A = 1.7159 and S = 2/3 (LeCun et al. 1998, Appendix A).

    The constants make f(1) = 1 and f(-1) = -1, and put the maximum of the second derivative
    at +-1, so targets of +-1 sit where the function is still steep.
    """

    def __init__(self, amplitude: float = 1.7159, slope: float = 2.0 / 3.0) -> None:
        super().__init__()
        self.amplitude = amplitude
        self.slope = slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.amplitude * torch.tanh(self.slope * x)

    def extra_repr(self) -> str:
        return f"amplitude={self.amplitude}, slope={self.slope:.4f}"


_ACTIVATIONS = {
    "relu": lambda: nn.ReLU(inplace=True),
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "scaled_tanh": ScaledTanh,
}


def make_activation(name: str) -> nn.Module:
    try:
        return _ACTIVATIONS[name]()
    except KeyError:
        raise ModelConfigError(
            f"unknown activation {name!r}; choose one of {', '.join(sorted(_ACTIVATIONS))}"
        ) from None

