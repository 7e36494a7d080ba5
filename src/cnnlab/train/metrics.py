"""Loss, top-1/top-5, per-class accuracy and the confusion matrix over a whole split."""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn


@torch.no_grad()
def evaluate_batches(model: nn.Module, batches, num_classes: int, confusion: bool = False) -> dict:
    """Metrics of `model` (put in eval mode) over every batch; the confusion matrix on request."""
    model.eval()
    device = next(model.parameters()).device
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    top1 = torch.zeros((), device=device)
    top5 = torch.zeros((), device=device)
    matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)
    seen = 0
    started = time.perf_counter()
    k = min(5, num_classes)
    for x, y in batches:
        output = model(x)
        logits = output[0] if isinstance(output, tuple) else output
        loss_sum += F.cross_entropy(logits.float(), y, reduction="sum").double()
        best = logits.topk(k, dim=1).indices
        top1 += (best[:, 0] == y).sum()
        top5 += (best == y[:, None]).any(1).sum()
        matrix += torch.bincount(y * num_classes + best[:, 0], minlength=num_classes**2).view(num_classes, num_classes)
        seen += len(y)
    seconds = time.perf_counter() - started
    per_class = (matrix.diag().float() / matrix.sum(1).clamp(min=1).float()).tolist()
    result = {
        "loss": (loss_sum / max(seen, 1)).item(), "top1": (top1 / max(seen, 1)).item(), "top5": (top5 / max(seen, 1)).item(),
        "images": seen, "images_per_second": seen / max(seconds, 1e-9), "per_class_top1": per_class,
    }
    if confusion:
        result["confusion"] = matrix.cpu().tolist()
    return result
