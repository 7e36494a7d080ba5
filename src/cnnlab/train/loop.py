"""The epoch loop: one phase's optimizer and schedule, its epochs, and what each epoch records.

`Loop.phase` sets up what a phase trains (`start_phase`), then runs its epochs: `train_epoch`
(the steps: micro-batches, mixed precision, gradient accumulation without all-reduce on the
first K-1, clipping) and `end_epoch` (validation, the metrics line, the best and last
checkpoints). train/run.py builds the run around it.
"""

from __future__ import annotations

import json
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.layers.drop_path import set_drop_path_progress
from cnnlab.train import distributed
from cnnlab.checkpoint import save_checkpoint
from cnnlab.train.config import TrainConfig
from cnnlab.train.metrics import evaluate_batches
from cnnlab.train.phases import Phase
from cnnlab.train.records import progress_bar, write_metrics


class TrainingDiverged(CnnlabError):
    """The loss became NaN or infinite."""


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


class NonFiniteLoss(CnnlabError):
    """The loss of micro-step `micro` was NaN or infinite (before its backward pass)."""

    def __init__(self, loss: float, micro: int) -> None:
        super().__init__(f"the loss became {loss} at step {micro + 1}")
        self.loss, self.micro = loss, micro


def train_epoch(forward: Callable, batches, micro_steps: int, optimizer: torch.optim.Optimizer, scheduler, autocast,
                *, scaler: torch.amp.GradScaler | None = None, accumulate: int = 1, clip_grad: float | None = None,
                label_smoothing: float = 0.0, channels_last: bool = False, no_sync: Callable | None = None,
                on_step: Callable | None = None) -> tuple[torch.Tensor, torch.Tensor, int]:
    """One pass of `micro_steps` batches: forward in the run's precision (`autocast`), cross-entropy
    (auxiliary heads weighted 0.3, as GoogLeNet's), backward, and an optimizer and schedule step
    every `accumulate` micro-batches (the first K-1 without all-reduce, through `no_sync`), with
    gradient clipping. Returns (loss sum, correct, images) as tensors on the device and a count;
    `on_step(micro, loss_sum, correct, images)` follows every micro-step. The caller sets the
    modules' train/eval modes. `cnnlab train` (Loop.train_epoch) and the experiments both train here."""
    scaler = scaler or torch.amp.GradScaler(enabled=False)
    device = next(iter(optimizer.param_groups[0]["params"])).device
    loss_sum, correct, seen = torch.zeros((), device=device), torch.zeros((), device=device), 0
    optimizer.zero_grad(set_to_none=True)
    for micro, (x, y) in zip(range(micro_steps), batches):
        last_micro = (micro + 1) % accumulate == 0
        if channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with no_sync() if no_sync is not None and not last_micro else nullcontext():
            with autocast():
                output = forward(x)
                logits = output[0] if isinstance(output, tuple) else output
                loss = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
                if isinstance(output, tuple):  # auxiliary heads, weighted 0.3 as in GoogLeNet
                    loss = loss + 0.3 * sum(F.cross_entropy(aux, y, label_smoothing=label_smoothing) for aux in output[1:])
            if not torch.isfinite(loss):
                raise NonFiniteLoss(loss.item(), micro)
            scaler.scale(loss / accumulate).backward()
        if last_micro:
            if clip_grad:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_([p for group in optimizer.param_groups for p in group["params"]], clip_grad)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
        loss_sum += loss.detach() * len(y)
        correct += (logits.detach().argmax(1) == y).sum()
        seen += len(y)
        if on_step is not None:
            on_step(micro, loss_sum, correct, seen)
    return loss_sum, correct, seen


@dataclass
class PhaseState:
    """What one phase trains with: the module the steps run (the model, or its head on cached
    features), its wrapped and compiled forms, the optimizer and schedules, the batches."""

    trained: nn.Module
    wrapped: nn.Module
    forward: Callable
    optimizer: torch.optim.Optimizer
    scheduler: Any
    plateau: Any
    scaler: torch.amp.GradScaler
    train_batches: Any
    val_batches: Any
    micro_steps: int


