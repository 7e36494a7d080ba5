"""Loss, top-1/top-5, per-class accuracy and the confusion matrix over a whole split.

Under data-parallel training each rank predicts its shard; the per-image results are gathered and
the padding DistributedSampler adds (repeated first indices) is dropped, so the metrics are those
of the full split, equal to one process's.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from typing import Callable, ContextManager

import torch
import torch.nn.functional as F
from torch import nn


@torch.inference_mode()
def evaluate_batches(model: nn.Module, batches, num_classes: int, confusion: bool = False, world=None,
                     autocast: Callable[[], ContextManager] = nullcontext, flip: bool = False,
                     predictions: bool = False) -> dict:
    """Metrics of `model` (put in eval mode) over every batch; the confusion matrix on request.
    `autocast` is the run's precision (train/precision.py); `flip` averages the logits of each
    image and its mirror image (test-time augmentation for sets whose classes are mirror-symmetric).
    With a distributed `world`, `batches` are this rank's shard and every rank gets the metrics of
    the whole split. `predictions` adds each image's top-1 class, in the batches' order."""
    model.eval()
    k = min(5, num_classes)
    losses, top, labels = [], [], []
    started = time.perf_counter()
    for x, y in batches:
        with autocast():
            logits = predict_logits(model, x, flip)
        losses.append(F.cross_entropy(logits.float(), y, reduction="none").double())
        top.append(logits.topk(k, dim=1).indices)
        labels.append(y)
    device = next(model.parameters()).device
    loss = torch.cat(losses) if losses else torch.zeros(0, dtype=torch.float64, device=device)
    best = torch.cat(top) if top else torch.zeros(0, k, dtype=torch.int64, device=device)
    y = torch.cat(labels) if labels else torch.zeros(0, dtype=torch.int64, device=device)
    if world is not None and world.distributed:
        from cnnlab.train.distributed import gather

        index = batches.order()[: len(y)].to(device)
        index, loss, best, y = (gather(t, world) for t in (index, loss, best, y))
        first = first_occurrences(index)
        loss, best, y = loss[first], best[first], y[first]
    seconds = time.perf_counter() - started
    seen = len(y)
    matrix = torch.bincount(y * num_classes + best[:, 0], minlength=num_classes**2).view(num_classes, num_classes)
    per_class = (matrix.diag().float() / matrix.sum(1).clamp(min=1).float()).tolist()
    result = {
        "loss": (loss.sum() / max(seen, 1)).item(), "top1": ((best[:, 0] == y).sum() / max(seen, 1)).item(),
        "top5": ((best == y[:, None]).any(1).sum() / max(seen, 1)).item(),
        "images": seen, "images_per_second": seen / max(seconds, 1e-9), "per_class_top1": per_class,
    }
    if confusion:
        result["confusion"] = matrix.cpu().tolist()
    if predictions:
        result["predictions"] = best[:, 0].cpu().tolist()
    return result


def predict_logits(model: nn.Module, x: torch.Tensor, flip: bool = False) -> torch.Tensor:
    """The model's logits for `x` (the main output of a model with auxiliary heads); with `flip`,
    the float32 average of the logits of `x` and of its mirror image (test-time flip)."""
    logits = _logits(model(x))
    return (logits.float() + _logits(model(x.flip(-1))).float()) / 2 if flip else logits


def _logits(output) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output


def first_occurrences(index: torch.Tensor) -> torch.Tensor:
    """Positions of the first appearance of each distinct value of `index`, in increasing order of
    that value (DistributedSampler's padding repeats indices; this drops the repeats)."""
    order = torch.argsort(index, stable=True)
    sorted_index = index[order]
    keep = torch.ones_like(sorted_index, dtype=torch.bool)
    keep[1:] = sorted_index[1:] != sorted_index[:-1]
    return order[keep]
