"""A zoo model as a notebook shows it: its card (name, paper, input, parameters, the stages with
their output shapes and parameters), and PyTorch's module tree folded below.

The terminal keeps PyTorch's own repr; only `_repr_html_` (CnnModel's) draws this. The stages'
output shapes come from one forward of a copy on the `meta` device: no memory, no arithmetic.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab import rendering
from cnnlab.meta import meta_copy


def stage_rows(model: nn.Module, input_size: tuple[int, ...]) -> list[list[str]]:
    """One row per top-level module: name, class, output shape per image, parameters, share."""
    total = sum(p.numel() for p in model.parameters()) or 1
    shapes = _stage_shapes(model, input_size)
    rows = []
    for name, child in model.named_children():
        params = sum(p.numel() for p in child.parameters())
        rows.append([name, _class_text(child), shapes.get(name, "not run"), f"{params:,}",
                     f"{100 * params / total:.1f}%"])
    return rows


def _class_text(module: nn.Module) -> str:
    """"Conv2d"; a container of one kind of block: "Sequential: 3 x Bottleneck"."""
    kinds = {type(child).__name__ for child in module.children()}
    count = len(list(module.children()))
    if isinstance(module, (nn.Sequential, nn.ModuleList)) and len(kinds) == 1 and count > 1:
        return f"{type(module).__name__}: {count} × {kinds.pop()}"
    return type(module).__name__


def _stage_shapes(model: nn.Module, input_size: tuple[int, ...]) -> dict[str, str]:
    """Each top-level module's output shape (its last call's), from a forward on the meta device;
    {} where the model cannot run on it."""
    try:
        copy = meta_copy(model, shapes_only_batchnorm=True).eval()
    except Exception:  # noqa: BLE001 - a card without shapes is still a card
        return {}
    shapes: dict[str, str] = {}

    def keep(name: str):
        def hook(module, inputs, output) -> None:
            tensor = output if isinstance(output, torch.Tensor) else next(
                (t for t in (output if isinstance(output, (tuple, list)) else ()) if isinstance(t, torch.Tensor)), None)
            if tensor is not None:
                shapes[name] = "x".join(map(str, tensor.shape[1:]))
        return hook

    handles = [child.register_forward_hook(keep(name)) for name, child in copy.named_children()]
    try:
        with torch.no_grad():
            copy(torch.empty(1, *input_size, device="meta"))
    except Exception:  # noqa: BLE001 - the shapes found before the failure are kept
        pass
    finally:
        for handle in handles:
            handle.remove()
    return shapes


def card_html(model: nn.Module, paper: str = "", description: str = "") -> str:
    """The card of a zoo model (a CnnModel) for a notebook."""
    name = getattr(model, "model_name", "") or type(model).__name__
    input_size = tuple(model.default_input_size)
    params = list(model.parameters())
    count = sum(p.numel() for p in params)
    trainable = sum(p.numel() for p in params if p.requires_grad)
    first = params[0] if params else None
    facts = [
        ("paper", paper or "-"),
        ("input", "x".join(map(str, input_size)) + f" ({model.in_chans} channels)"),
        ("classes", f"{model.num_classes:,}"),
        ("parameters", f"{count:,} ({trainable:,} trainable)"),
        ("weights", f"{first.dtype}, on {first.device}".replace("torch.", "") if first is not None else "none"),
        ("mode", "training" if model.training else "eval"),
    ]
    columns = ("Module", "Class", "Output", "#Params", "Share")
    rows = stage_rows(model, input_size)
    tree = rendering.fold("module tree", "PyTorch's repr", rendering.preformatted(repr(model)))
    return rendering.frame(rendering.facts(facts), rendering.table(columns, rows, text_columns=2), tree, title=name,
                           subtitle=description)
