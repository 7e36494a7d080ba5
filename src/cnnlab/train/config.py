"""Training settings. Defaults come from the model's paper (its registry entry's `recipe`, beside
the model in models/), from the fast recipe measured here, or from the generic ones below."""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from cnnlab.errors import CnnlabError
from cnnlab.models import get_entry
from cnnlab.train.precision import AMP_CHOICES


@dataclass(frozen=True)
class TrainConfig:
    """What the user asked for (None: the recipe's, the family's or the transfer mode's default).
    Frozen: train/settings.py resolves the defaults into a new one, once, and nothing changes it later."""

    model: str
    data: str = "mnist-embedded"
    out: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    optimizer: str | None = None  # sgd, adam, adamw
    momentum: float | None = None
    nesterov: bool | None = None
    weight_decay: float | None = None
    no_decay_norm_bias: bool = False
    schedule: str | None = None  # constant, step, multistep, cosine, onecycle, plateau
    milestones: tuple[float, ...] | None = None  # fractions of the run, for multistep
    gamma: float | None = None  # the lr factor at each step (0.1, or the family's: WRN's 0.2)
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    dropout: float | None = None
    augment: str | None = None
    clip_grad: float | None = None
    amp: str = "auto"  # auto (bf16 where native, else float32), none, bf16, fp16 (GPU): train/precision.py
    channels_last: bool | None = None  # None: the family's measured default (CHANNELS_LAST_FAMILIES)
    compile: bool = False
    recipe: str | None = None  # fast: the small-image recipe of RECIPES, filled before the family's defaults
    test_flip: bool = False  # evaluate on each image and its mirror image, averaging the logits
    seed: int = 0
    device: str = "auto"
    val_fraction: float = 0.1  # of the training split; with --subset N, of N
    val_size: int | None = None  # at most this many validation images
    subset: int | None = None  # train on the first N images of the (shuffled) training split
    watch_test: bool = False  # also evaluate the test split after every epoch (time-to-accuracy benchmarks)
    input_size: int | None = None
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    init: str | None = None  # start from these weights (checkpoint, .safetensors, .pth)
    transfer: str | None = None  # linear-probe, finetune, progressive (train/transfer.py); needs init
    head_epochs: int = 2  # finetune/progressive: epochs of the new head alone before the rest trains
    finetune_lr_scale: float = 0.1  # finetune/progressive: the backbone phase's lr as a share of lr
    lr_decay: float = 0.5  # progressive: lr factor per stage toward the input
    freeze_stages: int = 0  # progressive: the lowest stages kept frozen
    feature_cache: bool = True  # linear-probe and head phases: compute the frozen backbone's features once
    sync_bn: bool = False  # data-parallel: BatchNorm statistics over the global batch
    accumulate: int = 1  # micro-batches per optimizer step (no all-reduce on the first K-1)
    scale_lr: bool = False  # linear scaling rule: lr x (ranks x accumulate), with warm-up
    resume: bool = False
    overwrite: bool = False
    tensorboard: bool = False

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["milestones"] = list(self.milestones) if self.milestones else None
        return data


# --recipe fast: the settings that reached a target *test* accuracy soonest on the small-image sets
# (28x28 and 32x32) on this project's 2-core CPU, measured by benchmarks/time_to_accuracy.py
# (figures in BENCHMARKS.md): a short one-cycle run at a large batch with label smoothing, light
# translation, and mirror flips in training and at test time where the classes survive a mirror.
FAST_RECIPES: dict[str, dict[str, Any]] = {
    "lenet": dict(optimizer="adam", lr=3e-3, weight_decay=0.0, schedule="onecycle", epochs=8, batch_size=128,
                  label_smoothing=0.1),
    "resnet_cifar": dict(optimizer="sgd", lr=0.2, momentum=0.9, nesterov=True, weight_decay=5e-4, no_decay_norm_bias=True,
                         schedule="onecycle", epochs=10, batch_size=256, label_smoothing=0.1),
}
FAST_GENERIC = FAST_RECIPES["resnet_cifar"]
RECIPES = ("fast",)
# Families whose CIFAR-style nets end in global pooling and take the data's own side (28x28) as it is.
ANY_INPUT_SIZE = ("resnet_cifar", "nin", "densenet", "squeezenet", "shufflenet")
# Families for which channels_last trains at least 10% faster in bf16 on this CPU
# (benchmarks/layout.py, figures in BENCHMARKS.md); LeNet (2.7x slower in channels_last: its
# 6- and 16-channel maps are too thin), AlexNet/ZFNet and ShuffleNet (within 3%) stay NCHW.
# torch.compile is off by default: for resnet20 and LeNet it was no faster than eager bf16 and
# costs 10-40 s of compilation per run.
CHANNELS_LAST_FAMILIES = ("resnet_cifar", "resnet", "resnext", "wide_resnet", "vgg", "nin", "googlenet", "inception",
                          "densenet", "squeezenet")
