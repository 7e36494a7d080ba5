"""A run's phases: what trains, at which rate, for how long (one for a plain run; transfer plans
several in train/transfer.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import nn


@dataclass
class Phase:
    """A stretch of a run with its own optimizer: which parameters train at what share of the
    learning rate, which modules stay in eval mode, and whether only the head trains, on
    features the frozen backbone computed once. A plain run is one phase; transfer plans several
    (train/transfer.py)."""

    name: str
    epochs: int
    lr_scale: Callable[[str], float | None] | None = None  # parameter name -> share of lr; None: frozen
    frozen_modules: tuple[nn.Module, ...] = ()  # kept in eval mode, so their BatchNorm statistics stay
    cached_features: bool = False
    lr: float | None = None  # the phase's base learning rate (default --lr)
