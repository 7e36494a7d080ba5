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


SCHEDULES = ("constant", "step", "multistep", "cosine", "onecycle", "plateau")
OPTIMIZERS = ("sgd", "adam", "adamw")
RECIPES = ("fast",)
TRANSFER_MODES = ("linear-probe", "finetune", "progressive")


def setting(default: Any = None, help: str = "", **flag: Any) -> Any:
    """A TrainConfig field and its command-line flag: the help text lives here, once, and
    cli/train.py builds `cnnlab train`'s and `cnnlab transfer`'s flags from these fields.
    `flag` may give `choices`, `parse` (text to value), `flag` (another name), `group`
    ("transfer": only `cnnlab transfer` has it; "data-parallel": shown under torchrun's heading)
    or `cli=False` (no flag of its own)."""
    return field(default=default, metadata={"help": help, **flag})


def fractions(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(","))


@dataclass(frozen=True)
class TrainConfig:
    """What the user asked for (None: the recipe's, the family's or the transfer mode's default).
    Frozen: train/settings.py resolves the defaults into a new one, once, and nothing changes it later."""

    model: str = field(metadata={"cli": False})
    data: str = setting("mnist-embedded", "data set (default mnist-embedded): fashion-mnist[:DIR], mnist:DIR, "
                                          "cifar10:DIR, folder:DIR, ...")
    out: str | None = setting(None, "run folder (default runs/MODEL)")
    epochs: int | None = setting(None, "passes over the training split (default: the recipe's)")
    batch_size: int | None = setting(None, "images per step (per process under torchrun)")
    lr: float | None = setting(None, "peak learning rate")
    optimizer: str | None = setting(None, "the optimizer", choices=OPTIMIZERS)
    momentum: float | None = setting(None, "SGD momentum")
    nesterov: bool | None = setting(None, "Nesterov momentum (default: the recipe's)")
    weight_decay: float | None = setting(None, "L2 weight decay")
    no_decay_norm_bias: bool = setting(False, "no weight decay on BatchNorm and bias parameters")
    schedule: str | None = setting(None, "the learning-rate schedule", choices=SCHEDULES)
    milestones: tuple[float, ...] | None = setting(None, "multistep points as fractions of the run, e.g. 0.5,0.75",
                                                   parse=fractions)
    gamma: float | None = setting(None, "learning-rate factor at each step (default 0.1, or the family's: WRN's 0.2)")
    warmup_epochs: float = setting(0.0, "epochs of linear warm-up from a small lr")
    label_smoothing: float = setting(0.0, "label smoothing of the cross-entropy targets")
    dropout: float | None = setting(None, "the model's dropout probability (models that have one)")
    augment: str | None = setting(None, "none, digits, cifar, imagenet, or a list: crop=4,flip,rrc,jitter=0.4,erase=0.25")
    clip_grad: float | None = setting(None, "clip the gradient norm to this value")
    amp: str = setting("auto", "precision: auto (default: bf16 autocast where the CPU or GPU has native bf16, else "
                               "float32), none (float32), bf16, fp16 (GPU); weights and checkpoints stay float32",
                       choices=AMP_CHOICES)
    channels_last: bool | None = setting(None, "channels_last memory layout (default: on for the families it speeds up, "
                                               "see BENCHMARKS.md)")
    compile: bool = setting(False, "torch.compile the model")
    recipe: str | None = setting(None, "fast: the schedule, epochs, batch, label smoothing, augmentation and test-time "
                                       "flip that reached a target accuracy soonest on 28x28/32x32 sets; flags override "
                                       "its choices", choices=RECIPES)
    test_flip: bool = setting(False, "evaluate each image and its mirror image, averaging the logits (not for digits)")
    seed: int = setting(0, "random seed")
    device: str = setting("auto", "auto (default), cpu or cuda")
    val_fraction: float = setting(0.1, "share of the training split held out for validation (default 0.1; with "
                                       "--subset N, of N)")
    val_size: int | None = setting(None, "at most this many validation images")
    test_fraction: float = setting(0.0, "for data without a published test split (the embedded digits, a folder "
                                        "without test/): share of each class held out as the test split before "
                                        "validation is cut, the same images whatever the seed (default 0: none)")
    subset: int | None = setting(None, "train on only this many training images (the first of the shuffled split)")
    watch_test: bool = setting(False, "also evaluate the test split after every epoch (time-to-accuracy; never picks "
                                      "the best epoch)")
    input_size: int | None = setting(None, "resize images to this side (default: the model's)")
    model_kwargs: dict[str, Any] = field(default_factory=dict, metadata={"cli": False})  # --set KEY=VALUE
    init: str | None = setting(None, "start from these weights: a run folder or checkpoint (its preprocessing is "
                                     "reused), a .safetensors, a torchvision/timm .pth state_dict (matched by name; a "
                                     "report says what fitted), or 'torchvision' / 'timm': the twin model's ImageNet "
                                     "weights from that library's local cache", required_by="transfer")
    transfer: str | None = setting(None, "how to transfer (train/transfer.py)", choices=TRANSFER_MODES, flag="--mode",
                                   group="transfer", required=True)
    head_epochs: int = setting(2, "finetune/progressive: epochs of the head alone first (default 2)", group="transfer")
    finetune_lr_scale: float = setting(0.1, "finetune/progressive: the later phase's lr as a share of --lr (default 0.1)",
                                       group="transfer")
    lr_decay: float = setting(0.5, "progressive: lr factor per stage toward the input (default 0.5)", group="transfer")
    freeze_stages: int = setting(0, "progressive: keep the lowest N stages frozen (default 0)", group="transfer")
    feature_cache: bool = setting(True, "run the frozen backbone every epoch (slower; lets augmentation apply to the "
                                        "head's training)", group="transfer")
    sync_bn: bool = setting(False, "BatchNorm statistics over the global batch", group="data-parallel")
    accumulate: int = setting(1, "micro-batches per optimizer step (all-reduce on the last only)", group="data-parallel")
    scale_lr: bool = setting(False, "linear scaling rule: lr x processes x accumulate, with warm-up (Goyal et al. 2017)",
                             group="data-parallel")
    resume: bool = setting(False, "continue the run in --out from its last checkpoint")
    overwrite: bool = setting(False, "replace the run in --out")
    tensorboard: bool = setting(False, "also write TensorBoard event files")

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
# Families whose CIFAR-style nets end in global pooling and take the data's own side (28x28) as it is.
USER_FAMILY = "user"  # a module of the user's own (cnnlab.fit(MyNet(), ...)): the generic defaults
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
    # each model's paper's settings, beside its registry entry; a module of the user's own has none
    paper = {} if family == USER_FAMILY else get_entry(config.model).recipe
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
