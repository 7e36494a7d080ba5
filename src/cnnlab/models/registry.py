"""The model registry: one decorator, one lookup, one listing.

Each builder is registered with the facts users look for first: its family, the paper it follows
and the input it was designed for. `create_model` is the only way models are built by name.
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from cnnlab.errors import ModelConfigError, UnknownModelError
from cnnlab.models.init_once import InitOnce


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable[..., nn.Module]
    family: str
    paper: str
    input_size: tuple[int, int, int]  # (channels, height, width) the paper used
    num_classes: int
    description: str = field(default="")
    # the paper's training settings (optimizer, lr, schedule, epochs, batch...) that `cnnlab train`
    # fills in where the user gives none; empty: train/config.py's generic defaults
    recipe: dict = field(default_factory=dict)


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    *,
    family: str,
    paper: str,
    input_size: tuple[int, int, int],
    num_classes: int = 1000,
    recipe: dict | None = None,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register a builder under its function name, with the paper's training `recipe`.

    The builder must accept `num_classes` and `in_chans` keyword arguments; its docstring's first
    line becomes the model's one-line description.
    """

    def decorate(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        name = builder.__name__
        if name in _REGISTRY:
            raise RuntimeError(f"model {name!r} is registered twice")
        doc = (builder.__doc__ or "").strip().splitlines()
        _REGISTRY[name] = ModelEntry(
            name=name,
            builder=builder,
            family=family,
            paper=paper,
            input_size=input_size,
            num_classes=num_classes,
            description=doc[0] if doc else "",
            recipe=dict(recipe or {}),
        )
        return builder

    return decorate


def list_models(pattern: str | None = None) -> list[str]:
    """Registered model names, sorted, optionally filtered by a shell-style pattern ("vgg*")."""
    names = sorted(_REGISTRY, key=_natural_key)
    if pattern:
        names = [n for n in names if fnmatch.fnmatchcase(n, pattern.lower())]
    return names


def get_entry(name: str) -> ModelEntry:
    """The registry entry of `name`, or an UnknownModelError that suggests the closest names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownModelError(_unknown_message(name)) from None


def create_model(
    name: str,
    *,
    num_classes: int | None = None,
    in_chans: int | None = None,
    input_size: int | tuple[int, ...] | None = None,
    pretrained: str | None = None,
    **variant_kwargs,
) -> nn.Module:
    """Build a registered model by name.

    `num_classes` and `in_chans` default to what the paper used (1000 classes and RGB for the
    ImageNet nets, 10 classes and one channel for LeNet, ...). `input_size` ((C, H, W), (H, W) or a
    side) sizes the model for its input: a net with a flattened classifier (LeNet, AlexNet, ZFNet)
    builds its first FC layer for it; the rest take any input large enough and only record it.
    Its channels are not used: `in_chans` says those.
    Other keyword arguments are the family's variant options (e.g. `batch_norm=True`,
    `activation="relu"`, `drop_path_rate=0.1`).
    `pretrained` loads weights: "torchvision" or "timm" (the twin model's ImageNet weights from that
    library's local cache) or a path (a run folder, checkpoint, .safetensors or .pth); what loaded
    and what did not is `model.init_report`. A head of another size than the weights' stays at
    its initialization (the report says so).
    """
    entry = get_entry(name)
    in_chans = entry.input_size[0] if in_chans is None else in_chans
    takes_input_size = "input_size" in inspect.signature(entry.builder).parameters
    sized = input_size is not None and takes_input_size
    if sized:
        variant_kwargs["input_size"] = input_size
    try:
        with _skip_meta_init() if _building_on_meta() else InitOnce():
            model = entry.builder(num_classes=entry.num_classes if num_classes is None else num_classes,
                                  in_chans=in_chans, **variant_kwargs)
    except TypeError as error:
        if "unexpected keyword" not in str(error):
            raise
        options = [p for p in inspect.signature(entry.builder).parameters if p not in ("num_classes", "in_chans")]
        unknown = str(error).split("argument")[-1].strip()
        refusal = ModelConfigError(f"{name} has no option {unknown}"
                                   + (f"; its options: {', '.join(options)}" if options else "; it takes no options"))
        refusal.option = unknown  # for callers that explain where the option came from (a checkpoint's file)
        raise refusal from None
    model.model_name = name
    model.paper, model.description = entry.paper, entry.description
    # what rebuilds it (a run of this model object records them): the options, not the input size
    model.model_kwargs = {key: value for key, value in variant_kwargs.items() if key != "input_size"}
    model.sized_to_input = takes_input_size
    if input_size is not None and not sized and hasattr(model, "default_input_size"):
        from cnnlab.models.base import image_side, size_refusal

        # The net takes any input it can (or only its designed size): it records the input it is
        # given, once it is sure the net takes it.
        height, width = image_side(input_size)
        refusal = size_refusal(model, height, width)
        if refusal is not None:
            raise refusal
        model.default_input_size = (in_chans, height, width)
    if pretrained is not None:
        from cnnlab.weights import initialize_from

        model.init_report = initialize_from(model, pretrained)
    return model


def _building_on_meta() -> bool:
    get_default = getattr(torch, "get_default_device", None)
    return get_default is not None and get_default().type == "meta"


class _skip_meta_init(TorchFunctionMode):
    """Skip in-place operations on meta tensors while a model is built: on `meta` they change no
    shape and write no data, and weight initializers (normal_, uniform_, trunc_normal_'s chain)
    run there through slow Python reference kernels, half the cost of a summary."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if (name.endswith("_") and not name.startswith("_") and name not in ("requires_grad_", "resize_", "set_")
                and args and isinstance(args[0], torch.Tensor) and args[0].is_meta):
            return args[0]
        return func(*args, **(kwargs or {}))


def _unknown_message(name: str) -> str:
    names = list(_REGISTRY)
    close = difflib.get_close_matches(name, names, n=4, cutoff=0.6)
    # Names that start with what was typed read better first, the shortest first
    # ("resnet5" -> resnet50, resnet56, then resnet50b, ...).
    prefixed = sorted((n for n in names if n.startswith(name)), key=lambda n: (len(n), _natural_key(n)))
    suggestions = list(dict.fromkeys(prefixed[:4] + close))[:4]
    message = f"unknown model {name!r}"
    if suggestions:
        message += f"; did you mean {', '.join(suggestions)}?"
    return message + " (run `cnnlab models` to list them all)"


def _natural_key(name: str) -> list:
    """Sort resnet18 before resnet101: digit runs compare as numbers."""
    import re

    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]
