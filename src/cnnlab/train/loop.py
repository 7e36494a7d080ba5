"""`fit`: train a zoo model on a named data set with the seeds' practices, and write a run folder.

    RUN/metrics.jsonl, metrics.csv   one line per epoch (loss, top-1, top-5, lr, images/s)
    RUN/best.*, RUN/last.*           checkpoints (see train/checkpoint.py)
    RUN/config.json                  the settings, defaults filled in
    RUN/curves.png                   loss and top-1/top-5 for train and val
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.data import Normalization, image_stats, load_source, make_batches, parse_augment, stratified_split
from cnnlab.errors import CnnlabError
from cnnlab.models import create_model, get_entry
from cnnlab.train.checkpoint import (
    LOCK_NAME, RunFolderLock, atomic_write_text, load_model, load_training_state, load_weights, read_meta, save_checkpoint,
)
from cnnlab.train import distributed
from cnnlab.train.config import ANY_INPUT_SIZE, TrainConfig, with_family_defaults
from cnnlab.train.distributed import World
from cnnlab.train.metrics import evaluate_batches
from cnnlab.train.phases import Phase
from cnnlab.train.precision import resolve as resolve_precision


class TrainingDiverged(CnnlabError):
    """The loss became NaN or infinite."""


@dataclass
class RunResult:
    out: Path
    history: list[dict[str, Any]]
    best: dict[str, Any]
    test: dict[str, Any] | None
    seconds: float


def parameter_groups(model: nn.Module, weight_decay: float, no_decay_norm_bias: bool, base_lr: float,
                     lr_scale: Callable[[str], float | None] | None = None) -> list[dict]:
    """Optimizer groups over the trainable parameters: weight decay on all, or (no_decay_norm_bias)
    not on BatchNorm and bias terms; `lr_scale(name)` gives each parameter's learning rate as a
    fraction of `base_lr` (None: the parameter is not trained)."""
    groups: dict[tuple[float, bool], list[nn.Parameter]] = {}
    for module_name, module in model.named_modules():
        is_norm = isinstance(module, (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm))
        for name, parameter in module.named_parameters(recurse=False):
            scale = lr_scale(f"{module_name}.{name}".lstrip(".")) if lr_scale else 1.0
            if not parameter.requires_grad or scale is None:
                continue
            decays = not (no_decay_norm_bias and (is_norm or name == "bias"))
            groups.setdefault((scale, decays), []).append(parameter)
    return [{"params": params, "lr": base_lr * scale, "weight_decay": weight_decay if decays else 0.0}
            for (scale, decays), params in sorted(groups.items(), key=lambda item: (-item[0][0], not item[0][1]))]


def make_optimizer(config: TrainConfig, groups: list[dict]) -> torch.optim.Optimizer:
    """The optimizer over `groups` (each with its own lr, as parameter_groups makes them)."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=bool(config.nesterov))
    if config.optimizer == "adam":
        # torch's Adam adds weight decay to the gradient (L2), as the seeds' "weight decay" means.
        return torch.optim.Adam(groups, lr=config.lr)
    return torch.optim.AdamW(groups, lr=config.lr)


def lr_multiplier(config: TrainConfig, steps_per_epoch: int, epochs: int | None = None) -> Callable[[int], float]:
    """The learning rate at each step, as a fraction of --lr: linear warm-up, then the schedule
    (over `epochs`, by default the run's)."""
    total = (epochs or config.epochs) * steps_per_epoch
    warmup = int(config.warmup_epochs * steps_per_epoch)

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        if config.schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
        if config.schedule == "onecycle":  # up over the first 30% (unless warm-up did it), then cosine down
            if not warmup and progress < 0.3:
                return 0.04 + 0.96 * progress / 0.3
            rest = (progress - (0 if warmup else 0.3)) / (1 if warmup else 0.7)
            return 0.5 * (1 + math.cos(math.pi * min(max(rest, 0.0), 1.0)))
        if config.schedule == "step":  # /10 every third of the run
            return config.gamma ** int(3 * min(progress, 0.999))
        if config.schedule == "multistep":
            return config.gamma ** sum(progress >= m for m in config.milestones)
        return 1.0  # constant, and plateau (driven per epoch by ReduceLROnPlateau)

    return schedule


