"""Checkpoints that survive a crash and never run code when read.

A checkpoint named NAME in a run folder is three files:
    NAME.safetensors   the weights (safetensors: tensors only, nothing executable)
    NAME.json          everything needed to rebuild and use the model (name, options, classes,
                       input size, normalization, epoch, metrics, versions)
    NAME.state.pt      optimizer, scheduler, scaler and RNG states for --resume, read with
                       torch.load(weights_only=True)
Every file is written to a temporary name in the same folder and renamed into place, and the JSON
goes last: a checkpoint whose JSON exists is complete.
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from cnnlab.errors import CnnlabError


class CheckpointError(CnnlabError):
    """A checkpoint that is missing, corrupt, or for another model or data set."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def versions() -> dict[str, str]:
    import torchvision

    from cnnlab.version import __version__

    return {"cnnlab": __version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "python": platform.python_version()}


@dataclass(frozen=True)
class RunMeta:
    """What every checkpoint of a run records: the model and its options, the classes, the input
    and stored image sizes and the normalization (so a checkpoint alone rebuilds the model and
    feeds it as it was trained), how the validation images were held out, the arithmetic, the
    transfer mode, and the epoch and its metrics. NAME.json holds it (`to_json`/`from_json`)."""

    model: str
    num_classes: int
    in_chans: int
    input_size: tuple[int, ...] | None = None
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    data: str | None = None
    class_names: tuple[str, ...] = ()
    stored_size: tuple[int, ...] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    seed: int = 0
    val_fraction: float = 0.1
    val_images: int | None = None
    test_fraction: float = 0.0  # the share of each class held out as the test split, for data without one
    precision: str = "float32"  # runs from before precisions were recorded trained in float32
    test_flip: bool = False
    transfer: dict[str, Any] | None = None
    epoch: int | None = None
    metrics: dict[str, Any] | None = None
    versions: dict[str, str] | None = None

    @property
    def side(self) -> int:
        """The model's input side."""
        return self.input_size[-1]

    @property
    def stored_side(self) -> int:
        """The side the run's data set stores its images at (before resizing to the model's)."""
        return (self.stored_size or self.input_size)[-1]

    def at_epoch(self, epoch: int, metrics: dict[str, Any]) -> "RunMeta":
        return replace(self, epoch=epoch, metrics=metrics)

    def to_json(self) -> dict[str, Any]:
        data = {"model": self.model, "model_kwargs": self.model_kwargs, "num_classes": self.num_classes,
                "in_chans": self.in_chans, "data": self.data, "class_names": list(self.class_names),
                "input_size": list(self.input_size) if self.input_size else None,
                "stored_size": list(self.stored_size) if self.stored_size else None,
                "normalization": {"mean": list(self.mean), "std": list(self.std)} if self.mean is not None else None,
                "seed": self.seed, "val_fraction": self.val_fraction, "val_images": self.val_images,
                "test_fraction": self.test_fraction or None, "precision": self.precision, "test_flip": self.test_flip}
        optional = {"transfer": self.transfer, "epoch": self.epoch, "metrics": self.metrics, "versions": self.versions}
        return {**{k: v for k, v in data.items() if v is not None}, **{k: v for k, v in optional.items() if v is not None}}

    @classmethod
    def from_json(cls, data: dict[str, Any], where: Path) -> "RunMeta":
        for key in ("model", "num_classes", "in_chans"):
            if key not in data:
                raise CheckpointError(f"{where} has no {key!r}: it is not a cnnlab checkpoint")
        normalization = data.get("normalization") or {}
        sizes = {key: tuple(data[key]) if data.get(key) else None for key in ("input_size", "stored_size")}
        try:
            return cls(model=data["model"], num_classes=int(data["num_classes"]), in_chans=int(data["in_chans"]),
                       model_kwargs=dict(data.get("model_kwargs") or {}), data=data.get("data"),
                       class_names=tuple(data.get("class_names") or ()), **sizes,
                       mean=tuple(normalization["mean"]) if "mean" in normalization else None,
                       std=tuple(normalization["std"]) if "std" in normalization else None,
                       seed=int(data.get("seed", 0)), val_fraction=float(data.get("val_fraction", 0.1)),
                       val_images=data.get("val_images"),
                       test_fraction=float(data.get("test_fraction") or 0.0), precision=data.get("precision", "float32"),
                       test_flip=bool(data.get("test_flip")), transfer=data.get("transfer"), epoch=data.get("epoch"),
                       metrics=data.get("metrics"), versions=data.get("versions"))
        except (TypeError, ValueError) as error:
            raise CheckpointError(f"{where} has a malformed field ({error}); it was edited or is damaged") from None


