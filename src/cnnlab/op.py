"""The operators of seeds 001 and 002, worked, from Python: what `cnnlab op` computes, taking
nested lists, NumPy arrays or tensors, and returning an object that a notebook draws as d2l's
figures (the input with the window over it, the kernel, the output, the sum written out) and a
terminal prints as `cnnlab op` does.

    import cnnlab
    worked = cnnlab.op.conv([[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[0, 1], [2, 3]])   # 19 25 / 37 43
    worked.step(1, 0)            # the window at row 1, column 0: 3x0 + 4x1 + 6x2 + 7x3 = 37
    worked.output                # tensor([[[19., 25.], [37., 43.]]])
    cnnlab.op.pool(x, size=2, stride=1, mode="avg")
    cnnlab.op.conv1x1(x, [[1, 0], [1, 1]])     # C_out x C_in weights: the 1x1 conv as W X

An input is H x W (one channel) or C x H x W; a conv kernel is KH x KW (one kernel of one channel),
C x KH x KW (one kernel, a slice per input channel) or C_out x C x KH x KW (one kernel per output
channel). The numbers come from torch's own operators (cnnlab.analysis.operators).
"""

from __future__ import annotations

import numpy as np
import torch

from cnnlab.analysis import operators
from cnnlab.analysis.operators import OperatorError, WorkedOperation, WorkedStep

__all__ = ["WorkedOperation", "WorkedStep", "conv", "conv1x1", "pool"]


def conv(input, kernel, padding=0, stride=1, bias: float = 0.0) -> WorkedOperation:
    """Cross-correlation of `input` with `kernel` (several output channels for a 4-D kernel), with
    zero `padding` and `stride` (a number, or a pair for rows and columns), as seed 002 works it."""
    x = _matrix(input, "input")
    weights = _values(kernel, "kernel")
    if weights.dim() == 2:
        kernels = [weights[None]]
    elif weights.dim() == 3:
        kernels = [weights]
    elif weights.dim() == 4:
        kernels = list(weights)
    else:
        raise OperatorError(f"kernel: give KH x KW, C x KH x KW or C_out x C x KH x KW values; got {weights.dim()} "
                            "dimension(s)")
    return operators.conv2d(x, kernels, _pair(padding, "padding"), _pair(stride, "stride", 1), float(bias))


def pool(input, size=2, stride=None, padding=0, mode: str = "max") -> WorkedOperation:
    """Max or average pooling of each channel of `input` over `size` windows (stride: the window's
    by default), as seeds 001 and 002 work it."""
    x = _matrix(input, "input")
    return operators.pool2d(x, mode, _pair(size, "size", 1), _pair(stride, "stride", 1) if stride is not None else None,
                            _pair(padding, "padding"))


def conv1x1(input, kernel) -> WorkedOperation:
    """The 1x1 convolution of `input` (C x H x W) with `kernel` (C_out x C_in weights): at each
    pixel a weighted sum over channels, the matrix product W X (its matrices in `.matrices`)."""
    return operators.conv1x1(_matrix(input, "input"), _values(kernel, "kernel"))


def _values(values, what: str) -> torch.Tensor:
    """Nested lists, a NumPy array or a tensor as a float64 tensor; ragged rows refused."""
    if isinstance(values, str):  # cnnlab op's text form: "0 1; 2 3", channels by "|" (C x H x W)
        return operators.parse_matrix(values, what)
    try:
        array = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values, dtype=float)
    except (ValueError, TypeError) as error:
        raise OperatorError(f"{what}: give numbers in rows of equal length (nested lists, an array or a tensor); "
                            f"{str(error).splitlines()[0]}") from None
    tensor = torch.as_tensor(np.asarray(array, dtype=float), dtype=torch.float64)
    if tensor.numel() == 0:
        raise OperatorError(f"{what} is empty: give at least one number")
    return tensor


def _matrix(values, what: str) -> torch.Tensor:
    tensor = _values(values, what)
    if tensor.dim() == 2:
        return tensor[None]
    if tensor.dim() != 3:
        raise OperatorError(f"{what}: give H x W (one channel) or C x H x W values; got {tensor.dim()} dimension(s)")
    return tensor


def _pair(value, what: str, minimum: int = 0) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        value = ",".join(str(v) for v in value)
    return operators.parse_pair(value, what, minimum)
