"""What every experiment shares: budgets, training one arm over several seeds, the spread over
seeds, and the verdict rule.

An experiment trains *arms* (the variants its claim compares) under one `Plan`: the same images,
order, epochs, batch size, optimizer and schedule for every arm, on the CPU's native precision
(bf16 where the hardware has it; train/precision.py). Each arm runs once per seed (the seed sets
the initialization and the batch order; the images stay the same), so every figure comes with its
spread, and a difference counts as shown only when it is larger than that spread.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from cnnlab.data import Normalization, image_stats, load_source, make_batches, stratified_split
from cnnlab.data.augment import parse_augment
from cnnlab.train import precision
from cnnlab.train.loop import NonFiniteLoss, train_epoch
from cnnlab.train.metrics import evaluate_batches

TIERS = ("quick", "standard", "long", "full")
SEEDS = {"quick": (0,), "standard": (0, 1), "long": (0, 1), "full": (0, 1, 2)}
# "shown": every half of the claim; "shown with a caveat": its core, a secondary part not (named);
# "not decided at this budget": a half this budget cannot decide (a longer one can, and says so)
VERDICTS = ("shown", "shown with a caveat", "not decided at this budget", "not shown")


@dataclass(frozen=True)
class Plan:
    """How every arm of an experiment trains. `images` training images (the first of a stratified
    shuffle of the training split), `epochs` passes over them; the test error is probed `probes`
    times on `probe_images` test images (a per-iteration curve) and measured at the end on up to
    `test_images` of them."""

    images: int
    epochs: int
    batch_size: int = 128
    optimizer: str = "sgd"  # sgd (momentum 0.9) or adam
    lr: float = 0.05
    weight_decay: float = 0.0
    schedule: str = "onecycle"  # onecycle (20% warm-up, then anneal), step (/10 at 50% and 75%, He et al.), constant
    warmup: float = 0.0  # step: this share of the steps at a tenth of the rate first (He et al.'s warm-up for deep nets)
    # step: a tenth of the rate until the running training error falls below this (He et al. Sec. 4.2 warm
    # resnet-110 up at 0.01 "until the training error is below 80%"), then the rate; 0: no such rule
    warmup_until_error: float = 0.0
    size: int | None = None  # input side (the data's own when None)
    augment: str = "none"
    probes: int = 0  # 0: one probe per epoch
    probe_images: int = 1000
    test_images: int = 10_000
    # held-out training images (the next ones after the `images` trained on) on which a learning rate
    # is chosen without looking at the test split; 0: none
    validation_images: int = 0
    channels_last: bool = False

    @property
    def probe_count(self) -> int:
        return self.probes or self.epochs

    def describe(self, data: str, rates: tuple[float, ...] | None = None) -> str:
        """One line: images, epochs, batch, optimizer, rate (`rates`: the arms' rates), schedule, extras."""
        extra = f", augmentation {parse_augment(self.augment).describe()}" if self.augment != "none" else ""
        warm = f", the first {self.warmup:.0%} of the steps at lr {self.lr / 10:g}" if self.warmup else ""
        if self.warmup_until_error:
            warm = (f", lr {self.lr / 10:g} until the running training error falls below "
                    f"{self.warmup_until_error:.0%} (He et al.'s warm-up)")
        size = f", {self.size}x{self.size} input" if self.size else ""
        decay = f", weight decay {self.weight_decay:g}" if self.weight_decay else ""
        return (f"{self.images:,} {data} images x {self.epochs} epochs, batch {self.batch_size}, {self.optimizer} "
                f"lr {'/'.join(f'{r:g}' for r in rates) if rates else f'{self.lr:g}'} ({self.schedule}{warm}){decay}{size}{extra}")


@dataclass
class Context:
    """What an experiment is run with: where it writes, its budget tier, its data, how it reports."""

    out: Path
    tier: str
    data: str
    log: Callable[[str], None] = print
    progress_factory: Callable[[int], "Progress"] | None = None
    progress: "Progress | None" = None
    name: str = ""  # the experiment's: its finished runs are kept under OUT/.arms/NAME until it ends
    resume: bool = False  # reuse the runs an interrupted run of this experiment finished

    def __post_init__(self) -> None:
        self.store = RunStore(self.out / ".arms" / self.name, self.tier, self.data) if self.name else None
        self.kept_seconds = 0.0  # the training time of the runs taken back: part of the experiment's time
        if self.store is not None and not self.resume:
            self.store.clear()

    @property
    def quick(self) -> bool:
        return self.tier == "quick"

    @property
    def seeds(self) -> tuple[int, ...]:
        return SEEDS[self.tier]

    def pick(self, quick, standard, full=None, long=None):
        """The value for this tier (`full` and `long` fall back to `standard`)."""
        return {"quick": quick, "standard": standard, "full": standard if full is None else full,
                "long": standard if long is None else long}[self.tier]

    def announce(self, plan_text: str, steps: int) -> None:
        """Say the budget before the work starts and open the progress bar over its `steps`."""
        self.log(f"budget ({self.tier}, seeds {', '.join(map(str, self.seeds))}): {plan_text}")
        if self.progress_factory is not None:
            self.close()
            self.progress = self.progress_factory(steps)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.close()
            self.progress = None

    def train(self, build: Callable[[], nn.Module], plan: Plan, label: str, **options) -> "Arm":
        """Train a fresh `build()` once per seed under `plan`; the arm's runs and their spread. Each
        finished run is kept (OUT/.arms/NAME), so that a resumed experiment takes it back instead."""
        runs, kept = [], 0
        for seed in self.seeds:
            torch.manual_seed(seed)
            model = build()
            run = self.store.load(label, plan, seed, model) if self.store is not None and self.resume else None
            if run is None:
                run = train_once(model, plan, self.data, seed, label=label, progress=self.progress, **options)
                if self.store is not None:
                    self.store.save(label, plan, seed, run)
            else:
                kept += 1
                self.kept_seconds += run.get("seconds", 0.0)
                if self.progress is not None:
                    self.progress.advance(f"{label}, seed {seed}", steps_of(plan, 1, 1))
            runs.append(run)
        arm = Arm(label, runs)
        self.log(f"  {label}: {arm.line()}" + (f" (kept from the interrupted run: {kept} of {len(runs)} seeds)" if kept else ""))
        return arm


class RunStore:
    """The finished runs of an experiment in progress, one pair of files per arm and seed: the run's
    figures (JSON) and the trained weights (safetensors). The JSON is written last and names the
    weights' digest, so a run cut off while saving is trained again, never half read back. A run is
    found by its arm, seed, plan, tier and data: a changed plan trains again."""

    def __init__(self, folder: Path, tier: str, data: str) -> None:
        self.folder, self.tier, self.data = folder, tier, data

    def _stem(self, label: str, plan: Plan, seed: int) -> str:
        key = json.dumps([self.tier, self.data, label, seed, repr(plan)])
        return f"{seed}-{hashlib.sha256(key.encode()).hexdigest()[:20]}"

    def save(self, label: str, plan: Plan, seed: int, run: dict[str, Any]) -> None:
        from safetensors.torch import save

        from cnnlab.checkpoint import atomic_write_bytes, atomic_write_text

        self.folder.mkdir(parents=True, exist_ok=True)
        stem = self._stem(label, plan, seed)
        digest = None  # a run that diverged has no trained model to keep
        if "model" in run:
            weights = save({k: v.detach().contiguous() for k, v in run["model"].state_dict().items()})
            atomic_write_bytes(self.folder / f"{stem}.safetensors", weights)
            digest = hashlib.sha256(weights).hexdigest()
        record = {"label": label, "seed": seed, "sha256": digest, "run": {k: v for k, v in run.items() if k != "model"}}
        atomic_write_text(self.folder / f"{stem}.json", json.dumps(record))

    def load(self, label: str, plan: Plan, seed: int, model: nn.Module) -> dict[str, Any] | None:
        """The kept run with `model` holding its trained weights, or None (not kept, or damaged)."""
        from safetensors.torch import load

        stem = self._stem(label, plan, seed)
        try:
            record = json.loads((self.folder / f"{stem}.json").read_text())
            if record["label"] != label:
                return None
            if record["sha256"] is None:  # it diverged: its figures are all there is
                return record["run"]
            weights = (self.folder / f"{stem}.safetensors").read_bytes()
            if hashlib.sha256(weights).hexdigest() != record["sha256"]:
                return None
            model.load_state_dict(load(weights))
        except (OSError, ValueError, KeyError, RuntimeError):
            return None
        return {**record["run"], "model": model}

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        try:
            self.folder.parent.rmdir()  # OUT/.arms, once no experiment keeps runs there
        except OSError:
            pass


class Progress:
    """A rich progress bar over every training step of an experiment, with the time remaining."""

    def __init__(self, title: str, total_steps: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn, \
            TimeRemainingColumn

        self.bar = Bar(TextColumn(title), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[arm]}"),
                       TimeElapsedColumn(), TimeRemainingColumn(), transient=True)
        self.task = self.bar.add_task(title, total=total_steps, arm="")
        self.bar.start()

    def advance(self, arm: str, steps: int = 1) -> None:
        self.bar.update(self.task, advance=steps, arm=arm)

    def close(self) -> None:
        self.bar.stop()


def steps_of(plan: Plan, arms: int, seeds: int) -> int:
    return arms * seeds * plan.epochs * (plan.images // plan.batch_size)


# -- the data, split once per data set ---------------------------------------------------------
@dataclass(frozen=True)
class Split:
    train: Any  # ImageSet
    test: Any
    num_classes: int
    class_names: tuple[str, ...]


@functools.lru_cache(maxsize=4)
def split_of(data: str) -> Split:
    """The training images in a stratified shuffled order, and the test images in one too (the
    published test split; 20% of the training images held out where there is none)."""
    source = load_source(data)
    train = source.train
    if source.test is None:
        kept, held = stratified_split(train.labels, 0.2, seed=0)
        train, test = train.subset(kept), train.subset(held)
    else:
        test = source.test
    shuffled = lambda images: images.subset(torch.randperm(len(images), generator=torch.Generator().manual_seed(0)))
    return Split(shuffled(train), shuffled(test), len(source.class_names), tuple(source.class_names))


# -- one arm, one seed ------------------------------------------------------------------------
def _optimizer(groups, plan: Plan) -> torch.optim.Optimizer:
    if plan.optimizer == "adam":
        return torch.optim.Adam(groups, lr=plan.lr, weight_decay=plan.weight_decay)
    return torch.optim.SGD(groups, lr=plan.lr, momentum=0.9, weight_decay=plan.weight_decay)


class WarmUntil:
    """He et al.'s warm-up (Sec. 4.2): a tenth of the rate until the running training error, over the
    last `window` steps, falls below `error`; then the full rate for the rest of training. `record`
    is told each step's errors; `warm` says whether the warm-up still holds, `ended_at` the step."""

    def __init__(self, error: float, window: int = 20) -> None:
        self.error, self.window = error, window
        self.recent: list[float] = []
        self.warm, self.ended_at = error > 0, None

    def record(self, step: int, wrong: float, seen: int) -> None:
        if not self.warm or not seen:
            return
        self.recent = (self.recent + [wrong / seen])[-self.window:]
        if len(self.recent) == self.window and sum(self.recent) / self.window < self.error:
            self.warm, self.ended_at = False, step


def _schedule(optimizer, plan: Plan, steps: int, warm_until: WarmUntil | None = None):
    if plan.schedule == "step":
        warm = round(plan.warmup * steps)

        def factor(step: int) -> float:
            warming = warm_until.warm if warm_until is not None and plan.warmup_until_error else step < warm
            return (0.1 if warming else 1.0) * 0.1 ** ((step >= steps // 2) + (step >= steps * 3 // 4))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    if plan.schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    maxima = [group["lr"] for group in optimizer.param_groups]
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=maxima, total_steps=steps, pct_start=0.2)


def train_once(model: nn.Module, plan: Plan, data: str, seed: int, label: str = "", progress: Progress | None = None,
               train_set=None, test_set=None, parameter_groups: list[dict] | None = None) -> dict[str, Any]:
    """Train `model` under `plan` with `seed`; its history (one point per probe: iteration, running
    training error and loss since the last probe, test error on the probe images) and the end
    figures: `train_error` (the running error over the last probe interval, as He et al. plot
    it), `clean_train_error` (eval mode, on up to 2,000 of the training images), `test_error`.
    With `plan.validation_images`, `validation_error` on that many training images not trained on.
    `train_set`/`test_set` replace the data's own (transfer); `parameter_groups` the optimizer's
    single group (per-group learning rates, frozen layers left out)."""
    split = split_of(data)
    train = train_set if train_set is not None else split.train.subset(torch.arange(min(plan.images, len(split.train))))
    validation = None
    if plan.validation_images:
        if train_set is not None or plan.images + plan.validation_images > len(split.train):
            raise ValueError(f"{plan.validation_images} validation images after {plan.images} training images: "
                             f"the training split has {len(split.train)}")
        validation = split.train.subset(torch.arange(plan.images, plan.images + plan.validation_images))
    test = test_set if test_set is not None else split.test
    normalization = Normalization(*image_stats(train))
    side = plan.size or train.shape[-1]
    batch_size = min(plan.batch_size, len(train))
    batches = make_batches(train, batch_size, size=side, normalization=normalization, augment=parse_augment(plan.augment),
                           shuffle=True, seed=seed, drop_last=True)
    probe_set = test.subset(torch.arange(min(plan.probe_images, len(test))))
    probe_batches = make_batches(probe_set, 500, size=side, normalization=normalization)
    autocast = precision.resolve("auto", torch.device("cpu")).autocast(torch.device("cpu"))
    memory_format = torch.channels_last if plan.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    optimizer = _optimizer(parameter_groups or [{"params": [p for p in model.parameters() if p.requires_grad]}], plan)
    steps = plan.epochs * len(batches)
    warm_until = WarmUntil(plan.warmup_until_error)
    schedule = _schedule(optimizer, plan, steps, warm_until)
    probe_at = sorted({max(1, round(steps * (k + 1) / plan.probe_count)) for k in range(plan.probe_count)})
    history, num_classes = [], split.num_classes
    window = {"loss": 0.0, "correct": 0.0, "seen": 0}  # the sums at the last probe
    started, step, diverged = time.perf_counter(), 0, False
    last = {"correct": 0.0, "seen": 0}  # the epoch's sums at the previous step (the warm-up's running error)

    def after(micro: int, loss_sum: torch.Tensor, correct: torch.Tensor, seen: int) -> None:
        """Progress, and at a probe step the running training figures since the last probe and the test error."""
        at = step + micro + 1
        if progress is not None:
            progress.advance(f"{label}, seed {seed}")
        if warm_until.warm:
            if micro == 0:
                last.update(correct=0.0, seen=0)
            right = correct.item()
            images = seen - last["seen"]
            warm_until.record(at, images - (right - last["correct"]), images)
            last.update(correct=right, seen=seen)
        if at in probe_at:
            loss, right = loss_sum.item(), correct.item()
            images = seen - window["seen"]
            probe = evaluate_batches(model, probe_batches, num_classes, autocast=autocast)
            history.append({"iteration": at, "epoch": at / len(batches),
                            "train_loss": (loss - window["loss"]) / images,
                            "train_error": 1 - (right - window["correct"]) / images, "test_error": 1 - probe["top1"]})
            window.update(loss=loss, correct=right, seen=seen)
            model.train()

    for epoch in range(plan.epochs):
        batches.set_epoch(epoch)
        model.train()
        try:
            loss_sum, correct, seen = train_epoch(model, batches, len(batches), optimizer, schedule, autocast,
                                                  channels_last=plan.channels_last, on_step=after)
        except NonFiniteLoss as error:
            step, diverged = step + error.micro, True
            break
        step += len(batches)
        # the next epoch's sums start from zero: carry what this one trained since its last probe
        window.update(loss=window["loss"] - loss_sum.item(), correct=window["correct"] - correct.item(),
                      seen=window["seen"] - seen)
    if progress is not None and step < steps:
        progress.advance(f"{label}, seed {seed}", steps - step)
    seconds = time.perf_counter() - started
    chance = 1 - 1 / num_classes
    if diverged:
        history.append({"iteration": step, "epoch": step / len(batches), "train_loss": float("nan"),
                        "train_error": chance, "test_error": chance})
        held = {} if validation is None else {"validation_error": chance}
        return {**held, "seed": seed, "chance_error": chance, "diverged": True, "diverged_at": step, "history": history, "train_error": chance,
                "clean_train_error": chance, "test_error": chance, "train_loss": float("nan"), "seconds": seconds,
                "images_per_second": step * batch_size / max(seconds, 1e-9)}
    clean = train.subset(torch.arange(min(2000, len(train))))
    clean_train = evaluate_batches(model, make_batches(clean, 500, size=side, normalization=normalization), num_classes,
                                   autocast=autocast)
    tested = evaluate_batches(model, make_batches(test.subset(torch.arange(min(plan.test_images, len(test)))), 500, size=side,
                                                  normalization=normalization), num_classes, autocast=autocast)
    held = {} if validation is None else {"validation_error": 1 - evaluate_batches(
        model, make_batches(validation, 500, size=side, normalization=normalization), num_classes, autocast=autocast)["top1"]}
    return {**held, "seed": seed, "chance_error": chance, "diverged": False, "history": history, "warmup_ended_at": warm_until.ended_at,
            "train_error": history[-1]["train_error"],
            "train_loss": history[-1]["train_loss"], "clean_train_error": 1 - clean_train["top1"],
            "test_error": 1 - tested["top1"], "seconds": seconds, "images_per_second": steps * batch_size / max(seconds, 1e-9),
            "model": model}


# -- the spread over seeds, and the verdict rule -------------------------------------------------
@dataclass
class Arm:
    """One arm's runs, one per seed."""

    label: str
    runs: list[dict[str, Any]]

    def values(self, key: str) -> list[float]:
        return [run[key] for run in self.runs]

    def mean(self, key: str) -> float:
        return statistics.fmean(self.values(key))

    def spread(self, key: str) -> float:
        """max - min over the seeds (0 with one seed)."""
        values = self.values(key)
        return max(values) - min(values)

    @property
    def diverged(self) -> bool:
        return any(run["diverged"] for run in self.runs)

    def line(self) -> str:
        seconds = sum(run["seconds"] for run in self.runs)
        if all(run["diverged"] for run in self.runs):
            return f"diverged (loss not finite at step {self.runs[0]['diverged_at']}) ({seconds:.0f} s)"
        return (f"train error {pm(self, 'train_error')}, test error {pm(self, 'test_error')} over seeds "
                f"{', '.join(str(run['seed']) for run in self.runs)} ({seconds:.0f} s)")

    def record(self) -> dict[str, Any]:
        """The arm as JSON: every run without its model, and the means and spreads."""
        runs = [{k: v for k, v in run.items() if k != "model"} for run in self.runs]
        keys = ("train_error", "clean_train_error", "test_error", "train_loss") + \
            (("validation_error",) if all("validation_error" in run for run in self.runs) else ())
        return {"label": self.label, "runs": runs, **{f"{k}_mean": self.mean(k) for k in keys},
                **{f"{k}_spread": self.spread(k) for k in keys}}

    def row(self, **extra) -> dict[str, Any]:
        """A table row: the means and spreads that tables print."""
        return {**extra, "train_error": self.mean("train_error"), "test_error": self.mean("test_error"),
                "test_error_spread": self.spread("test_error"), "seeds": len(self.runs)}


def best_rate(by_rate: dict[float, Arm]) -> tuple[float, Arm]:
    """The rate, and its arm, with the lowest mean validation error over the seeds (the fair protocol
    when two arms differ in a way that moves the best rate: each gets its own, chosen on held-out
    training images, never on the test split). A rate at which any seed diverged comes last."""
    return min(by_rate.items(), key=lambda item: (item[1].diverged, item[1].mean("validation_error")))


def grid_edge(rates: tuple[float, ...], lr: float) -> str:
    """"" when `lr` lies inside the grid; else which edge it is, for the reason to say that the best
    rate was not bracketed (a better one may lie beyond the grid). A one-rate grid has no edge."""
    if len(rates) < 2 or min(rates) < lr < max(rates):
        return ""
    return "the grid's top: a higher rate may do better" if lr == max(rates) else "the grid's bottom: a lower rate may do better"


def pm(arm: Arm, key: str) -> str:
    """"12.34% ± 0.56" (mean, half the range over seeds)."""
    text = f"{100 * arm.mean(key):.2f}%"
    return text + (f" ± {50 * arm.spread(key):.2f}" if len(arm.runs) > 1 else "")


def below(low: Arm, high: Arm, key: str = "test_error") -> bool:
    """True when every seed of `low` ends below every seed of `high`: a difference larger than
    the seed-to-seed spread (with one seed, simply lower)."""
    return max(low.values(key)) < min(high.values(key))


def stuck(arms) -> list[str]:
    """The arms that ended near chance: a test error above 80% of the chance error."""
    return [arm.label for arm in arms if arm.mean("test_error") > 0.8 * arm.runs[0]["chance_error"]]


NOT_LEARNED = "did not learn at this budget"


def learned(arms, verdict: str, reason: str) -> tuple[str, str]:
    """The verdict and reason, unless an arm ended near chance: then nothing is decided, and the
    reason says which arm did not learn."""
    stuck_arms = stuck(arms)
    if not stuck_arms:
        return verdict, reason
    return "not decided at this budget", (f"{', '.join(stuck_arms)} {NOT_LEARNED} (test error near chance), so the comparison "
                         f"decides nothing; {reason}")


def gap_text(low: Arm, high: Arm, key: str = "test_error") -> str:
    """"1.23 points (seed spread up to 0.45)": the difference of the means and the larger of the two spreads."""
    return (f"{100 * (high.mean(key) - low.mean(key)):.2f} points (seed spread up to "
            f"{100 * max(low.spread(key), high.spread(key)):.2f})")


def mean_curve(arm: Arm, key: str) -> tuple[list[float], list[float]]:
    """Iterations and the mean of `key` over the seeds at each probe (runs that stopped early end
    their curve there)."""
    length = min(len(run["history"]) for run in arm.runs)
    xs = [arm.runs[0]["history"][i]["iteration"] for i in range(length)]
    ys = [statistics.fmean(run["history"][i][key] for run in arm.runs) for i in range(length)]
    return xs, ys