def save_checkpoint(folder: Path, name: str, model: torch.nn.Module, meta: RunMeta,
                    training_state: dict[str, Any] | None = None) -> Path:
    """Write NAME.safetensors, NAME.state.pt (when given) and then NAME.json, each atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    weights = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
    temporary = folder / f".{name}.safetensors.tmp-{os.getpid()}"
    save_file(weights, str(temporary))
    os.replace(temporary, folder / f"{name}.safetensors")
    if training_state is not None:
        temporary = folder / f".{name}.state.pt.tmp-{os.getpid()}"
        torch.save(training_state, temporary)
        os.replace(temporary, folder / f"{name}.state.pt")
    atomic_write_text(folder / f"{name}.json", json.dumps(replace(meta, versions=versions()).to_json(), indent=2))
    return folder / f"{name}.json"


def resolve(path: str | Path) -> Path:
    """The .json of a checkpoint given as a run folder (its best, else last), a .json, a
    .safetensors, or a name without suffix."""
    path = Path(path)
    if path.is_dir():
        for candidate in ("best", "last"):
            if (path / f"{candidate}.json").is_file():
                return path / f"{candidate}.json"
        raise CheckpointError(f"{path} holds no checkpoint (no best.json or last.json); train into it first")
    if path.suffix in (".safetensors", ".json", ".pt"):
        path = path.with_name(path.name.split(".")[0] + ".json")
    elif not path.suffix:
        path = path.with_suffix(".json")
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: give a run folder, or a checkpoint's .json or .safetensors")
    return path


def read_meta(json_path: Path) -> RunMeta:
    """The checkpoint's RunMeta, from NAME.json."""
    try:
        data = json.loads(json_path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{json_path} is not a readable checkpoint description ({error}); it is damaged") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{json_path} holds no checkpoint description: it is not a cnnlab checkpoint")
    return RunMeta.from_json(data, json_path)


def load_weights(json_path: Path) -> dict[str, torch.Tensor]:
    weights_path = json_path.with_name(json_path.name[: -len(".json")] + ".safetensors")
    if not weights_path.is_file():
        raise CheckpointError(f"{weights_path} is missing: the checkpoint is incomplete")
    try:
        return load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{weights_path} is corrupt or truncated ({str(error).splitlines()[0]}); "
                              "use another checkpoint (e.g. last instead of best)") from None


def load_training_state(json_path: Path) -> dict[str, Any]:
    state_path = json_path.with_name(json_path.name[: -len(".json")] + ".state.pt")
    if not state_path.is_file():
        raise CheckpointError(f"{state_path} is missing: this checkpoint cannot resume training")
    try:
        return torch.load(state_path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises several types for damaged or unsafe files
        raise CheckpointError(f"{state_path} cannot be read safely ({str(error).splitlines()[0][:200]}); "
                              "it is damaged or holds more than tensors") from None


LOCK_NAME = ".cnnlab.lock"


class RunFolderLock:
    """One writer per run folder: an exclusive OS lock (flock) on RUN/.cnnlab.lock, held while a
    run writes. The kernel releases it when the process ends, however it ends (SIGKILL too), so a
    killed run never leaves a stale lock. Readers (evaluate, report) take no lock: every file is
    replaced atomically, so they see whole checkpoints."""

    def __init__(self, folder: Path) -> None:
        import fcntl

        folder = Path(folder)
        if folder.exists() and not folder.is_dir():
            raise CnnlabError(f"{folder} is a file; give a folder for the run")
        self.folder, self.created = folder, not folder.exists()
        folder.mkdir(parents=True, exist_ok=True)
        self.handle = open(folder / LOCK_NAME, "a+")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._holder()
            self.handle.close()
            raise CnnlabError(f"{folder} is being written by {holder}; wait for that run to finish (or stop it), or "
                              "choose another --out") from None
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(f"process {os.getpid()} on {platform.node()}")
        self.handle.flush()

    def _holder(self) -> str:
        """Who holds the lock, as it wrote itself into the file; it writes just after it locks, so a
        process that meets the lock in between waits a moment for the name."""
        import time

        for _ in range(50):
            self.handle.seek(0)
            holder = self.handle.read().strip()
            if holder:
                return holder
            time.sleep(0.02)
        return "another process"

    def release(self) -> None:
        """Unlock; a folder this lock created and nothing else wrote to is removed again."""
        if self.handle.closed:
            return
        self.handle.close()  # closing the descriptor releases the flock
        lock_file = self.folder / LOCK_NAME
        if self.created and [p.name for p in self.folder.iterdir()] == [LOCK_NAME]:
            lock_file.unlink(missing_ok=True)
            self.folder.rmdir()
