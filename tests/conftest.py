from __future__ import annotations

import pytest
import torch

import cnnlab


def trainable_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def meta_model(name: str, **kwargs) -> torch.nn.Module:
    """Build a model on the meta device: its shapes and counts, no memory and no init cost."""
    with torch.device("meta"):
        return cnnlab.create_model(name, **kwargs)


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)
