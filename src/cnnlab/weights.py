"""Start a model from weights trained elsewhere: a cnnlab checkpoint, a safetensors file, a
torchvision/timm-style `.pth` state_dict (read with `weights_only=True`: no pickled code runs), or
by name, "torchvision" or "timm": the reference library's ImageNet weights of the model's twin, from
the local caches those libraries download into (nothing is downloaded here).

Tensors are matched by name (a DataParallel/DDP `module.` prefix and a wrapping `state_dict` or
`model` entry are undone); the report names what was loaded, what was skipped and why (e.g. a
1000-class head on a 10-class model), and what stays at its initialization. Nothing is ignored
silently.
"""

from __future__ import annotations

import os
import re
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
    if path.is_dir() or path.suffix == ".json" or (path.suffix == ".safetensors" and path.with_suffix(".json").is_file()):
        from cnnlab.checkpoint import load_weights, resolve  # a cnnlab checkpoint: its weights checked by their digest

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


# Our name -> torchvision's, for the nets whose state dicts load each other strictly (tests/models).
TORCHVISION_TWINS = {
    "alexnet_owt": "alexnet", "googlenet_tv": "googlenet", "inception_v3": "inception_v3",
    **{name: name for name in ("vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn")},
    "resnet18": "resnet18", "resnet34": "resnet34", "resnet50b": "resnet50", "resnext50_32x4d": "resnext50_32x4d",
    "wide_resnet50_2": "wide_resnet50_2", "densenet121": "densenet121", "densenet161": "densenet161",
    "densenet169": "densenet169", "densenet201": "densenet201", "squeezenet1_0": "squeezenet1_0",
    "squeezenet1_1": "squeezenet1_1", "shufflenet_v2_x1_0": "shufflenet_v2_x1_0",
}
# Our name -> timm's: its ports of torchvision's weights (timm keeps torchvision's tensor names there),
# and of TensorFlow's NASNet-A Large (names as timm's nasnet.py).
TIMM_TWINS = {
    "resnet18": "resnet18.tv_in1k", "resnet34": "resnet34.tv_in1k", "resnet50b": "resnet50.tv_in1k",
    "resnext50_32x4d": "resnext50_32x4d.tv_in1k", "wide_resnet50_2": "wide_resnet50_2.tv_in1k",
    "densenet121": "densenet121.tv_in1k", "nasnet_a_large": "nasnetalarge.tf_in1k",
}
LIBRARIES = ("torchvision", "timm")
# torchvision's DenseNet files predate its module names ("norm.1" for "norm1"); torchvision renames on load
_OLD_DENSENET_KEY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var|num_batches_tracked))$")


def pretrained_file(model_name: str, library: str) -> Path:
    """Where `library` keeps the ImageNet weights of `model_name`'s twin in its local cache; a clear
    error that names the file, its URL and where to put it when it is not there."""
    if library not in LIBRARIES:
        raise WeightsError(f"pretrained={library!r}: give 'torchvision', 'timm' or a path to a weights file")
    twins = TORCHVISION_TWINS if library == "torchvision" else TIMM_TWINS
    if model_name not in twins:
        which = ", ".join(sorted(twins))
        raise WeightsError(f"{model_name} has no twin in {library} whose weights load into it; models that have one: {which}")
    if library == "torchvision":
        import torch.hub
        import torchvision

        url = torchvision.models.get_model_weights(twins[model_name]).IMAGENET1K_V1.url
        folder = Path(torch.hub.get_dir()) / "checkpoints"
        path = folder / url.rsplit("/", 1)[-1]
        where = f"{folder} (torch hub's cache: $TORCH_HOME/hub/checkpoints, TORCH_HOME defaults to ~/.cache/torch)"
        if path.is_file():
            return path
    else:
        repo = f"timm/{twins[model_name]}"
        hub = Path(os.environ.get("HF_HUB_CACHE") or Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "hub")
        folder = hub / f"models--{repo.replace('/', '--')}"
        found = sorted(folder.glob("snapshots/*/model.safetensors")) + sorted(folder.glob("snapshots/*/pytorch_model.bin"))
        if found:
            return found[-1]
        url = f"https://huggingface.co/{repo}/resolve/main/model.safetensors"
        path = folder / "snapshots" / "main" / "model.safetensors"
        where = f"{folder}/snapshots/<any name>/ (the Hugging Face hub cache: $HF_HUB_CACHE, or $HF_HOME/hub)"
    raise WeightsError(f"{library}'s weights for {model_name} are not in the local cache: fetch {url} on a connected "
                       f"machine and put it in {where}, e.g. as {path}; or pass the file itself with --init FILE")


def initialize_from(model: nn.Module, path: str | Path) -> InitReport:
    """Copy every tensor of `path` whose name and shape fit `model` into it; report the rest.
    `path` may also be "torchvision" or "timm": the twin's weights from that library's cache."""
    if str(path) in LIBRARIES:
        library, path = str(path), pretrained_file(getattr(model, "model_name", ""), str(path))
        state = {(_OLD_DENSENET_KEY.sub(r"\1\2", key) if library == "torchvision" else key): value
                 for key, value in read_state_dict(path).items()}
        path = f"{library} ({path})"
    else:
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
