"""Checkpoints that survive a crash at any moment and never run code when read.

A checkpoint named NAME in a run folder is three files:
    NAME.safetensors   the weights (safetensors: tensors only, nothing executable)
    NAME.json          everything needed to rebuild and use the model (name, options, classes,
                       input size, normalization, epoch, metrics, versions), and the SHA-256 of
                       the weights and of the state, which every load checks
    NAME.state.pt      optimizer, scheduler, scaler and RNG states for --resume, read with
                       torch.load(weights_only=True)

A checkpoint switches as a whole. A save stages the new weights and state beside the old ones
(.NAME.next.safetensors, .NAME.next.state.pt), and then writes their description,
.NAME.next.json, atomically: that rename is the commit. The staged files are then renamed into
place, the JSON last. A crash before the commit leaves the previous checkpoint whole (the staged
files are discarded by the next save); a crash after it leaves a generation that readers find
through .NAME.next.json (each file in its staged or its final place, told apart by its digest),
and that the next save, or resume, completes. So a reader never pairs one epoch's weights with
another epoch's state or description.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save

from cnnlab.errors import CnnlabError


class CheckpointError(CnnlabError):
    """A checkpoint that is missing, corrupt, or for another model or data set."""


class CheckpointFallback(UserWarning):
    """A reader took the last complete checkpoint past a newer save that is not committed; the
    command line prints it as one note."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace `path` by `data` as a whole: written to a temporary name, synced, renamed."""
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        _write_durable(temporary, data)
        os.replace(temporary, path)
    except OSError as error:
        _remove_quietly(temporary)
        raise CnnlabError(f"cannot write {path} ({error.strerror or error}); {path.name} is as it was: free some "
                          "space or make the folder writable") from None
    _sync_folder(path.parent)


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
    module: str | None = None  # a module of the user's own ("notebook.MyNet"): `model` names its class, not the zoo
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
        optional = {"module": self.module, "transfer": self.transfer, "epoch": self.epoch, "metrics": self.metrics,
                    "versions": self.versions}
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
                       model_kwargs=dict(data.get("model_kwargs") or {}), module=data.get("module"), data=data.get("data"),
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


# -- the files of one checkpoint ---------------------------------------------------------------
PARTS = {"weights": ".safetensors", "state": ".state.pt"}


def _final(folder: Path, name: str, part: str) -> Path:
    return folder / f"{name}{PARTS[part]}"


def _staged(folder: Path, name: str, part: str) -> Path:
    return folder / f".{name}.next{PARTS[part]}"


