"""Stochastic depth: drop a residual branch for a whole mini-batch (Huang et al.) or per image (timm)."""

from __future__ import annotations

import torch
from torch import nn


DROP_PATH_MODES = ("batch", "sample")


class DropPath(nn.Module):
    """Stochastic depth: drop a residual branch with probability `drop_prob` while training.

    G. Huang, Y. Sun, Z. Liu, D. Sedra, K. Weinberger, "Deep Networks with Stochastic Depth",
    ECCV 2016. mode="batch" is the paper's: "for each mini-batch, randomly drop a subset of layers",
    one draw per block and mini-batch, so a dropped block passes its shortcut alone for every image;
    a kept branch is used as it is, and at test time it is scaled by its survival probability
    (Eq. 5: H = ReLU(p f(x) + id(x))). mode="sample" is timm's DropPath: one draw per image, kept
    branches scaled by 1/(1 - p) while training and used as they are at test time (the same
    expectation); FractalNet's local drop-path and NASNet's ScheduledDropPath work per image too.

    The branch is computed even when dropped (multiplied by zero): under data-parallel training
    every parameter must receive a gradient in every step.
    """

    def __init__(self, drop_prob: float = 0.0, mode: str = "batch") -> None:
        super().__init__()
        if mode not in DROP_PATH_MODES:
            raise ValueError(f"drop path mode must be one of {DROP_PATH_MODES}, not {mode!r}")
        self.drop_prob, self.mode = drop_prob, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.drop_prob == 0.0:
            return x
        keep_prob = 1.0 - self.drop_prob
        if self.mode == "batch":
            if not self.training:
                return x * keep_prob
            return x * (torch.rand((), device=x.device) < keep_prob).to(x.dtype)
        if not self.training:
            return x
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep_prob)
        return x * mask / keep_prob

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob:.3f}, mode={self.mode}"


def linear_drop_path_rates(drop_path_rate: float, num_blocks: int) -> list[float]:
    """The paper's linear decay rule: block l of L drops with probability l / L * drop_path_rate."""
    return [drop_path_rate * (index + 1) / num_blocks for index in range(num_blocks)]


class ScheduledDropPath(nn.Module):
    """NASNet's ScheduledDropPath (Zoph et al. 2018, Sec. 4): DropPath on each operation of a cell,
    with a probability that grows linearly over training, from 0 to `drop_prob` at the end.

    `progress` (0 at the start of training, 1 at its end) is a buffer, not a Python number, so a
    compiled model does not recompile when it moves; the training loop sets it each epoch through
    `set_drop_path_progress`. Kept paths are scaled by 1/keep, as in DropPath.
    """

    def __init__(self, drop_prob: float) -> None:
        super().__init__()
        self.drop_prob = drop_prob
        self.register_buffer("progress", torch.zeros(()), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.drop_prob * self.progress
        noise = torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), device=x.device)
        return x * (noise < keep).to(x.dtype) / keep.to(x.dtype)

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob:.3f} (reached at the end of training)"


def set_drop_path_progress(model: nn.Module, fraction: float) -> None:
    """Tell every ScheduledDropPath how far training has gone (0 to 1)."""
    for module in model.modules():
        if isinstance(module, ScheduledDropPath):
            module.progress.fill_(min(max(fraction, 0.0), 1.0))
