"""Output size of a sliding window, the one formula that sizes every conv and pool."""

from __future__ import annotations

import math


def window_output_size(
    size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1, ceil_mode: bool = False
) -> int:
    """floor((size + 2P - D(K-1) - 1) / S) + 1, as PyTorch computes it (= floor((W - K + 2P)/S) + 1 for D=1).

    With ceil_mode the division rounds up, but a last window that would start in the right padding
    is dropped, as PyTorch's pooling does.
    """
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if ceil_mode:
        out = math.ceil(span / stride) + 1
        if (out - 1) * stride >= size + padding:
            out -= 1
        return out
    return span // stride + 1