def prepare_run_folder(out: Path, resume: bool, overwrite: bool) -> bool:
    """Check the run folder and create it; returns whether there is a run to resume."""
    if out.exists() and not out.is_dir():
        raise CnnlabError(f"{out} is a file; give a folder for the run")
    if out.exists() and any(p.name != LOCK_NAME for p in out.iterdir()) and not (resume or overwrite):
        raise CnnlabError(f"{out} already holds a run; continue it with --resume, replace it with --overwrite, "
                          "or choose another --out")
    if resume and not (out / "last.json").is_file():
        if not distributed.launched_by_torchrun():
            raise CnnlabError(f"--resume: {out} has no last.json checkpoint to continue from")
        resume = False  # torchrun --max-restarts with --resume: no checkpoint yet, so this attempt starts fresh
    out.mkdir(parents=True, exist_ok=True)  # every rank checks before any writes (fit's barrier)
    return resume


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


def validation_indices(held: torch.Tensor, fraction: float, subset: int | None, val_size: int | None) -> torch.Tensor:
    """The validation images among the held-out ones (already shuffled, classes interleaved): all of
    them, or with --subset N a share `fraction` of N, so that validation costs what a tenth of the
    training does and not a tenth of the full set; at most `val_size` in any case."""
    count = len(held)
    if subset:
        count = min(count, max(1, round(subset * fraction)))
    if val_size:
        count = min(count, val_size)
    return held[:count]


def load_splits(config: TrainConfig):
    """(train, val, test) ImageSets and the source."""
    source = load_source(config.data)
    if len(source.class_names) < 2:
        raise CnnlabError(f"{source.name} has {len(source.class_names)} class ({', '.join(source.class_names)}): a classifier "
                          "needs at least two; add the other classes' folders or select more classes")
    train_all = source.train
    kept, held = stratified_split(train_all.labels, config.val_fraction, seed=config.seed)
    train, val = train_all.subset(kept), train_all.subset(validation_indices(held, config.val_fraction, config.subset,
                                                                             config.val_size))
    if config.subset:
        if config.subset < len(source.class_names):
            raise CnnlabError(f"--subset {config.subset} is smaller than the number of classes")
        train = train.subset(torch.arange(min(config.subset, len(train))))
    return train, val, source.test, source


def fit(config: TrainConfig, log: Callable[[str], None] = print, progress: bool = False) -> RunResult:
    """Train `config.model` on `config.data` and write the run folder; see the module docstring.
    With `config.transfer` set, the run starts from `config.init` with a new head and follows the
    transfer mode's phases."""
    started = time.perf_counter()
    entry = get_entry(config.model)
    transfer = None
    if config.transfer:
        from cnnlab.train import transfer
    filled_transfer = transfer.fill_defaults(config) if transfer else {}
    config, filled = with_family_defaults(config, entry.family)
    filled = {**filled_transfer, **filled}
    if config.optimizer != "sgd":  # momentum and Nesterov are SGD's settings
        filled = {k: v for k, v in filled.items() if k not in ("momentum", "nesterov")}
    world = distributed.setup(config.device)
    finished, lock = False, None
    try:
        if world.is_main:  # one writer per run folder; under torchrun rank 0 writes for the job
            lock = RunFolderLock(Path(config.out or f"runs/{config.model}"))
        result = _fit(config, filled, entry, transfer, world, log if world.is_main else _quiet, progress and world.is_main, started)
        finished = True
        return result
    finally:
        if lock is not None:
            lock.release()
        distributed.teardown(world, finished)


def _quiet(_line: str) -> None:
    pass


