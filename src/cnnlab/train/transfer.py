"""Transfer a trained network to new data, as seed 003 closes: keep what the lower layers learned,
train a new head, and adapt the rest with care.

    linear-probe   the backbone frozen, in eval mode (BatchNorm statistics frozen too); a new head
                   trains on the backbone's features, computed once and cached, so an epoch is a
                   few matrix multiplies instead of a backbone pass
    finetune       the head first (--head-epochs, on cached features), then every layer at the
                   smaller rate --lr x --finetune-lr-scale
    progressive    the head first, then per-stage rates that shrink toward the input (x --lr-decay
                   per stage below the top) with the lowest --freeze-stages stages frozen

Stages are the model's `feature_info` entries: stage 0 is the stem and the first feature stage,
the top stage everything after the last one (pooling, fully-connected layers, the classifier).
`fit` runs the phases planned here (train/run.py, train/loop.py).
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Callable, ContextManager

import torch
from torch import nn

from cnnlab.data.loader import ShardedBatches
from cnnlab.errors import CnnlabError
from cnnlab.train.config import TrainConfig
from cnnlab.train.distributed import World
from cnnlab.train.phases import Phase

MODES = ("linear-probe", "finetune", "progressive")
# Transfer needs far fewer epochs than training from scratch; these replace the paper's 90-160.
TRANSFER_DEFAULTS = dict(epochs=10, schedule="cosine")


def fill_defaults(config: TrainConfig) -> tuple[TrainConfig, dict]:
    """Check the transfer settings; a copy of `config` with the transfer defaults filled, and what was filled."""
    if config.transfer not in MODES:
        raise CnnlabError(f"unknown transfer mode {config.transfer!r}; choose one of {', '.join(MODES)}")
    if not config.init:
        raise CnnlabError("transfer starts from trained weights: give --init RUN_DIR|CHECKPOINT|FILE.safetensors|FILE.pth")
    if config.head_epochs < 0:
        raise CnnlabError(f"--head-epochs must be 0 or more, got {config.head_epochs}")
    if not 0 < config.lr_decay <= 1:
        raise CnnlabError(f"--lr-decay is the factor per stage toward the input, in (0, 1]; got {config.lr_decay}")
    if not 0 < config.finetune_lr_scale <= 1:
        raise CnnlabError(f"--finetune-lr-scale must be in (0, 1], got {config.finetune_lr_scale}")
    if config.freeze_stages < 0:
        raise CnnlabError(f"--freeze-stages must be 0 or more, got {config.freeze_stages}")
    filled = {name: value for name, value in TRANSFER_DEFAULTS.items() if getattr(config, name) is None}
    return replace(config, **filled), filled


def pretrained_preprocessing(init: str | None, channels: int) -> dict | None:
    """Input size and normalization of the run `init` came from (a cnnlab checkpoint), so the new
    data is fed as the backbone was trained; None for bare weight files."""
    if init is None or not (Path(init).is_dir() or Path(init).suffix == ".json"):
        return None
    from cnnlab.checkpoint import read_meta, resolve

    meta = read_meta(resolve(init))
    if meta.in_chans != channels or meta.mean is None:
        return None
    return {"size": meta.side, "mean": meta.mean, "std": meta.std}


def parameter_stages(model: nn.Module) -> tuple[dict[str, int], dict[str, int], list[str]]:
    """The stage of every parameter and of every module (by name), and the stage boundaries
    (feature_info modules). named_modules lists a module before its children, so a boundary
    ends at its last descendant."""
    boundaries = [info["module"] for info in getattr(model, "feature_info", [])]
    if not boundaries:
        raise CnnlabError(f"{getattr(model, 'model_name', type(model).__name__)} declares no stages (feature_info), "
                          "so it cannot be split for progressive rates; use --mode finetune")
    names = [name for name, _ in model.named_modules()]
    ends = [max(i for i, name in enumerate(names) if name == b or name.startswith(b + ".")) for b in boundaries]
    module_stage = {name: sum(i > end for end in ends) for i, name in enumerate(names)}
    parameter_stage = {}
    for module_name, module in model.named_modules():
        for name, _ in module.named_parameters(recurse=False):
            parameter_stage[f"{module_name}.{name}".lstrip(".")] = module_stage[module_name]
    return parameter_stage, module_stage, boundaries


def epochs_text(count: int) -> str:
    return f"{count} epoch" + ("" if count == 1 else "s")


def plan(model: nn.Module, config: TrainConfig, log: Callable[[str], None], augmenting: bool) -> list[Phase]:
    """The phases of `config.transfer` for `model` (whose new head is `get_classifier()`)."""
    classifier = model.get_classifier()
    head = {name for name, p in model.named_parameters() if any(p is q for q in classifier.parameters())}
    leaves = [m for m in model.modules() if not any(True for _ in m.children())]
    backbone = tuple(m for m in leaves if m is not classifier)
    cached = config.feature_cache
    head_phase = lambda name, epochs: Phase(name, epochs, lambda p: 1.0 if p in head else None, backbone, cached)  # noqa: E731
    where = "on cached features" if cached else "running the frozen backbone every epoch"
    if config.transfer == "linear-probe":
        log(f"linear-probe: backbone frozen in eval mode, the new head trains for {epochs_text(config.epochs)} at lr {config.lr:g} {where}"
            + ("; cached features are not augmented (--no-feature-cache runs the backbone each epoch, with augmentation)"
               if cached and augmenting else ""))
        return [head_phase("linear-probe", config.epochs)]
    phases = [head_phase("head", config.head_epochs)] if config.head_epochs else []
    lr = config.lr * config.finetune_lr_scale
    if config.transfer == "finetune":
        log(f"finetune: the head alone for {epochs_text(config.head_epochs)} at lr {config.lr:g} {where}, then every layer for "
            f"{epochs_text(config.epochs)} at lr {lr:g} (--lr x --finetune-lr-scale {config.finetune_lr_scale:g})")
        return phases + [Phase("finetune", config.epochs, lr=lr)]
    stage_of, module_stage, boundaries = parameter_stages(model)
    top = len(boundaries)
    if config.freeze_stages > top:
        raise CnnlabError(f"--freeze-stages {config.freeze_stages}: {config.model} has {top + 1} stages and the top one "
                          f"(the head side) always trains; freeze at most {top}")

    def scale(name: str) -> float | None:
        stage = stage_of[name]
        return None if stage < config.freeze_stages else config.lr_decay ** (top - stage)

    frozen = tuple(m for name, m in model.named_modules()
                   if module_stage[name] < config.freeze_stages and not any(True for _ in m.children()))
    first = ["stem"] + [f"after {b}" for b in boundaries[:-1]]
    rates = [f"stage {s} ({first[s]} .. {boundaries[s]}): " + ("frozen" if s < config.freeze_stages else f"lr {lr * config.lr_decay ** (top - s):.3g}")
             for s in range(top)]
    rates.append(f"stage {top} (after {boundaries[-1]}, the head side): lr {lr:g}")
    log(f"progressive: the head alone for {epochs_text(config.head_epochs)} at lr {config.lr:g} {where}, then {epochs_text(config.epochs)} "
        f"with rates x{config.lr_decay:g} per stage toward the input; " + "; ".join(rates))
    return phases + [Phase("progressive", config.epochs, scale, frozen, lr=lr)]


class FeatureBatches(ShardedBatches):
    """Minibatches of cached (features, labels), ordered and sharded exactly as the image batches
    they were computed from would be (data.loader.ShardedBatches)."""

    def __init__(self, features: torch.Tensor, labels: torch.Tensor, batch_size: int, shuffle: bool, seed: int,
                 drop_last: bool, rank: int = 0, world_size: int = 1) -> None:
        super().__init__(features.shape[0], batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last, rank=rank,
                         world_size=world_size, device=features.device)
        self.features, self.labels = features, labels

    def __iter__(self):
        for index in self.steps(self.order().to(self.device)):
            yield self.features[index], self.labels[index]


class HeadOnMaps(nn.Module):
    """The model's own head (pooling, dropout, classifier) over cached feature maps, for models
    whose classifier is a convolution that runs before the pooling (SqueezeNet, NiN): pooled
    vectors cannot feed it, so the cache holds `forward_features` and this runs `forward_head`."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        return self.model.forward_head(maps)


