"""Crash a short run at each of its writes and renames, resume it, and compare with the run that
was never interrupted. Run as a script (tests/train/test_checkpoint_crashes.py does): prints one
JSON object, {"events": [the name of each event], "outcomes": [one per event]}.

All runs happen in this one process, one after another. A crash is an exception that nothing in
cnnlab catches (a BaseException, as SystemExit is) raised at the k-th `os.fsync` (after cutting
the file being synced to half its length: a torn write) or at the k-th `os.replace` (before the
rename): no later write or rename happens, as after a power cut or SIGKILL. What unwinding runs
instead of a real crash writes nothing: the run folder's lock is released (the kernel would
release it too) and the process group left.

A shortcut keeps it within its share of the suite without skipping a state the files can be left
in: a crash at a folder's fsync leaves the files as a crash at the next event does (a folder's
sync changes no file), so it is counted as covered by that one. (The run draws no picture: its
curves.png is drawn from metrics.jsonl by the CLI and cnnlab.fit, after training.)
"""

import hashlib
import json
import os
import sys
from pathlib import Path

import torch

from cnnlab.data.sources import _mnist_embedded_arrays
from cnnlab.train import TrainConfig, fit

_mnist_embedded_arrays()  # the digits, parsed once (NumPy only)

# 3 epochs of 4 steps: every epoch saves last, and best whenever validation improves
SETTINGS = dict(model="lenet5_modern", data="mnist-embedded", epochs=3, batch_size=32, subset=128, val_fraction=0.25,
                optimizer="sgd", lr=0.05, momentum=0.9, model_kwargs={"activation": "relu", "pool": "max", "batch_norm": True},
                seed=5, augment="digits", dropout=None, amp="none")


class Crash(BaseException):
    """The process's end, as far as the run can tell."""


def run(out: Path, resume: bool, crash_at: int | None = None) -> tuple[str, list[str]]:
    """Run (or resume) the short run into `out`, crashing at event `crash_at`; returns how it
    ended ("finished", "crashed", or the refusal's message) and the events' names (the file synced
    or the rename's target)."""
    events, real_fsync, real_replace = [], os.fsync, os.replace

    def fsync(descriptor):
        path = Path(os.readlink(f"/proc/self/fd/{descriptor}"))
        events.append("fsync the folder" if path.is_dir() else f"fsync {path.name}")
        if len(events) == crash_at:
            if not path.is_dir():
                os.ftruncate(descriptor, os.fstat(descriptor).st_size // 2)
            raise Crash
        real_fsync(descriptor)

    def replace(source, target):
        events.append(f"rename to {Path(target).name}")
        if len(events) == crash_at:
            raise Crash
        real_replace(source, target)

    os.fsync, os.replace = fsync, replace
    try:
        fit(TrainConfig(**SETTINGS, out=str(out), resume=resume), log=lambda *_: None)
        return "finished", events
    except Crash:
        return "crashed", events
    except Exception as error:  # noqa: BLE001 - the refusal's message is the outcome
        return f"{type(error).__name__}: {error}", events
    finally:
        os.fsync, os.replace = real_fsync, real_replace


def fingerprint(out: Path) -> dict:
    """What must equal the uninterrupted run's: both checkpoints' weights and the last one's
    optimizer, schedule and RNG states, bit for bit, and every epoch's figures (the timings aside,
    which differ between any two runs)."""
    timing = ("seconds", "images_per_second")
    untimed = lambda records: [{k: v for k, v in r.items() if k not in timing} for r in records]  # noqa: E731
    state = torch.load(out / "last.state.pt", weights_only=True)
    state["history"] = untimed(json.loads(state["history"]))
    state["best"] = untimed([state["best"]])
    return {"last": hashlib.sha256((out / "last.safetensors").read_bytes()).hexdigest(),
            "best": hashlib.sha256((out / "best.safetensors").read_bytes()).hexdigest(),
            "state": canonical(state),
            "last.json": {**json.loads((out / "last.json").read_text()), "metrics": None, "files": None},
            "history": untimed(json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines())}


def canonical(value):
    """A nested value with each tensor replaced by its dtype, shape and the SHA-256 of its bytes."""
    if isinstance(value, torch.Tensor):
        return [str(value.dtype), list(value.shape), hashlib.sha256(value.contiguous().view(torch.uint8)
                                                                    .numpy().tobytes()).hexdigest()]
    if isinstance(value, dict):
        return {str(key): canonical(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(item) for item in value]
    return value


def main(folder: Path) -> None:
    ended, names = run(folder / "reference", False)
    assert ended == "finished", ended
    expected = fingerprint(folder / "reference")
    outcomes = []
    for k, name in enumerate(names, start=1):
        if name == "fsync the folder" and k < len(names):
            outcomes.append({"k": k, "event": name, "outcome": "covered", "by": k + 1})
            continue
        out = folder / f"crash-{k}"
        ended, _ = run(out, False, crash_at=k)
        if ended != "crashed":
            outcomes.append({"k": k, "event": name, "outcome": f"did not crash ({ended})"})
            continue
        ended, _ = run(out, True)
        if ended != "finished":
            outcomes.append({"k": k, "event": name, "outcome": "refused", "message": ended})
        else:
            outcomes.append({"k": k, "event": name, "outcome": "equal" if fingerprint(out) == expected else "different"})
    print(json.dumps({"events": names, "outcomes": outcomes}))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