def _fit(config, filled, entry, transfer, world, log, progress, started) -> RunResult:
    device = world.device
    base_lr = config.lr
    scaled = scaled_for(config, world)
    for name, value in scaled.items():
        setattr(config, name, value)
    out = Path(config.out or f"runs/{config.model}")
    config.resume = prepare_run_folder(out, config.resume, config.overwrite)
    world.barrier()
    torch.manual_seed(config.seed)

    train, val, test, source = load_splits(config)
    channels, height, _ = train.shape
    pretrained = transfer.pretrained_preprocessing(config.init, channels) if transfer else None
    if config.recipe and config.input_size is None and not pretrained and entry.family in ANY_INPUT_SIZE:
        config.input_size = height  # the fast recipe trains on the stored side (28x28: no resize to 32)
    size = config.input_size or (pretrained["size"] if pretrained else entry.input_size[-1])
    precision = resolve_precision(config.amp, device)
    mean, std = (pretrained["mean"], pretrained["std"]) if pretrained else image_stats(train)
    normalization = Normalization(mean, std)
    augment = parse_augment(config.augment, default="digits" if channels == 1 else "cifar")
    model_kwargs = dict(config.model_kwargs)
    if config.dropout is not None:
        model_kwargs["dropout"] = config.dropout
    num_classes = len(source.class_names)
    model = create_model(config.model, num_classes=num_classes, in_chans=channels, input_size=(channels, size, size),
                         **model_kwargs)
    if config.init and not config.resume:
        from cnnlab.deploy.weights import initialize_from

        log(initialize_from(model, config.init).summary())
        if transfer:
            model.reset_classifier(num_classes)
            log(f"new head: {type(model.get_classifier()).__name__} to {num_classes} classes"
                + (f"; preprocessing of the pretrained run: {size}x{size}, mean {mean}, std {std}" if pretrained else ""))
    model.to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if config.sync_bn:
        if not world.distributed:
            log("--sync-bn: one process, so BatchNorm already sees the whole batch; nothing converted")
        else:
            model, converted = distributed.convert_sync_batchnorm(model, world)
            log(f"--sync-bn: {converted} BatchNorm layers compute their statistics over the global batch "
                + ("(torch SyncBatchNorm)" if device.type == "cuda" else "(GlobalBatchNorm over gloo)"))
    phases = transfer.plan(model, config, log, augment.active) if transfer else [Phase("train", config.epochs)]

    meta = {
        "model": config.model, "model_kwargs": model_kwargs, "num_classes": num_classes, "in_chans": channels,
        "data": config.data, "class_names": list(source.class_names), "input_size": [channels, size, size],
        "stored_size": [channels, height, height], "normalization": {"mean": list(mean), "std": list(std)},
        "seed": config.seed, "val_fraction": config.val_fraction, "val_images": len(val),
        "precision": precision.name, "test_flip": config.test_flip,
    }
    if transfer:
        meta["transfer"] = {"mode": config.transfer, "init": str(config.init), "phases": [[p.name, p.epochs] for p in phases]}
    history: list[dict[str, Any]] = []
    start_epoch, best, saved_state = 0, {"val_top1": -1.0}, None
    if config.resume:
        start_epoch, history, best, saved_state = _resume(out, model, meta)
        if world.is_main:
            write_metrics(out, history)  # drop any line written after this checkpoint
    elif world.is_main:
        atomic_write_text(out / "config.json", json.dumps({**config.to_dict(), "precision": precision.name,
                                                          "filled_defaults": filled}, indent=2, default=str))

    total_epochs = sum(phase.epochs for phase in phases)
    log(f"{config.model} on {source.name}: {len(train):,} train / {len(val):,} val"
        + (f" / {len(test):,} test" if test is not None else "") + f" images, {channels}x{size}x{size}, "
        f"{num_classes} classes, {sum(p.numel() for p in model.parameters()):,} parameters, on {device}")
    log(f"settings: {config.optimizer} lr {config.lr:g}" + (f" momentum {config.momentum:g}" if config.optimizer == 'sgd' else "")
        + (" nesterov" if config.nesterov else "") + f", weight decay {config.weight_decay:g}"
        + (" (not on norm/bias)" if config.no_decay_norm_bias else "") + f", {config.schedule} schedule"
        + (f" ({config.warmup_epochs:g} warm-up epochs)" if config.warmup_epochs else "") + f", batch {config.batch_size}, "
        f"{total_epochs} epochs, augmentation: {augment.describe()}"
        + (f", label smoothing {config.label_smoothing:g}" if config.label_smoothing else "")
        + (", test-time flip" if config.test_flip else "") + (f"; recipe {config.recipe}" if config.recipe else "")
        + (f"; defaults used for {', '.join(filled)}" if filled else ""))
    log(f"compute: {precision.note}; {'channels_last' if config.channels_last else 'NCHW'} layout"
        + (", torch.compile" if config.compile else ""))
    if world.distributed or config.accumulate > 1:
        log(f"data-parallel: {world.size} processes ({'nccl' if device.type == 'cuda' else 'gloo'}), batch {config.batch_size} "
            f"per process x {world.size}" + (f" x {config.accumulate} accumulated" if config.accumulate > 1 else "")
            + f" = global batch {config.batch_size * world.size * config.accumulate:,}"
            + (f"; --scale-lr: lr {base_lr:g} x {world.size * config.accumulate} = {config.lr:g}"
               + (f" after {config.warmup_epochs:g} warm-up epochs" if config.warmup_epochs else "") if scaled else ""))

    test_batches = make_batches(test, 512, size=size, normalization=normalization, device=device, rank=world.rank,
                                world_size=world.size) if test is not None else None
    run = _Run(config, model, world, out, meta, history, best, log, progress, total_epochs,
               _tensorboard(out) if config.tensorboard and world.is_main else None, precision,
               test_batches if config.watch_test else None)
    shard = dict(rank=world.rank, world_size=world.size)
    begin = 0
    for index, phase in enumerate(phases):
        if start_epoch < begin + phase.epochs:
            continuing = saved_state if saved_state and saved_state.get("phase", 0) == index and start_epoch > begin else None
            images_per_step = not phase.cached_features  # else one unaugmented pass feeds the feature cache
            train_batches = make_batches(train, config.batch_size if images_per_step else 512, size=size,
                                         normalization=normalization, augment=augment if images_per_step else None,
                                         shuffle=images_per_step, seed=config.seed, device=device,
                                         drop_last=images_per_step and len(train) > config.batch_size * world.size, **shard)
            val_batches = make_batches(val, 512, size=size, normalization=normalization, device=device, **shard)
            run.phase(index, phase, range(max(start_epoch, begin), begin + phase.epochs), train_batches, val_batches, continuing)
        begin += phase.epochs

    test_metrics = None
    world.barrier()  # rank 0 has written best.json
    if test is not None:
        best_model, _ = load_model(out / "best.json", device)
        if config.channels_last:
            best_model = best_model.to(memory_format=torch.channels_last)
        test_metrics = run.evaluate(best_model, test_batches)
        if world.is_main:
            atomic_write_text(out / "test.json", json.dumps(test_metrics, indent=2))
        log(f"test ({len(test):,} images, best epoch {run.best['epoch']}): loss {test_metrics['loss']:.4f}, "
            f"top-1 {test_metrics['top1']:.2%}, top-5 {test_metrics['top5']:.2%}")
    if world.is_main:
        plot_curves(out, history)
    if run.writer is not None:
        run.writer.close()
    return RunResult(out, history, run.best, test_metrics, time.perf_counter() - started)


