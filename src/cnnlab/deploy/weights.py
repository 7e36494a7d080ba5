"""Start a model from weights trained elsewhere: a cnnlab checkpoint, a safetensors file, or a
torchvision/timm-style `.pth` state_dict (read with `weights_only=True`: no pickled code runs).

Tensors are matched by name (a DataParallel/DDP `module.` prefix and a wrapping `state_dict` or
`model` entry are undone); the report names what was loaded, what was skipped and why (e.g. a
1000-class head on a 10-class model), and what stays at its initialization. Nothing is ignored
silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from cnnlab.errors import CnnlabError


class WeightsError(CnnlabError):
    """Weights that cannot be read, or that do not belong to the model."""


@dataclass
class InitReport:
    source: str
    loaded: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (key, why)
    left_at_init: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"--init {self.source}: {len(self.loaded)} tensors loaded, {len(self.skipped)} skipped, "
                 f"{len(self.left_at_init)} left at their initialization"]
        lines += [f"  skipped {key}: {why}" for key, why in self.skipped]
        if self.left_at_init:
            shown = ", ".join(self.left_at_init[:6]) + (f" and {len(self.left_at_init) - 6} more" if len(self.left_at_init) > 6 else "")
            lines.append(f"  left at init: {shown}")
        return "\n".join(lines)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if path.is_dir() or path.suffix == ".json":
        from cnnlab.train.checkpoint import load_weights, resolve

        return load_weights(resolve(path))
    if not path.is_file():
        raise WeightsError(f"{path} does not exist; give a run folder, a checkpoint .json, a .safetensors or a .pth file")
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as error:
            raise WeightsError(f"{path} is not a readable safetensors file ({str(error).splitlines()[0]})") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises several types; unsafe pickles among them
        raise WeightsError(f"{path} cannot be read as weights ({str(error).strip().splitlines()[0][:200]}); "
                           "only tensors are loaded, never pickled code") from None
    for wrapper in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path} holds no state_dict (a mapping of names to tensors)")
    return {key.removeprefix("module."): value for key, value in state.items()}


def initialize_from(model: nn.Module, path: str | Path) -> InitReport:
    """Copy every tensor of `path` whose name and shape fit `model` into it; report the rest."""
    state = read_state_dict(path)
    own = model.state_dict()
    report = InitReport(str(path))
    matched: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if key not in own:
            report.skipped.append((key, "no tensor of that name in the model"))
        elif tuple(tensor.shape) != tuple(own[key].shape):
            report.skipped.append((key, f"shape {tuple(tensor.shape)} in the file, {tuple(own[key].shape)} in the model"))
        else:
            matched[key] = tensor
    if not any(not key.endswith("num_batches_tracked") for key in matched):
        raise WeightsError(f"none of the {len(state)} tensors in {path} fit {getattr(model, 'model_name', '') or type(model).__name__}: "
                           "they are weights of another architecture")
    model.load_state_dict(matched, strict=False)
    report.loaded = sorted(matched)
    report.left_at_init = [key for key in own if key not in matched and not key.endswith("num_batches_tracked")]
    return report
