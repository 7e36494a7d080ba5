"""Fold BatchNorm into the convolution or linear layer before it, for inference.

In eval mode BatchNorm is the affine map y = gamma (x - mean) / sqrt(var + eps) + beta (seed 000:
"a linear operator, can be fused with the previous fully-connected or conv layer: zero overhead
at test time"). After a conv with weight W and bias b it folds into that conv:

    W' = W * s  (s = gamma / sqrt(var + eps), per output channel)    b' = (b - mean) * s + beta

A BatchNorm folds only where its input is exactly one conv's (or linear's) output that nothing
else reads. Where it is not (DenseNet's BN after a concatenation, a pre-activation block's BN
before its conv, BN after a residual sum), it stays, and the report says why.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.overrides import TorchFunctionMode


@dataclass
class FoldReport:
    folded: list[tuple[str, str]] = field(default_factory=list)  # (batchnorm, into conv/linear)
    kept: list[tuple[str, str]] = field(default_factory=list)  # (batchnorm, why)

    def summary(self) -> str:
        lines = [f"{len(self.folded)} BatchNorm layers folded into the layer before them, {len(self.kept)} kept"]
        reasons: dict[str, list[str]] = {}
        for name, why in self.kept:
            reasons.setdefault(why, []).append(name)
        for why, names in reasons.items():
            shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
            lines.append(f"kept {len(names)}: {why} ({shown})")
        return "\n".join(lines)


class _Uses(TorchFunctionMode):
    """Counts how many operations read each tensor, and remembers which operation made it."""

    def __init__(self) -> None:
        super().__init__()
        self.uses: dict[int, int] = {}
        self.producer: dict[int, str] = {}
        self.keep: list[torch.Tensor] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in ("__get__", "size", "dim", "numel"):
            return func(*args, **kwargs)
        flat = list(args) + list(kwargs.values())
        for item in flat:
            for tensor in (item if isinstance(item, (list, tuple)) else (item,)):
                if isinstance(tensor, torch.Tensor) and not isinstance(tensor, nn.Parameter):
                    self.uses[id(tensor)] = self.uses.get(id(tensor), 0) + 1
        output = func(*args, **kwargs)
        for tensor in (output if isinstance(output, (list, tuple)) else (output,)):
            if isinstance(tensor, torch.Tensor):
                self.producer[id(tensor)] = name
                self.keep.append(tensor)
        return output


def _reason(producer: str, bn_before_conv: bool) -> str:
    if producer in ("cat", "concat"):
        return "its input is a concatenation of several layers' maps (DenseNet's layers, NASNet's factorized reduction), not one conv's output"
    if producer in ("__add__", "add", "__iadd__"):
        return "its input is a residual sum, not one conv's output"
    if bn_before_conv:
        return "it comes before its conv with a ReLU between (pre-activation), so there is no conv before it to absorb it"
    return f"its input comes from {producer or 'the model input'}, not a conv or linear layer"


def fold_batchnorm(model: nn.Module, example: torch.Tensor) -> tuple[nn.Module, FoldReport]:
    """A copy of `model` (eval mode) with every foldable BatchNorm folded; the original is untouched."""
    folded = copy.deepcopy(model).eval()
    names = {module: name for name, module in folded.named_modules()}
    outputs: dict[int, nn.Module] = {}  # id(output tensor) -> conv/linear
    bn_inputs: dict[nn.Module, int] = {}
    order: list[nn.Module] = []
    handles = []

    def after_weight_layer(module, _inputs, output):
        outputs[id(output)] = module
        order.append(module)

    def before_bn(module, inputs):
        bn_inputs[module] = id(inputs[0])
        order.append(module)

    for module in folded.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            handles.append(module.register_forward_hook(after_weight_layer))
        elif isinstance(module, (nn.BatchNorm2d, nn.BatchNorm1d)):
            handles.append(module.register_forward_pre_hook(before_bn))
    uses = _Uses()
    try:
        with torch.no_grad(), uses:
            folded(example)
    finally:
        for handle in handles:
            handle.remove()

    report = FoldReport()
    parents = {name: module for name, module in folded.named_modules()}
    for bn, input_id in bn_inputs.items():
        layer = outputs.get(input_id)
        if layer is None or uses.uses.get(input_id, 0) != 1 or layer.weight.shape[0] != bn.num_features:
            position = order.index(bn)
            later = order[position + 1:]
            bn_before_conv = bool(later) and isinstance(later[0], nn.Conv2d)
            report.kept.append((names[bn], "its input is also read elsewhere" if layer is not None
                                else _reason(uses.producer.get(input_id, ""), bn_before_conv)))
            continue
        _fold_into(layer, bn)
        parent_name, _, child = names[bn].rpartition(".")
        setattr(parents[parent_name] if parent_name else folded, child, nn.Identity())
        report.folded.append((names[bn], names[layer]))
    return folded, report


@torch.no_grad()
def _fold_into(layer: nn.Module, bn: nn.modules.batchnorm._BatchNorm) -> None:
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps) if bn.affine else 1 / torch.sqrt(bn.running_var + bn.eps)
    shift = bn.bias - bn.running_mean * scale if bn.affine else -bn.running_mean * scale
    shape = (-1,) + (1,) * (layer.weight.dim() - 1)
    layer.weight.mul_(scale.view(shape))
    if layer.bias is None:
        layer.bias = nn.Parameter(shift.clone())
    else:
        layer.bias.copy_(layer.bias * scale + shift)