class _Run:
    """The state one run's phases share, and the epoch loop."""

    def __init__(self, config, model, world, out, meta, history, best, log, progress, total_epochs, writer, precision,
                 watched_test) -> None:
        device = world.device
        self.config, self.model, self.world, self.device, self.out, self.meta = config, model, world, device, out, meta
        self.history, self.best, self.log, self.progress = history, best, log, progress
        self.total_epochs, self.writer, self.precision, self.watched_test = total_epochs, writer, precision, watched_test
        self.autocast = precision.autocast(device)

    def evaluate(self, model: nn.Module, batches) -> dict:
        """Metrics over `batches` in the run's precision, with its test-time flip."""
        return evaluate_batches(model, batches, self.meta["num_classes"], world=self.world, autocast=self.autocast,
                                flip=self.config.test_flip)

    def phase(self, index: int, phase: Phase, epochs: range, train_batches, val_batches, continuing: dict | None) -> None:
        config, model, device, out, world = self.config, self.model, self.device, self.out, self.world
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(phase.lr_scale is None or phase.lr_scale(name) is not None)
        trained, evaluated = model, model
        if phase.cached_features:
            from cnnlab.train.transfer import cache_features, head_module

            train_batches, val_batches, seconds = cache_features(model, train_batches, val_batches, config.batch_size,
                                                                 config.seed, world, self.autocast)
            trained = evaluated = head_module(model)
            self.log(f"phase {phase.name}: the frozen backbone's features of {train_batches.count:,} + {val_batches.count:,} "
                     f"images computed once in {seconds:.1f} s ({'x'.join(map(str, train_batches.features.shape[1:]))} "
                     "per image)")
        wrapped = distributed.wrap(trained, world)  # DDP registers hooks for what trains in this phase
        forward = torch.compile(wrapped) if config.compile else wrapped
        accumulate = config.accumulate
        micro_steps = len(train_batches) // accumulate * accumulate  # a last partial group is left out
        if micro_steps == 0:
            raise CnnlabError(f"--accumulate {accumulate} needs at least {accumulate} batches per epoch; this rank has "
                              f"{len(train_batches)}: lower --accumulate or --batch-size")
        steps_per_epoch = micro_steps // accumulate
        optimizer = make_optimizer(config, parameter_groups(model, config.weight_decay, config.no_decay_norm_bias,
                                                            phase.lr or config.lr, phase.lr_scale))
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lr_multiplier(config, steps_per_epoch, phase.epochs))
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=config.gamma, patience=2) \
            if config.schedule == "plateau" else None
        scaler = torch.amp.GradScaler(device.type, enabled=self.precision.amp == "fp16")
        if continuing is not None:
            optimizer.load_state_dict(continuing["optimizer"])
            scheduler.load_state_dict(continuing["scheduler"])
            if plateau is not None and continuing.get("plateau"):
                plateau.load_state_dict(continuing["plateau"])
            scaler.load_state_dict(continuing["scaler"])
        for epoch in epochs:
            train_batches.set_epoch(epoch)
            model.train()
            for module in phase.frozen_modules:
                module.eval()
            epoch_start = time.perf_counter()
            loss_sum, correct, seen = torch.zeros((), device=device), torch.zeros((), device=device), 0
            bar = _progress(self.progress, epoch, self.total_epochs, micro_steps)
            optimizer.zero_grad(set_to_none=True)
            for micro, (x, y) in zip(range(micro_steps), train_batches):
                last_micro = (micro + 1) % accumulate == 0
                if config.channels_last and x.dim() == 4:
                    x = x.contiguous(memory_format=torch.channels_last)
                # The first K-1 micro-steps of a group keep their gradients local (no all-reduce).
                with wrapped.no_sync() if world.distributed and not last_micro else nullcontext():
                    with self.autocast():
                        output = forward(x)
                        logits = output[0] if isinstance(output, tuple) else output
                        loss = F.cross_entropy(logits, y, label_smoothing=config.label_smoothing)
                        if isinstance(output, tuple):  # auxiliary heads, weighted 0.3 as in GoogLeNet
                            loss = loss + 0.3 * sum(F.cross_entropy(aux, y, label_smoothing=config.label_smoothing)
                                                    for aux in output[1:])
                    if not torch.isfinite(loss):
                        raise TrainingDiverged(
                            f"the loss became {loss.item()} at epoch {epoch + 1}, step {micro // accumulate + 1}; the last "
                            f"good checkpoint is {out / 'last.json'}"
                            + (f" (epoch {epoch})" if epoch else " (none yet: it diverged in the first epoch)")
                            + f" and is untouched. Lower --lr (now {config.lr:g}), add --clip-grad 1.0, or add --warmup-epochs 1"
                        )
                    scaler.scale(loss / accumulate).backward()
                if last_micro:
                    if config.clip_grad:
                        scaler.unscale_(optimizer)
                        nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], config.clip_grad)
                    scaler.step(optimizer)
                    scaler.update()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                loss_sum += loss.detach() * len(y)
                correct += (logits.detach().argmax(1) == y).sum()
                seen += len(y)
                if bar is not None:
                    bar.update(micro + 1, loss=(loss_sum / seen).item(), accuracy=(correct / seen).item(), images=seen,
                               seconds=time.perf_counter() - epoch_start)
            if bar is not None:
                bar.close()
            train_seconds = time.perf_counter() - epoch_start
            if world.distributed:  # the training figures of all ranks
                totals = torch.stack([loss_sum.float(), correct.float(), torch.tensor(float(seen), device=device)])
                torch.distributed.all_reduce(totals)
                loss_sum, correct, seen = totals[0], totals[1], int(totals[2].item())
            val_metrics = self.evaluate(evaluated, val_batches)
            if plateau is not None:
                plateau.step(val_metrics["loss"])
            record = {
                "epoch": epoch + 1, "phase": phase.name, "train_loss": (loss_sum / seen).item(),
                "train_top1": (correct / seen).item(), "val_loss": val_metrics["loss"], "val_top1": val_metrics["top1"],
                "val_top5": val_metrics["top5"], "lr": optimizer.param_groups[0]["lr"],
                "images_per_second": seen / train_seconds, "seconds": train_seconds,
            }
            if self.watched_test is not None:  # --watch-test: never used to pick the best epoch
                record["test_top1"] = self.evaluate(model, self.watched_test)["top1"]
            self.history.append(record)
            is_best = record["val_top1"] > self.best["val_top1"]
            if is_best:
                self.best = dict(record)
            state = {
                "epoch": epoch + 1, "phase": index, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "plateau": plateau.state_dict() if plateau is not None else {}, "scaler": scaler.state_dict(),
                "torch_rng": torch.get_rng_state(), "cuda_rng": torch.cuda.get_rng_state_all() if device.type == "cuda" else [],
                "best": self.best, "history": json.dumps(self.history),
            }
            checkpoint_meta = {**self.meta, "epoch": epoch + 1, "metrics": record}
            if world.is_main:  # the unwrapped model: its checkpoint loads into one process
                if is_best:
                    save_checkpoint(out, "best", model, checkpoint_meta)
                save_checkpoint(out, "last", model, checkpoint_meta, state)
                write_metrics(out, self.history)
            if self.writer is not None:
                for key, value in record.items():
                    if key != "phase":
                        self.writer.add_scalar(key, value, epoch + 1)
            self.log(f"epoch {epoch + 1:>3}/{self.total_epochs}" + (f" ({phase.name})" if phase.name != "train" else "")
                     + f": train loss {record['train_loss']:.4f} top-1 {record['train_top1']:.2%} | "
                     f"val loss {record['val_loss']:.4f} top-1 {record['val_top1']:.2%} top-5 {record['val_top5']:.2%} | "
                     f"lr {record['lr']:.3g} | {record['images_per_second']:,.0f} img/s"
                     + (f" | test top-1 {record['test_top1']:.2%}" if "test_top1" in record else ""))


