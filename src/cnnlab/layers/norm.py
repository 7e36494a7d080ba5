"""Local response normalization as AlexNet defined it."""

from __future__ import annotations

from torch import nn


def krizhevsky_lrn(size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0) -> nn.LocalResponseNorm:
    """LRN with the paper's constants (Krizhevsky et al. 2012, Sec. 3.3: k=2, n=5, alpha=1e-4, beta=0.75).

    The paper divides by (k + alpha * sum a^2)^beta; PyTorch's LocalResponseNorm divides by
    (k + alpha / n * sum a^2)^beta. Passing alpha * n makes the two the same.
    """
    return nn.LocalResponseNorm(size=size, alpha=alpha * size, beta=beta, k=k)
