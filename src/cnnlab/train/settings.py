"""A run's settings, resolved once: the user's, then the transfer mode's, the recipe's and the
family's defaults, the scaling rule for the global batch, and what the data and the starting
weights decide (input size, normalization, augmentation, precision). `resolve` returns one frozen
`Settings`; nothing changes it later, and `describe` builds the run's settings lines from it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cnnlab.data import Normalization, image_stats, parse_augment
from cnnlab.data.augment import Augment
from cnnlab.train.config import ANY_INPUT_SIZE, TrainConfig, with_family_defaults
from cnnlab.train.data import RunData
from cnnlab.train.distributed import World
from cnnlab.train.precision import Precision
from cnnlab.train.precision import resolve as resolve_precision


@dataclass(frozen=True)
class Settings:
    """Everything a run does, decided: `config` with every default filled and the scaling applied."""

    config: TrainConfig
    filled: dict[str, Any]  # the settings that came from defaults (said in the log and config.json)
    scaled: dict[str, Any]  # what --scale-lr changed
    base_lr: float  # --lr before --scale-lr
    out: Path
    size: int  # the model's input side
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: Augment
    precision: Precision
    pretrained: bool  # the input size and normalization are those of the run the weights come from

    @property
    def normalization(self) -> Normalization:
        return Normalization(self.mean, self.std)


def run_folder(config: TrainConfig) -> Path:
    return Path(config.out or f"runs/{config.model}")


def scaled_for(config: TrainConfig, world: World) -> dict[str, Any]:
    """--scale-lr: the linear scaling rule (Goyal et al. 2017): the global batch is ranks x
    accumulate times --batch-size, so the learning rate grows by that factor, reached by a linear
    warm-up (5 epochs as in the paper, or a fifth of a shorter run) unless --warmup-epochs says."""
    factor = world.size * config.accumulate
    if not config.scale_lr or factor == 1:
        return {}
    changes = {"lr": config.lr * factor}
    if not config.warmup_epochs:
        changes["warmup_epochs"] = min(5.0, config.epochs / 5)
    return changes


def with_defaults(config: TrainConfig, family: str) -> tuple[TrainConfig, dict[str, Any]]:
    """The transfer mode's defaults (if any), then the recipe's and the family's; and what was filled."""
    filled: dict[str, Any] = {}
    if config.transfer:
        from cnnlab.train import transfer

        config, filled = transfer.fill_defaults(config)
    config, family_filled = with_family_defaults(config, family)
    filled = {**filled, **family_filled}
    if config.optimizer != "sgd":  # momentum and Nesterov are SGD's settings
        filled = {k: v for k, v in filled.items() if k not in ("momentum", "nesterov")}
    return config, filled


def resolve(config: TrainConfig, family: str, default_size: int, world: World, data: RunData, resuming: bool) -> Settings:
    """The run's settings, decided once (see the module docstring)."""
    config, filled = with_defaults(config, family)
    base_lr = config.lr
    scaled = scaled_for(config, world)
    pretrained = None
    if config.transfer:
        from cnnlab.train.transfer import pretrained_preprocessing

        pretrained = pretrained_preprocessing(config.init, data.channels)
    if config.recipe and config.input_size is None and not pretrained and family in ANY_INPUT_SIZE:
        sized = {"input_size": data.stored_side}  # the fast recipe trains on the stored side (28x28: no resize)
    else:
        sized = {}
    config = replace(config, resume=resuming, **scaled, **sized)
    size = config.input_size or (pretrained["size"] if pretrained else default_size)
    mean, std = (pretrained["mean"], pretrained["std"]) if pretrained else image_stats(data.train)
    return Settings(config, filled, scaled, base_lr, run_folder(config), size, tuple(mean), tuple(std),
                    parse_augment(config.augment, default="digits" if data.channels == 1 else "cifar"),
                    resolve_precision(config.amp, world.device), pretrained is not None)


def describe(settings: Settings, total_epochs: int, world: World) -> list[str]:
    """The run's settings lines: the optimization, the arithmetic, and the data-parallel layout."""
    config = settings.config
    lines = [
        f"settings: {config.optimizer} lr {config.lr:g}" + (f" momentum {config.momentum:g}" if config.optimizer == "sgd" else "")
        + (" nesterov" if config.nesterov else "") + f", weight decay {config.weight_decay:g}"
        + (" (not on norm/bias)" if config.no_decay_norm_bias else "") + f", {config.schedule} schedule"
        + (f" ({config.warmup_epochs:g} warm-up epochs)" if config.warmup_epochs else "") + f", batch {config.batch_size}, "
        f"{total_epochs} epochs, augmentation: {settings.augment.describe()}"
        + (f", label smoothing {config.label_smoothing:g}" if config.label_smoothing else "")
        + (", test-time flip" if config.test_flip else "") + (f"; recipe {config.recipe}" if config.recipe else "")
        + (f"; defaults used for {', '.join(settings.filled)}" if settings.filled else ""),
        f"compute: {settings.precision.note}; {'channels_last' if config.channels_last else 'NCHW'} layout"
        + (", torch.compile" if config.compile else ""),
    ]
    if world.distributed or config.accumulate > 1:
        factor = world.size * config.accumulate
        lines.append(
            f"data-parallel: {world.size} processes ({'nccl' if world.device.type == 'cuda' else 'gloo'}), batch "
            f"{config.batch_size} per process x {world.size}" + (f" x {config.accumulate} accumulated" if config.accumulate > 1 else "")
            + f" = global batch {config.batch_size * factor:,}"
            + (f"; --scale-lr: lr {settings.base_lr:g} x {factor} = {config.lr:g}"
               + (f" after {config.warmup_epochs:g} warm-up epochs" if config.warmup_epochs else "") if settings.scaled else ""))
    return lines
