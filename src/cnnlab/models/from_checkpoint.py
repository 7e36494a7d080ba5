"""A model rebuilt from a checkpoint: the zoo builder its metadata names, its weights loaded."""

from __future__ import annotations

from pathlib import Path

import torch

from cnnlab.checkpoint import CheckpointError, load_checkpoint, resolve
from cnnlab.errors import InputShapeError, ModelConfigError
from cnnlab.models.registry import create_model


def load_model(path: str | Path, device: str | torch.device = "cpu", module: torch.nn.Module | None = None):
    """The model of a checkpoint, weights loaded, in eval mode; and its RunMeta. A run of a module of
    the user's own needs that module (`module=MyNet()`): its weights are loaded into it."""
    json_path = resolve(path)
    meta, weights = load_checkpoint(json_path)  # one save's description and weights, checked by its digest
    if meta.module and module is None:
        raise CheckpointError(own_module_needed(json_path, meta))
    try:
        model = module if module is not None else create_model(
            meta.model, num_classes=meta.num_classes, in_chans=meta.in_chans, input_size=meta.input_size,
            **meta.model_kwargs)
    except ModelConfigError as error:
        if not hasattr(error, "option"):
            raise
        raise CheckpointError(f"{json_path} gives {meta.model} options it does not take "
                              f"({error.option}); the file was edited or is from another model") from None
    except InputShapeError as error:
        raise CheckpointError(f"{json_path}'s input does not fit {meta.model} ({error}); the file was edited or is "
                              "from another model") from None
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as error:
        raise CheckpointError(f"{json_path.with_suffix('.safetensors')} does not fit {meta.model}: "
                              f"{str(error).splitlines()[1].strip() if len(str(error).splitlines()) > 1 else error}") from None
    return model.to(device).eval(), meta


def own_module_needed(json_path: Path, meta) -> str:
    """Why a run of a module of the user's own cannot be rebuilt from its files alone, and the fix."""
    name = meta.module.rsplit(".", 1)[-1]
    return (f"{json_path} holds the weights of {meta.module}, a module of your own, not a zoo model: cnnlab cannot "
            f"rebuild it from the files; load it in Python with cnnlab.load_run({str(json_path.parent)!r}, "
            f"model={name}()) (or load_model(path, module={name}()))")


def model_from_source(source: str):
    """(model in eval mode, input size (C, H, W), description) from a checkpoint or a zoo name."""
    if names_a_file(source):
        model, meta = load_model(source)
        return model, meta.input_size, f"{meta.model} from {source}"
    model = create_model(source).eval()  # an unknown name gets the registry's "did you mean", as everywhere
    return model, model.default_input_size, f"{source} (initial weights, no checkpoint)"


def names_a_file(source: str | Path) -> bool:
    """Whether a command's MODEL argument is a checkpoint or run folder rather than a zoo name:
    it exists, or it is written as a path (a folder in it, or a checkpoint's suffix)."""
    text = str(source)
    return Path(text).exists() or "/" in text or text.endswith((".json", ".safetensors", ".pt"))