def head_module(model: nn.Module) -> nn.Module:
    """What trains on the cache: the classifier itself when it is a Linear layer fed by pooled
    features (`pre_logits`), else the model's whole head over feature maps."""
    classifier = model.get_classifier()
    return classifier if isinstance(classifier, nn.Linear) else HeadOnMaps(model)


@torch.no_grad()
def backbone_features(model: nn.Module, batches, world: World | None = None,
                      autocast: Callable[[], ContextManager] = nullcontext) -> tuple[torch.Tensor, torch.Tensor]:
    """What `head_module(model)` takes, for every image of `batches` in index order, with the
    whole model in eval mode: `forward_head(forward_features(x), pre_logits=True)` (the input of
    a Linear classifier), or the feature maps for convolutional classifiers. Under data-parallel
    training each rank computes its shard and all ranks receive all features. `autocast` is the
    run's precision; the cached features are stored in float32."""
    model.eval()
    pooled = isinstance(model.get_classifier(), nn.Linear)
    features, labels = [], []
    for x, y in batches:
        with autocast():
            maps = model.forward_features(x)
            features.append((model.forward_head(maps, pre_logits=True) if pooled else maps).float())
        labels.append(y)
    features, labels = torch.cat(features), torch.cat(labels)
    if world is not None and world.distributed:
        from cnnlab.train.distributed import gather
        from cnnlab.train.metrics import first_occurrences

        index = gather(batches.order()[: len(labels)].to(labels.device), world)
        features, labels = gather(features, world), gather(labels, world)
        keep = first_occurrences(index)  # the padding dropped, each image once, sorted by index
        features, labels = features[keep], labels[keep]
    return features, labels


def cache_features(model: nn.Module, train_batches, val_batches, batch_size: int, seed: int, world: World,
                   autocast: Callable[[], ContextManager] = nullcontext):
    """(train FeatureBatches, val FeatureBatches, seconds) from unaugmented, unshuffled image batches."""
    started = time.perf_counter()
    shard = dict(rank=world.rank, world_size=world.size)
    features, labels = backbone_features(model, train_batches, world, autocast)
    train = FeatureBatches(features, labels, batch_size, shuffle=True, seed=seed,
                           drop_last=len(labels) > batch_size * world.size, **shard)
    val = FeatureBatches(*backbone_features(model, val_batches, world, autocast), 512, shuffle=False, seed=seed, drop_last=False, **shard)
    return train, val, time.perf_counter() - started