class Loop:
    """The state a run's phases share (the model, the history, the best epoch) and the epoch loop."""

    def __init__(self, settings, model: nn.Module, world, meta, history: list, best: dict, log, progress,
                 total_epochs: int, writer, watched_test, after_epoch: Callable[[list[dict]], None] | None = None) -> None:
        self.settings, self.config, self.model, self.world, self.device = settings, settings.config, model, world, world.device
        self.out, self.meta, self.history, self.best, self.log, self.progress = settings.out, meta, history, best, log, progress
        self.total_epochs, self.writer, self.watched_test = total_epochs, writer, watched_test
        self.after_epoch = after_epoch  # told each epoch's history (a live plot), on the main process
        self.autocast = settings.precision.autocast(world.device)

    def evaluate(self, model: nn.Module, batches) -> dict:
        """Metrics over `batches` in the run's precision, with its test-time flip."""
        return evaluate_batches(model, batches, self.meta.num_classes, world=self.world, autocast=self.autocast,
                                flip=self.config.test_flip)

    def phase(self, index: int, phase: Phase, epochs: range, train_batches, val_batches, continuing: dict | None) -> None:
        state = self.start_phase(phase, train_batches, val_batches, continuing)
        for epoch in epochs:
            totals, seconds = self.train_epoch(state, phase, epoch)
            self.end_epoch(state, index, phase, epoch, totals, seconds)

    def start_phase(self, phase: Phase, train_batches, val_batches, continuing: dict | None) -> PhaseState:
        """Which parameters train, on what (cached features for a head-only phase), with which
        optimizer and schedules; restored from `continuing` when a run resumes inside the phase."""
        config, model = self.config, self.model
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(phase.lr_scale is None or phase.lr_scale(name) is not None)
        trained = model
        if phase.cached_features:
            from cnnlab.train.transfer import cache_features, head_module

            train_batches, val_batches, seconds = cache_features(model, train_batches, val_batches, config.batch_size,
                                                                 config.seed, self.world, self.autocast)
            trained = head_module(model)
            self.log(f"phase {phase.name}: the frozen backbone's features of {train_batches.count:,} + {val_batches.count:,} "
                     f"images computed once in {seconds:.1f} s ({'x'.join(map(str, train_batches.features.shape[1:]))} "
                     "per image)")
        wrapped = distributed.wrap(trained, self.world)  # DDP registers hooks for what trains in this phase
        micro_steps = len(train_batches) // config.accumulate * config.accumulate  # a last partial group is left out
        if micro_steps == 0:
            raise CnnlabError(f"--accumulate {config.accumulate} needs at least {config.accumulate} batches per epoch; this "
                              f"rank has {len(train_batches)}: lower --accumulate or --batch-size")
        optimizer = make_optimizer(config, parameter_groups(model, config.weight_decay, config.no_decay_norm_bias,
                                                            phase.lr or config.lr, phase.lr_scale))
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lr_multiplier(config, micro_steps // config.accumulate, phase.epochs))
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=config.gamma, patience=2) \
            if config.schedule == "plateau" else None
        scaler = torch.amp.GradScaler(self.device.type, enabled=self.settings.precision.amp == "fp16")
        if continuing is not None:
            optimizer.load_state_dict(continuing["optimizer"])
            scheduler.load_state_dict(continuing["scheduler"])
            if plateau is not None and continuing.get("plateau"):
                plateau.load_state_dict(continuing["plateau"])
            scaler.load_state_dict(continuing["scaler"])
        return PhaseState(trained, wrapped, torch.compile(wrapped) if config.compile else wrapped, optimizer, scheduler,
                          plateau, scaler, train_batches, val_batches, micro_steps)

    def train_epoch(self, state: PhaseState, phase: Phase, epoch: int) -> tuple[tuple, float]:
        """One pass over the phase's batches; the epoch's (loss sum, correct, images) and its seconds."""
        config = self.config
        state.train_batches.set_epoch(epoch)
        self.model.train()
        set_drop_path_progress(self.model, epoch / self.total_epochs)  # NASNet's ScheduledDropPath grows per epoch
        for module in phase.frozen_modules:
            module.eval()
        started = time.perf_counter()
        bar = progress_bar(self.progress, epoch, self.total_epochs, state.micro_steps)

        def show(micro: int, loss_sum, correct, images: int) -> None:
            bar.update(micro + 1, loss=(loss_sum / images).item(), accuracy=(correct / images).item(), images=images,
                       seconds=time.perf_counter() - started)

        try:
            totals = train_epoch(state.forward, state.train_batches, state.micro_steps, state.optimizer, state.scheduler,
                                 self.autocast, scaler=state.scaler, accumulate=config.accumulate,
                                 clip_grad=config.clip_grad, label_smoothing=config.label_smoothing,
                                 channels_last=config.channels_last,
                                 no_sync=state.wrapped.no_sync if self.world.distributed else None,
                                 on_step=show if bar is not None else None)
        except NonFiniteLoss as error:
            raise self.diverged(error.loss, epoch, error.micro // config.accumulate + 1) from None
        finally:
            if bar is not None:
                bar.close()
        return totals, time.perf_counter() - started

    def diverged(self, loss: float, epoch: int, step: int) -> "TrainingDiverged":
        return TrainingDiverged(
            f"the loss became {loss} at epoch {epoch + 1}, step {step}; the last good checkpoint is "
            f"{self.out / 'last.json'}" + (f" (epoch {epoch})" if epoch else " (none yet: it diverged in the first epoch)")
            + f" and is untouched. Lower --lr (now {self.config.lr:g}), add --clip-grad 1.0, or add --warmup-epochs 1")

    def end_epoch(self, state: PhaseState, index: int, phase: Phase, epoch: int, totals: tuple, seconds: float) -> None:
        """Validate, record the epoch, keep the best and the last checkpoint, and say how it went."""
        loss_sum, correct, seen = totals
        if self.world.distributed:  # the training figures of all ranks
            summed = torch.stack([loss_sum.float(), correct.float(), torch.tensor(float(seen), device=self.device)])
            torch.distributed.all_reduce(summed)
            loss_sum, correct, seen = summed[0], summed[1], int(summed[2].item())
        evaluated = state.trained if phase.cached_features else self.model
        val_metrics = self.evaluate(evaluated, state.val_batches)
        if state.plateau is not None:
            state.plateau.step(val_metrics["loss"])
        record = {
            "epoch": epoch + 1, "phase": phase.name, "train_loss": (loss_sum / seen).item(),
            "train_top1": (correct / seen).item(), "val_loss": val_metrics["loss"], "val_top1": val_metrics["top1"],
            "val_top5": val_metrics["top5"], "lr": state.optimizer.param_groups[0]["lr"],
            "images_per_second": seen / seconds, "seconds": seconds,
        }
        if self.watched_test is not None:  # --watch-test: never used to pick the best epoch
            record["test_top1"] = self.evaluate(self.model, self.watched_test)["top1"]
        self.history.append(record)
        is_best = record["val_top1"] > self.best["val_top1"]
        if is_best:
            self.best = dict(record)
        if self.world.is_main:  # the unwrapped model: its checkpoint loads into one process
            checkpoint_meta = self.meta.at_epoch(epoch + 1, record)
            if is_best:
                save_checkpoint(self.out, "best", self.model, checkpoint_meta)
            save_checkpoint(self.out, "last", self.model, checkpoint_meta, self.training_state(state, index, epoch))
            write_metrics(self.out, self.history)
        if self.writer is not None:
            for key, value in record.items():
                if key != "phase":
                    self.writer.add_scalar(key, value, epoch + 1)
        self.log(f"epoch {epoch + 1:>3}/{self.total_epochs}" + (f" ({phase.name})" if phase.name != "train" else "")
                 + f": train loss {record['train_loss']:.4f} top-1 {record['train_top1']:.2%} | "
                 f"val loss {record['val_loss']:.4f} top-1 {record['val_top1']:.2%} top-5 {record['val_top5']:.2%} | "
                 f"lr {record['lr']:.3g} | {record['images_per_second']:,.0f} img/s"
                 + (f" | test top-1 {record['test_top1']:.2%}" if "test_top1" in record else ""))
        if self.after_epoch is not None and self.world.is_main:
            self.after_epoch(list(self.history))

    def training_state(self, state: PhaseState, index: int, epoch: int) -> dict:
        """What --resume needs beyond the weights: optimizer, schedules, scaler, RNG, history."""
        return {
            "epoch": epoch + 1, "phase": index, "optimizer": state.optimizer.state_dict(),
            "scheduler": state.scheduler.state_dict(), "plateau": state.plateau.state_dict() if state.plateau is not None else {},
            "scaler": state.scaler.state_dict(), "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
            "best": self.best, "history": json.dumps(self.history),
        }