def _pending(folder: Path, name: str) -> Path:
    return folder / f".{name}.next.json"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_durable(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _sync_folder(folder: Path) -> None:
    """Make the renames in `folder` durable (a no-op where directories cannot be opened)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def save_checkpoint(folder: Path, name: str, model: torch.nn.Module, meta: RunMeta,
                    training_state: dict[str, Any] | None = None) -> Path:
    """Write checkpoint NAME (weights, the training state when given, then the JSON) so that it
    replaces the previous NAME as one unit: see the module's docstring."""
    folder.mkdir(parents=True, exist_ok=True)
    settle(folder, name)  # an earlier save that crashed after its commit is completed first
    weights = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
    blobs = {"weights": save(weights)}
    if training_state is not None:
        buffer = io.BytesIO()
        torch.save(training_state, buffer)
        blobs["state"] = buffer.getvalue()
    try:
        files = {}
        for part, data in blobs.items():
            _write_durable(_staged(folder, name, part), data)
            files[part] = {"file": _final(folder, name, part).name, "sha256": _sha256(data)}
        description = {**replace(meta, versions=versions()).to_json(), "files": files}
        partial = folder / f".{name}.next.json.partial"
        _write_durable(partial, json.dumps(description, indent=2).encode())
        os.replace(partial, _pending(folder, name))  # the commit
        _sync_folder(folder)
    except OSError as error:  # disk full, a read-only folder: nothing was committed
        _discard_staged(folder, name)
        previous = "the previous one is intact" if checkpoint_exists(folder, name) else "there was none before"
        raise CheckpointError(f"cannot save checkpoint {name!r} in {folder} ({error.strerror or error}); {previous}: "
                              "free some space or make the folder writable, then continue with --resume") from None
    settle(folder, name, verify=False)
    return folder / f"{name}.json"


def settle(folder: Path, name: str, verify: bool = True) -> str | None:
    """Complete a committed save of NAME (rename its staged files into place, the JSON last), or
    discard what an uncommitted one staged; says which, in a line, when there was either. Only the
    run's writer calls it (it holds the lock)."""
    pending = _pending(folder, name)
    description = _read_json(pending) if pending.is_file() else None
    files = description.get("files") if isinstance(description, dict) else None
    if not isinstance(files, dict) or (verify and _locate(folder, name, files) is None):
        interrupted = any(path.exists() for path in [*_uncommitted(folder, name), pending])
        _discard_staged(folder, name)  # no commit (or a damaged one): the staged files are leftovers
        if not interrupted:
            return None
        return (f"{folder}: a save of {name!r} was interrupted before it was committed and is discarded; "
                f"{name!r} is the last complete one" + (f" (epoch {_epoch_of(folder / f'{name}.json')})"
                                                         if (folder / f"{name}.json").is_file() else ""))
    for part in PARTS:
        staged = _staged(folder, name, part)
        if part in files and staged.is_file():
            os.replace(staged, _final(folder, name, part))
        elif part not in files:  # e.g. a state file the new checkpoint does not have
            staged.unlink(missing_ok=True)
            _final(folder, name, part).unlink(missing_ok=True)
    os.replace(pending, folder / f"{name}.json")
    _sync_folder(folder)
    return f"{folder}: a save of {name!r} (epoch {description.get('epoch')}) was committed but not yet in place; completed"


def _epoch_of(json_path: Path) -> Any:
    description = _read_json(json_path)
    return description.get("epoch") if isinstance(description, dict) else None


def _discard_staged(folder: Path, name: str) -> None:
    for path in [*_uncommitted(folder, name), _pending(folder, name)]:
        _remove_quietly(path)


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:  # a read-only folder: the leftover stays, and the next save discards it
        pass


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def _locate(folder: Path, name: str, files: dict[str, Any]) -> dict[str, Path] | None:
    """Where each part of a committed generation is, staged or final: the file whose digest
    matches. None if a part is in neither place."""
    found = {}
    for part, entry in files.items():
        if part not in PARTS:
            continue
        candidates = [path for path in (_staged(folder, name, part), _final(folder, name, part)) if path.is_file()]
        candidates = [path for path in candidates if _sha256(path.read_bytes()) == entry.get("sha256")]
        if not candidates:
            return None
        found[part] = candidates[0]
    return found


@dataclass(frozen=True)
class Generation:
    """One whole checkpoint as a reader finds it: its description and where its parts are."""

    json_path: Path
    description: dict[str, Any]
    parts: dict[str, Path]

    def read(self, part: str) -> bytes:
        """The part's bytes, checked against the digest the description records."""
        files = self.description.get("files")
        if isinstance(files, dict) and part not in files:
            raise CheckpointError(f"{self.json_path} records no training {part}: this checkpoint cannot resume training"
                                  if part == "state" else f"{self.json_path} records no {part}: it is incomplete")
        path = self.parts.get(part, _final(self.json_path.parent, self.json_path.name[: -len(".json")], part))
        if not path.is_file():
            raise CheckpointError(f"{path} is missing: the checkpoint is incomplete"
                                  + ("; it cannot resume training" if part == "state" else ""))
        data = path.read_bytes()
        expected = (files or {}).get(part, {}).get("sha256")
        if expected is not None and _sha256(data) != expected:
            raise CheckpointError(f"{path} does not match the SHA-256 that {self.json_path.name} records: it was "
                                  "damaged or replaced after it was written; use another checkpoint (e.g. last "
                                  "instead of best)")
        return data


def generation(json_path: Path) -> Generation:
    """The checkpoint at NAME.json as it stands: a committed save that is still being put in place
    (.NAME.next.json) wins over NAME.json, whose files it may already have replaced."""
    folder, name = json_path.parent, json_path.name[: -len(".json")]
    for _ in range(3):  # the writer may rename a part between our look and our read
        pending = _pending(folder, name)
        description = _read_json(pending) if pending.is_file() else None
        if isinstance(description, dict) and isinstance(description.get("files"), dict):
            parts = _locate(folder, name, description["files"])
            if parts is not None:
                return Generation(json_path, description, parts)
        if json_path.is_file():
            break
    if not json_path.is_file():
        raise CheckpointError(f"no checkpoint at {json_path}: give a run folder, or a checkpoint's .json or .safetensors")
    try:
        description = json.loads(json_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{json_path} is not a readable checkpoint description ({error}); it is damaged") from None
    if not isinstance(description, dict):
        raise CheckpointError(f"{json_path} holds no checkpoint description: it is not a cnnlab checkpoint")
    if any(path.exists() for path in _uncommitted(folder, name)):
        warnings.warn(f"{folder}: a newer save of {name!r} is not committed (being written, or cut short by a crash); "
                      f"reading the last complete one (epoch {description.get('epoch')})", CheckpointFallback, stacklevel=2)
    return Generation(json_path, description, {part: _final(folder, name, part) for part in PARTS})


def _uncommitted(folder: Path, name: str) -> list[Path]:
    return [*(_staged(folder, name, part) for part in PARTS), folder / f".{name}.next.json.partial"]


def checkpoint_exists(folder: Path, name: str) -> bool:
    """Whether the folder holds checkpoint NAME (whole, or committed and not yet in place)."""
    return (folder / f"{name}.json").is_file() or _pending(folder, name).is_file()


def resolve(path: str | Path) -> Path:
    """The .json of a checkpoint given as a run folder (its best, else last), a .json, a
    .safetensors, or a name without suffix."""
    path = Path(path)
    if path.is_dir():
        for candidate in ("best", "last"):
            if checkpoint_exists(path, candidate):
                return path / f"{candidate}.json"
        raise CheckpointError(f"{path} holds no checkpoint (no best.json or last.json); train into it first")
    if path.suffix in (".safetensors", ".json", ".pt"):
        path = path.with_name(path.name.split(".")[0] + ".json")
    elif not path.suffix:
        path = path.with_suffix(".json")
    if not checkpoint_exists(path.parent, path.name[: -len(".json")]):
        raise CheckpointError(f"no checkpoint at {path}: give a run folder, or a checkpoint's .json or .safetensors")
    return path


def read_meta(json_path: Path) -> RunMeta:
    """The checkpoint's RunMeta, from its description."""
    return RunMeta.from_json(generation(json_path).description, json_path)


def read_parts(json_path: Path, *parts: str) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The description and the bytes of `parts` of one generation of the checkpoint, each part
    checked against its digest. A reader that runs beside the run's writer may see the writer
    replace a part between its look and its read: it reads the new generation instead."""
    found = generation(json_path)
    for _ in range(2):
        try:
            return found.description, {part: found.read(part) for part in parts}
        except CheckpointError:
            newer = generation(json_path)
            if newer.description == found.description:
                raise  # the same generation still: damaged, not replaced by a newer save
            found = newer
    return found.description, {part: found.read(part) for part in parts}


def load_weights(json_path: Path) -> dict[str, torch.Tensor]:
    return _parse_weights(json_path, read_parts(json_path, "weights")[1]["weights"])


def load_checkpoint(json_path: Path) -> tuple[RunMeta, dict[str, torch.Tensor]]:
    """The RunMeta and the weights of one generation of the checkpoint (never one save's
    description with another's weights)."""
    description, data = read_parts(json_path, "weights")
    return RunMeta.from_json(description, json_path), _parse_weights(json_path, data["weights"])


def _parse_weights(json_path: Path, data: bytes) -> dict[str, torch.Tensor]:
    try:
        return load(data)
    except (SafetensorError, ValueError) as error:
        raise CheckpointError(f"{json_path.with_suffix('.safetensors')} is corrupt or truncated "
                              f"({str(error).splitlines()[0]}); use another checkpoint (e.g. last instead of best)"
                              ) from None


def load_training_state(json_path: Path) -> dict[str, Any]:
    data = read_parts(json_path, "state")[1]["state"]
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises several types for damaged or unsafe files
        raise CheckpointError(f"{_final(json_path.parent, json_path.name[: -len('.json')], 'state')} cannot be read "
                              f"safely ({str(error).splitlines()[0][:200]}); it is damaged or holds more than tensors"
                              ) from None


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
        for leftover in folder.glob(".*.tmp-*"):  # what a crashed writer was writing: we are the only writer now
            leftover.unlink(missing_ok=True)

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
