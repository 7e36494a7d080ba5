"""What PyTorch really keeps for backward, to set beside the seeds' memory model.

The seeds count every layer output twice (value and gradient). Autograd keeps something else: the
tensors each operation needs for its own backward (a conv's input, a ReLU's output, a max pool's
indices, a dropout mask, BatchNorm's saved statistics), shared where two operations save the same
tensor. Gradients exist only transiently during backward. This module counts the saved bytes with
`torch.autograd.graph.saved_tensors_hooks` on a real training-mode forward, on the `meta` device
(so no memory is allocated whatever the batch).
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.models.base import meta_copy


def saved_for_backward_bytes(model: nn.Module, input_size: tuple[int, int, int], batch: int,
                             dtype: torch.dtype = torch.float32) -> int:
    """Bytes of the distinct non-parameter tensors autograd saves during one training forward."""
    meta_model = meta_copy(model).to(dtype).train()
    parameters = {id(p) for p in meta_model.parameters()}
    seen: set[int] = set()
    keep_alive: list[torch.Tensor] = []
    total = 0

    def pack(tensor: torch.Tensor):
        nonlocal total
        base = tensor._base if tensor._base is not None else tensor
        if id(base) not in seen and id(base) not in parameters and id(tensor) not in parameters:
            seen.add(id(base))
            keep_alive.append(base)  # keeps ids unique while we count
            total += base.numel() * base.element_size()
        return tensor

    x = torch.empty((batch, *input_size), device="meta", dtype=dtype)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        meta_model(x)
    return total
