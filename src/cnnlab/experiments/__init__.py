"""The seeds' claims as experiments anyone can rerun: `cnnlab experiment NAME|all [--quick|--full]`.

    degradation            deeper plain nets train worse; residual nets do not (seed 001 Fig. 1, seed 003)
    batchnorm              BatchNorm allows higher learning rates and converges faster (seeds 000/001)
    small-filters          three stacked 3x3 convs against one 7x7: same field, fewer parameters, as accurate (seeds 000/003)
    inception-bottleneck   the naive inception module against 1x1 bottlenecks: counted ops and time (seed 000)
    gap-vs-flatten         global average pooling against flatten + FC heads on a ResNet backbone (seeds 003/004)
    overlapping-pooling    AlexNet's 3x3/2 pools against 2x2/2 (seed 003)
    relu-vs-sigmoid        ReLU trains faster than the sigmoid, across initializations (seed 001)
    dropout-augmentation   dropout and augmentation lower the test error of a net that overfits (seed 001)
    first-layer            ZFNet's 7x7/2 first layer against AlexNet's 11x11/4, and both untrained: dead filters, frequencies (seeds 000/003)
    transfer               frozen features, fine-tuning, progressive rates from a related source against scratch (seed 003)
    lrn                    local response normalization does not help, each arm at its best rate (seed 003, the VGG paper)

Four budgets: `quick` (seconds; what the tests run), `standard` (the default: designed so its
figures decide the claim on 2 CPU cores in at most 15 minutes each), `long` (degradation's second
half: about 95 minutes, a background run) and `full` (the papers'
budgets, for a GPU). Each experiment writes OUT/NAME.json (every figure, every seed's history,
the budget, what of the claim is still open) and OUT/NAME.png, and gives a verdict: shown, shown
with a caveat, not decided at this budget, or not shown.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from cnnlab.errors import CnnlabError
from cnnlab.experiments.core import TIERS, Context, Progress
from cnnlab.experiments.result import Result, open_parts


@dataclass(frozen=True)
class Experiment:
    name: str
    run: Callable[[Context], Result]
    # the standard budget's time on this project's 2-core CPU (bf16), measured on the AMD EPYC (AVX512-BF16,
    # no AMX); the Intel Xeon with AMX-BF16 took 1/2.6 to 1/1.9 of it for the same runs
    minutes: float
    long_minutes: float | None = None  # the --long budget's bound, for the experiments that have one

    @property
    def summary(self) -> str:
        return next(line.split(None, 1)[1] for line in __doc__.splitlines() if line.strip().startswith(self.name + " "))


def _experiments() -> dict[str, Experiment]:
    from cnnlab.experiments import alexnet, depth, filters, heads, normalization, transfer

    table = [
        Experiment("degradation", depth.degradation, 20.2, long_minutes=95),  # --long: 93.2 min measured (AMD)
        Experiment("batchnorm", normalization.batchnorm, 4.1),
        Experiment("small-filters", filters.small_filters, 3.9),
        Experiment("inception-bottleneck", filters.inception_bottleneck, 0.1),
        Experiment("gap-vs-flatten", heads.gap_vs_flatten, 8.3),
        Experiment("overlapping-pooling", alexnet.overlapping_pooling, 7.7),
        Experiment("relu-vs-sigmoid", alexnet.relu_vs_sigmoid, 4.5),
        Experiment("dropout-augmentation", alexnet.dropout_augmentation, 6.9),
        Experiment("first-layer", filters.first_layer, 5.1),
        Experiment("transfer", transfer.transfer, 9.2),
        Experiment("lrn", normalization.lrn, 10.3),
    ]
    return {experiment.name: experiment for experiment in table}


EXPERIMENTS: dict[str, Experiment] = _experiments()


def expected_time(name: str, tier: str) -> str:
    minutes = EXPERIMENTS[name].minutes
    if tier == "quick":
        return "under a minute"
    if tier == "full":
        return "the papers' budget: hours to days, for a GPU"
    if tier == "long":
        bound = EXPERIMENTS[name].long_minutes
        return (f"at most {bound:g} min on 2 CPU cores in bf16 (run it in the background; --resume continues it)"
                if bound else f"its standard budget (it has no longer one): about {minutes:g} min")
    return f"about {minutes:g} min on 2 CPU cores in bf16"


def _tier(tier: str) -> str:
    if tier not in TIERS:
        raise CnnlabError(f"unknown budget {tier!r}; choose one of {', '.join(TIERS)}")
    return tier


def run_experiment(name: str, out: str | Path = "experiments", tier: str = "standard", data: str = "fashion-mnist",
                   log: Callable[[str], None] = print, progress: bool = False, resume: bool = False) -> Result:
    """Run experiment `name` at budget `tier`, write OUT/NAME.json and its plot; what it found.
    OUT is locked while the experiment writes (one writer per folder). Each finished run (arm and
    seed) is kept under OUT/.arms/NAME until the experiment ends; with `resume` an interrupted
    experiment takes those back and trains only the rest."""
    from cnnlab.checkpoint import RunFolderLock

    if name not in EXPERIMENTS:
        raise CnnlabError(f"unknown experiment {name!r}; choose one of {', '.join(EXPERIMENTS)}")
    tier, out = _tier(tier), Path(out)
    lock = RunFolderLock(out)  # refuses a file, and a folder another process writes
    try:
        return _run(name, out, tier, data, log, progress, resume)
    finally:
        lock.release()


def _run(name: str, out: Path, tier: str, data: str, log, progress: bool, resume: bool = False) -> Result:
    from cnnlab.checkpoint import atomic_write_text, versions
    from cnnlab.train.precision import machine

    ctx = Context(out, tier, data, log, progress_factory=(lambda steps: Progress(name, steps)) if progress else None,
                  name=name, resume=resume)
    started = time.perf_counter()
    try:
        result = EXPERIMENTS[name].run(ctx)
    finally:
        ctx.close()
    # a resumed experiment's time is the whole run's: this part and the training time of the runs it took back
    seconds = time.perf_counter() - started + ctx.kept_seconds
    record = {"experiment": name, "tier": tier, "quick": tier == "quick", "data": data, "claim": result.claim,
              "verdict": result.verdict, "reason": result.reason, "budget": result.budget, "seeds": list(ctx.seeds),
              "open": open_parts(result), "seconds": seconds, "kept_seconds": ctx.kept_seconds, "rows": result.rows, "figures": result.figures, "files": result.files,
              "versions": versions(), "machine": machine()}
    atomic_write_text(out / f"{name}.json", json.dumps(record, indent=2, default=_json_default))
    result.files.append(str(out / f"{name}.json"))
    if ctx.store is not None:
        ctx.store.clear()  # the experiment's JSON holds every run now
    return result


def _json_default(value):
    if hasattr(value, "item"):
        return value.item()
    return float(value)


def run_all(out: str | Path = "experiments", tier: str = "standard", data: str = "fashion-mnist", resume: bool = False,
            log: Callable[[str], None] = print, progress: bool = False,
            on_result: Callable[[Result], None] | None = None) -> list[dict]:
    """Every experiment in turn, then OUT/summary.md, summary.json and summary.png. With `resume`,
    an experiment whose OUT/NAME.json already holds this budget's and data's result is read back
    instead of rerun, and the one that was cut off keeps its finished runs, so an interrupted `all`
    picks up where it stopped."""
    from cnnlab.checkpoint import RunFolderLock

    tier, out = _tier(tier), Path(out)
    lock = RunFolderLock(out)  # refuses a file, and a folder another process writes
    try:
        records = []
        for name in EXPERIMENTS:
            done = _finished(out / f"{name}.json", tier, data) if resume else None
            if done is not None:
                log(f"{name}: kept from {out / (name + '.json')} ({done['verdict']})")
                records.append(done)
                continue
            log(f"{name} ({tier}; expected {expected_time(name, tier)})")
            result = _run(name, out, tier, data, log, progress, resume)
            if on_result is not None:
                on_result(result)
            records.append(json.loads((out / f"{name}.json").read_text()))
        from cnnlab.experiments.summary import write_summary

        write_summary(records, out)
        return records
    finally:
        lock.release()


def _finished(path: Path, tier: str, data: str) -> dict | None:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if record.get("tier") == tier and record.get("data") == data and "verdict" in record else None


__all__ = ["EXPERIMENTS", "Experiment", "Result", "expected_time", "open_parts", "run_all", "run_experiment"]