GENERIC_DEFAULTS = dict(optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=1e-4, schedule="cosine", epochs=30, batch_size=128,
                        gamma=0.1)
SCHEDULES = ("constant", "step", "multistep", "cosine", "onecycle", "plateau")
OPTIMIZERS = ("sgd", "adam", "adamw")


def mirror_safe(data: str) -> bool:
    """Whether a data set's classes survive a left-right mirror (clothes, objects: yes; digits and
    characters: no), so flips may augment its training and its test."""
    return not data.startswith(("mnist", "kmnist"))


def recipe_settings(config: TrainConfig, family: str) -> dict[str, Any]:
    """The settings `config.recipe` stands for (before the family's paper defaults)."""
    if config.recipe is None:
        return {}
    if config.recipe not in RECIPES:
        raise CnnlabError(f"unknown recipe {config.recipe!r}; choose one of {', '.join(RECIPES)}")
    flips = mirror_safe(config.data)
    return {**FAST_RECIPES.get(family, FAST_GENERIC), "augment": "crop=2,flip" if flips else "crop=2", "test_flip": flips}


def with_family_defaults(config: TrainConfig, family: str) -> tuple[TrainConfig, dict[str, Any]]:
    """A copy of `config` with every unset setting filled from --recipe (if any), then the model's
    paper's (its registry entry's recipe), then the generic defaults; and what was filled."""
    paper = get_entry(config.model).recipe  # each model's paper's settings, beside its registry entry
    defaults = {**GENERIC_DEFAULTS, "momentum": 0.9, "nesterov": False, **paper,
                "channels_last": family in CHANNELS_LAST_FAMILIES}
    changes = {name: value for name, value in recipe_settings(config, family).items()
               if getattr(config, name, None) in (None, False)}
    filled = dict(changes)
    for name, value in defaults.items():
        if getattr(config, name, None) is None and name not in changes:
            changes[name] = value
            if name != "channels_last":  # a layout, not a training setting: the settings line says it
                filled[name] = value
    if config.milestones is None and "milestones" not in changes:
        changes["milestones"] = (0.5, 0.75)
    config = replace(config, **changes)
    validate(config)
    return config, filled


def validate(config: TrainConfig) -> None:
    if config.optimizer not in OPTIMIZERS:
        raise CnnlabError(f"unknown optimizer {config.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    if config.schedule not in SCHEDULES:
        raise CnnlabError(f"unknown schedule {config.schedule!r}; choose one of {', '.join(SCHEDULES)}")
    if config.amp not in AMP_CHOICES:
        raise CnnlabError(f"--amp takes {', '.join(AMP_CHOICES)}, got {config.amp!r}")
    if config.val_size is not None and config.val_size < 1:
        raise CnnlabError(f"--val-size must be at least 1, got {config.val_size}")
    for name in ("epochs", "batch_size", "accumulate"):
        if getattr(config, name) < 1:
            raise CnnlabError(f"--{name.replace('_', '-')} must be at least 1")
    if config.lr <= 0:
        raise CnnlabError(f"--lr must be positive, got {config.lr}")


def load_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise CnnlabError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as error:
        raise CnnlabError(f"{path} is not valid TOML: {error}") from None
    data = {key.replace("-", "_"): value for key, value in data.items()}
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise CnnlabError(f"{path} has unknown settings {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return data
