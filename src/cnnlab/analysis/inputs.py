"""What the analysis runs on: input sizes as users write them, and zoo models built on the meta
device (shapes only, no memory, no initialization)."""

from __future__ import annotations

import re

import torch
from torch import nn

from cnnlab.errors import InputShapeError


def parse_input_size(text: str | tuple | list) -> tuple[int, ...]:
    """'3x227x227' (or '227' for a square RGB image, or '1x28x28') to (C, H, W). A tuple from
    Python is one input's per-sample shape as it is, of any rank ((16, 16) tokens x features too)."""
    if isinstance(text, (tuple, list)):
        values = tuple(int(v) for v in text)
        if len(values) != 3:
            if not values or min(values) < 1:
                raise InputShapeError(f"input size {text!r} must be positive numbers, one per dimension of a sample")
            return values
    else:
        if not re.fullmatch(r"\s*\d+(\s*[x,]\s*\d+)*\s*", str(text)):
            raise InputShapeError(f"--input {text!r} is not of the form CxHxW (e.g. 3x224x224, or 224 for 3x224x224)")
        values = tuple(int(v) for v in re.split(r"\s*[x,]\s*", str(text).strip()))
    if len(values) == 1:
        values = (3, values[0], values[0])
    if len(values) == 2:
        values = (3, *values)
    if len(values) != 3 or min(values) < 1:
        raise InputShapeError(f"input size {text!r} must be three positive numbers CxHxW (e.g. 3x224x224)")
    return values


def meta_model(name: str, input_size=None, **model_kwargs) -> nn.Module:
    """The zoo model `name` on the meta device (shapes only, no memory, no initialization), built
    for `input_size` when that is one shape (a net with a flattened classifier sizes fc6 for it)."""
    from cnnlab.models import create_model

    if input_size is not None and not isinstance(input_size, list):
        model_kwargs["input_size"] = parse_input_size(input_size)
    with torch.device("meta"):
        return create_model(name, **model_kwargs)
