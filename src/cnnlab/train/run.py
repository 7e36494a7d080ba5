"""`fit`: train a zoo model on a named data set with the seeds' practices, and write a run folder.

    RUN/metrics.jsonl, metrics.csv   one line per epoch (loss, top-1, top-5, lr, images/s)
    RUN/best.*, RUN/last.*           checkpoints (see cnnlab/checkpoint.py)
    RUN/config.json                  the settings, defaults filled in
    RUN/test.json                    the best epoch's figures on the test split

A run, top to bottom (`_train`): prepare the folder, load the data, resolve the settings once
(train/settings.py), build the model, plan the phases (one, or transfer's), start or resume,
run each phase's epochs (train/loop.py), test the best epoch. Its pictures (curves.png) are
drawn from metrics.jsonl by whoever composes training with viz/: the CLI and `cnnlab.fit`.

`fit` trains a zoo model by name, or a model object handed to it (`module=`), in place: a zoo
model (built by create_model: its checkpoints rebuild it by name and options) or a module of the
user's own (the generic defaults, the data's own image size; its checkpoints name its class, and
reloading them needs the module: cnnlab.load_run(path, model=MyNet())).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from cnnlab.data import make_batches
from cnnlab.errors import CnnlabError
from cnnlab.models import create_model, get_entry
from cnnlab.models.registry import ModelEntry
from cnnlab.models.from_checkpoint import load_model
from cnnlab.train import distributed
from cnnlab.checkpoint import (
    LOCK_NAME, RunFolderLock, RunMeta, atomic_write_text, checkpoint_exists, load_training_state, load_weights, read_meta,
    settle,
)
from cnnlab.train.config import USER_FAMILY, TrainConfig
from cnnlab.train.data import RunData, load_data
from cnnlab.train.distributed import World
from cnnlab.train.loop import Loop
from cnnlab.train.phases import Phase
from cnnlab.train.records import tensorboard, write_metrics
from cnnlab.train.settings import Settings, describe, resolve, run_folder


@dataclass
class RunResult:
    out: Path
    history: list[dict[str, Any]]
    best: dict[str, Any]
    test: dict[str, Any] | None
    seconds: float


def fit(config: TrainConfig, log: Callable[[str], None] = print, progress=False, module: nn.Module | None = None,
        after_epoch: Callable[[list[dict]], None] | None = None) -> RunResult:
    """Train `config.model` (or `module`, in place) on `config.data` and write the run folder; see
    the module docstring. With `config.transfer` set, the run starts from `config.init` with a new
    head and follows the transfer mode's phases. `progress`: rich's bar on a terminal (True), or a
    factory of bars (a notebook's); `after_epoch(history)` is told each epoch's metrics."""
    started = time.perf_counter()
    entry = None if module is not None and not is_zoo_model(module) else get_entry(config.model)  # unknown: refused
    if module is not None and config.transfer and entry is None:
        raise CnnlabError("transfer replaces a zoo model's head (reset_classifier); for a module of your own, give it "
                          "the new head yourself and fit it")
    world = distributed.setup(config.device)
    finished, lock = False, None
    try:
        if world.is_main:  # one writer per run folder; under torchrun rank 0 writes for the job
            lock = RunFolderLock(run_folder(config))
        result = _train(config, entry, world, log if world.is_main else _quiet, progress if world.is_main else False,
                        started, module, after_epoch)
        finished = True
        return result
    finally:
        if lock is not None:
            lock.release()
        distributed.teardown(world, finished)


def is_zoo_model(module: nn.Module) -> bool:
    """Built by create_model (its checkpoints rebuild it by name), not a module of the user's own."""
    return bool(getattr(module, "model_name", "")) and hasattr(module, "model_kwargs")


def _quiet(_line: str) -> None:
    pass


def _train(config: TrainConfig, entry: ModelEntry | None, world: World, log, progress, started: float,
           module: nn.Module | None = None, after_epoch=None) -> RunResult:
    resuming = prepare_run_folder(run_folder(config), config.resume, config.overwrite)  # 1. the folder
    world.barrier()
    if resuming:  # a save that a crash interrupted is completed or discarded before any rank reads
        if world.is_main:
            for name in ("best", "last"):
                if (what := settle(run_folder(config), name)) is not None:
                    log(f"resume: {what}")
        world.barrier()
    torch.manual_seed(config.seed)
    data = load_data(config)  # 2. the images
    family = entry.family if entry else USER_FAMILY
    default_side = (module.default_input_size[-1] if module is not None and hasattr(module, "default_input_size")
                    else entry.input_size[-1] if entry else data.stored_side)
    settings = resolve(config, family, default_side, world, data, resuming)  # 3. every setting, once
    if module is not None:
        check_given_model(module, settings, data)
    check_memory(settings, data, world, module)  # a model or batch that cannot fit, refused before either exists
    model = build_model(settings, data, world, log, module)  # 4. the model
    phases = plan_phases(model, settings, log)  # 5. what trains when
    meta = run_meta(settings, data, phases, module)
    history, best, start_epoch, saved_state = start(settings, model, meta, world)  # 6. fresh, or where it stopped
    total_epochs = sum(phase.epochs for phase in phases)
    log(f"{config.model} on {data.source.name}: {data.describe()}, {data.channels}x{settings.size}x{settings.size}, "
        f"{data.num_classes} classes, {sum(p.numel() for p in model.parameters()):,} parameters, on {world.device}")
    for line in describe(settings, total_epochs, world):
        log(line)
    test_batches = batches(settings, data.test, world) if data.test is not None else None
    loop = Loop(settings, model, world, meta, history, best, log, progress, total_epochs,
                tensorboard(settings.out) if settings.config.tensorboard and world.is_main else None,
                test_batches if settings.config.watch_test else None, after_epoch)
    begin = 0
    for index, phase in enumerate(phases):  # 7. each phase's epochs
        if start_epoch < begin + phase.epochs:
            continuing = saved_state if saved_state and saved_state.get("phase", 0) == index and start_epoch > begin else None
            loop.phase(index, phase, range(max(start_epoch, begin), begin + phase.epochs),
                       training_batches(settings, data, phase, world), batches(settings, data.val, world), continuing)
        begin += phase.epochs
    test_metrics = test_best(loop, settings, data, test_batches, world, log, module)  # 8. the best epoch on the test split
    if loop.writer is not None:
        loop.writer.close()
    return RunResult(settings.out, loop.history, loop.best, test_metrics, time.perf_counter() - started)


def prepare_run_folder(out: Path, resume: bool, overwrite: bool) -> bool:
    """Check the run folder and create it; returns whether there is a run to resume."""
    if out.exists() and not out.is_dir():
        raise CnnlabError(f"{out} is a file; give a folder for the run")
    if out.exists() and any(p.name != LOCK_NAME for p in out.iterdir()) and not (resume or overwrite):
        raise CnnlabError(f"{out} already holds a run; continue it with --resume, replace it with --overwrite, "
                          "or choose another --out")
    if resume and not checkpoint_exists(out, "last"):
        if not distributed.launched_by_torchrun():
            raise CnnlabError(f"--resume: {out} has no last.json checkpoint to continue from (no epoch was saved "
                              "whole); start the run again with --overwrite")
        resume = False  # torchrun --max-restarts with --resume: no checkpoint yet, so this attempt starts fresh
    out.mkdir(parents=True, exist_ok=True)  # every rank checks before any writes (fit's barrier)
    return resume


def check_memory(settings: Settings, data: RunData, world: World, module: nn.Module | None = None) -> None:
    """A model or batch this device cannot train is refused in one line before its weights or its
    first step allocate: the check runs on the model built on the meta device (shapes only)."""
    from cnnlab.analysis.memory import ensure_step_fits
    from cnnlab.meta import meta_copy

    config = settings.config
    if module is not None:
        model = meta_copy(module)
    else:
        with torch.device("meta"):
            model = zoo_model(settings, data)
    optimizer = "adam" if config.optimizer in ("adam", "adamw") else "momentum" if config.momentum else "sgd"
    ensure_step_fits(model, (data.channels, settings.size, settings.size), config.batch_size, optimizer,
                     settings.precision.amp or "none", bool(config.channels_last), str(world.device),
                     processes=int(os.environ.get("LOCAL_WORLD_SIZE", world.size)))


def check_given_model(module: nn.Module, settings: Settings, data: RunData) -> None:
    """A model object handed to fit takes the data's images and ends in one output per class, or is
    refused in one line that says how to make it fit (checked on a meta copy: shapes only)."""
    from cnnlab.meta import meta_copy

    name = settings.config.model
    size = f"{data.channels}x{settings.size}x{settings.size}"
    try:
        with torch.no_grad():
            output = meta_copy(module, shapes_only_batchnorm=True).eval()(
                torch.empty(2, data.channels, settings.size, settings.size, device="meta"))
    except Exception as error:  # noqa: BLE001 - the module's own error, said in one line
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CnnlabError(f"{name} cannot take {data.source.name}'s {size} images ({data.channels} channel(s)): "
                          f"{first}; build it for {data.channels} input channel(s) (create_model(..., in_chans="
                          f"{data.channels})) or give input_size=") from None
    logits = output[0] if isinstance(output, (tuple, list)) else output
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[1] != data.num_classes:
        got = "x".join(map(str, logits.shape[1:])) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise CnnlabError(f"{name} ends in {got} outputs per image, but {data.source.name} has {data.num_classes} "
                          f"classes: build it with {data.num_classes} outputs (create_model(..., num_classes="
                          f"{data.num_classes}), or model.reset_classifier({data.num_classes}) for a zoo model)")


def zoo_model(settings: Settings, data: RunData) -> nn.Module:
    """The run's zoo model, freshly initialized, for the data's channels and classes at its input size."""
    return create_model(settings.config.model, num_classes=data.num_classes, in_chans=data.channels,
                        input_size=(data.channels, settings.size, settings.size), **model_options(settings.config))


def build_model(settings: Settings, data: RunData, world: World, log, module: nn.Module | None = None) -> nn.Module:
    """The model for the data's channels and classes at the run's input size: initialized from
    --init (with a new head for transfer), on the device, in its layout, BatchNorm synced if asked.
    A model object handed to fit is the one trained."""
    config = settings.config
    model = zoo_model(settings, data) if module is None else module
    if config.init and not config.resume:
        from cnnlab.weights import initialize_from

        log(initialize_from(model, config.init).summary())
        if config.transfer:
            model.reset_classifier(data.num_classes)
            log(f"new head: {type(model.get_classifier()).__name__} to {data.num_classes} classes"
                + (f"; preprocessing of the pretrained run: {settings.size}x{settings.size}, mean {list(settings.mean)}, "
                   f"std {list(settings.std)}" if settings.pretrained else ""))
    model.to(world.device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if config.sync_bn:
        if not world.distributed:
            log("--sync-bn: one process, so BatchNorm already sees the whole batch; nothing converted")
        else:
            model, converted = distributed.convert_sync_batchnorm(model, world)
            log(f"--sync-bn: {converted} BatchNorm layers compute their statistics over the global batch "
                + ("(torch SyncBatchNorm)" if world.device.type == "cuda" else "(GlobalBatchNorm over gloo)"))
    return model


def model_options(config: TrainConfig) -> dict[str, Any]:
    """The builder's options: --model-kwargs, and --dropout where given."""
    options = dict(config.model_kwargs)
    if config.dropout is not None:
        options["dropout"] = config.dropout
    return options


def plan_phases(model: nn.Module, settings: Settings, log) -> list[Phase]:
    """One phase of every layer for a plain run; the transfer mode's phases (train/transfer.py)."""
    if not settings.config.transfer:
        return [Phase("train", settings.config.epochs)]
    from cnnlab.train.transfer import plan

    return plan(model, settings.config, log, settings.augment.active)


def run_meta(settings: Settings, data: RunData, phases: list[Phase], module: nn.Module | None = None) -> RunMeta:
    """What every checkpoint records about the run, so that a checkpoint alone rebuilds the model
    and its preprocessing (a module of the user's own: its class, and the module is needed)."""
    config = settings.config
    options = model_options(config) if module is None else dict(getattr(module, "model_kwargs", {}))
    own = None if module is None or is_zoo_model(module) else f"{type(module).__module__}.{type(module).__qualname__}"
    transfer = {"mode": config.transfer, "init": str(config.init), "phases": [[p.name, p.epochs] for p in phases]} \
        if config.transfer else None
    return RunMeta(model=config.model, model_kwargs=options, module=own, num_classes=data.num_classes,
                   in_chans=data.channels, data=config.data, class_names=tuple(data.source.class_names),
                   input_size=(data.channels, settings.size, settings.size),
                   stored_size=(data.channels, data.stored_side, data.stored_side), mean=settings.mean, std=settings.std,
                   seed=config.seed, val_fraction=config.val_fraction, val_images=len(data.val),
                   test_fraction=config.test_fraction, precision=settings.precision.name, test_flip=config.test_flip, transfer=transfer)


def start(settings: Settings, model: nn.Module, meta: RunMeta, world: World) -> tuple[list, dict, int, dict | None]:
    """(history, best, first epoch, training state): empty for a new run, whose settings go to
    config.json; the last checkpoint's for --resume."""
    if settings.config.resume:
        start_epoch, history, best, state = resume(settings.out, model, meta)
        if world.is_main:
            write_metrics(settings.out, history)  # drop any line written after this checkpoint
        return history, best, start_epoch, state
    if world.is_main:
        atomic_write_text(settings.out / "config.json", json.dumps(
            {**settings.config.to_dict(), "precision": settings.precision.name, "filled_defaults": settings.filled},
            indent=2, default=str))
    return [], {"val_top1": -1.0}, 0, None


def resume(out: Path, model, meta: RunMeta) -> tuple[int, list, dict, dict]:
    """Weights and RNG from the run's last checkpoint; returns (epoch, history, best, training state)."""
    json_path = out / "last.json"
    saved = read_meta(json_path)
    for key in ("model", "num_classes", "in_chans", "data", "transfer"):
        if getattr(saved, key) != getattr(meta, key):
            raise CnnlabError(f"--resume: {json_path} was trained with {key} {getattr(saved, key)!r}, but this run has "
                              f"{getattr(meta, key)!r}; resume with the same settings or start a new --out")
    model.load_state_dict(load_weights(json_path))
    state = load_training_state(json_path)
    torch.set_rng_state(state["torch_rng"])
    if state.get("cuda_rng"):
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return int(state["epoch"]), json.loads(state["history"]), state["best"], state


def batches(settings: Settings, images, world: World):
    """Evaluation batches of `images` (this rank's shard), unshuffled and unaugmented."""
    return make_batches(images, 512, size=settings.size, normalization=settings.normalization, device=world.device,
                        rank=world.rank, world_size=world.size)


def training_batches(settings: Settings, data: RunData, phase: Phase, world: World):
    """The phase's training batches: shuffled and augmented, or for a phase on cached features one
    unaugmented pass in order (the cache's input)."""
    config = settings.config
    per_step = not phase.cached_features
    return make_batches(data.train, config.batch_size if per_step else 512, size=settings.size,
                        normalization=settings.normalization, augment=settings.augment if per_step else None,
                        shuffle=per_step, seed=config.seed, device=world.device,
                        drop_last=per_step and len(data.train) > config.batch_size * world.size, rank=world.rank,
                        world_size=world.size)


def test_best(loop: Loop, settings: Settings, data: RunData, test_batches, world: World, log,
              module: nn.Module | None = None) -> dict | None:
    """The best epoch's checkpoint on the test split (RUN/test.json), or None without one."""
    world.barrier()  # rank 0 has written best.json
    if test_batches is None:
        return None
    import copy

    best_model, _ = load_model(settings.out / "best.json", world.device,
                               module=copy.deepcopy(module) if module is not None else None)
    if settings.config.channels_last:
        best_model = best_model.to(memory_format=torch.channels_last)
    metrics = loop.evaluate(best_model, test_batches)
    if world.is_main:
        atomic_write_text(settings.out / "test.json", json.dumps(metrics, indent=2))
    log(f"test ({len(data.test):,} images, best epoch {loop.best['epoch']}): loss {metrics['loss']:.4f}, "
        f"top-1 {metrics['top1']:.2%}, top-5 {metrics['top5']:.2%}")
    return metrics