def _resume(out: Path, model, meta) -> tuple[int, list, dict, dict]:
    """Weights and RNG from the run's last checkpoint; returns (epoch, history, best, training state)."""
    json_path = out / "last.json"
    saved = read_meta(json_path)
    for key in ("model", "num_classes", "in_chans", "data", "transfer"):
        if saved.get(key) != meta.get(key):
            raise CnnlabError(f"--resume: {json_path} was trained with {key} {saved.get(key)!r}, but this run has "
                              f"{meta.get(key)!r}; resume with the same settings or start a new --out")
    model.load_state_dict(load_weights(json_path))
    state = load_training_state(json_path)
    torch.set_rng_state(state["torch_rng"])
    if state.get("cuda_rng"):
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return int(state["epoch"]), json.loads(state["history"]), state["best"], state


def write_metrics(out: Path, history: list[dict[str, Any]]) -> None:
    atomic_write_text(out / "metrics.jsonl", "".join(json.dumps(record) + "\n" for record in history))
    buffer = io.StringIO()
    if history:
        writer = csv.DictWriter(buffer, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    atomic_write_text(out / "metrics.csv", buffer.getvalue())


def plot_curves(out: Path, history: list[dict[str, Any]]) -> Path | None:
    if not history:
        return None
    from cnnlab.viz.plots import pyplot, save_figure

    plt = pyplot()
    epochs = [r["epoch"] for r in history]
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 3.6))
    loss_axis.plot(epochs, [r["train_loss"] for r in history], label="train")
    loss_axis.plot(epochs, [r["val_loss"] for r in history], label="val")
    loss_axis.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    accuracy_axis.plot(epochs, [100 * r["train_top1"] for r in history], label="train top-1")
    accuracy_axis.plot(epochs, [100 * r["val_top1"] for r in history], label="val top-1")
    accuracy_axis.plot(epochs, [100 * r["val_top5"] for r in history], label="val top-5", linestyle="--")
    accuracy_axis.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    for axis in (loss_axis, accuracy_axis):
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    return save_figure(figure, out / "curves.png", dpi=100, tight=False)


def _tensorboard(out: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise CnnlabError("--tensorboard needs the tensorboard package: pip install tensorboard") from None
    return SummaryWriter(str(out / "tensorboard"))


class _Bar:
    def __init__(self, epoch: int, epochs: int, steps: int) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn(f"epoch {epoch + 1}/{epochs}"), BarColumn(), TextColumn("{task.fields[info]}"),
                                 TimeRemainingColumn(), transient=True)
        self.task = self.progress.add_task("train", total=steps, info="")
        self.progress.start()

    def update(self, step: int, loss: float, accuracy: float, images: int, seconds: float) -> None:
        self.progress.update(self.task, completed=step,
                             info=f"loss {loss:.4f} top-1 {accuracy:.2%} {images / max(seconds, 1e-9):,.0f} img/s")

    def close(self) -> None:
        self.progress.stop()


def _progress(enabled: bool, epoch: int, epochs: int, steps: int) -> _Bar | None:
    return _Bar(epoch, epochs, steps) if enabled else None
