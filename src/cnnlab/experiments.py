"""The seeds' claims as experiments anyone can rerun: `cnnlab experiment NAME [--quick]`.

    degradation           deeper plain nets train worse; residual nets do not (seed 001 Fig. 1, seed 003)
    batchnorm             BatchNorm allows higher learning rates and converges faster (seeds 000/001)
    small-filters         three stacked 3x3 convs against one 7x7: same receptive field, fewer
                          parameters and FLOPs, more non-linearities (seeds 000/003)
    inception-bottleneck  the naive inception module against 1x1 bottlenecks: counted ops and time (seed 000)
    gap-vs-flatten        global average pooling against flatten + FC heads on one backbone (seed 004)

Each writes OUT/NAME.json (every figure), OUT/NAME.png, and prints a table; `quick` is the
CPU-sized run the tests use. Costs come from the analysis module; accuracies from training on a
named data set (Fashion-MNIST by default) with the same budget for every arm.
"""

from __future__ import annotations

import functools
import json
import statistics
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.analysis import summary
from cnnlab.data import Normalization, image_stats, load_source, make_batches, stratified_split
from cnnlab.deploy.bench import time_in_turns
from cnnlab.errors import CnnlabError
from cnnlab.train.checkpoint import atomic_write_text
from cnnlab.train.metrics import evaluate_batches
from cnnlab.viz.plots import pyplot, save_figure


@dataclass
class Result:
    """What an experiment found: table rows, the seeds' claim and whether the figures show it."""

    name: str
    claim: str
    holds: bool | None  # None: this budget cannot show it (said in `note`)
    rows: list[dict[str, Any]]
    figures: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    files: list[str] = field(default_factory=list)


# -- a small, fixed training budget shared by every arm ---------------------------------------
@dataclass
class Budget:
    data: str
    images: int
    epochs: int
    batch_size: int = 128
    seed: int = 0


def budget(data: str, quick: bool, quick_images: int = 4000) -> Budget:
    """The quick budget runs in seconds to a minute on two CPU cores; the full one wants a GPU."""
    return Budget(data, images=quick_images, epochs=4) if quick else Budget(data, images=54000, epochs=20)


def train_arm(model: nn.Module, plan: Budget, lr: float = 1e-3, optimizer: str = "adam", size: int | None = None,
              log: Callable[[str], None] = print, label: str = "") -> dict[str, Any]:
    """Train `model` on the first `plan.images` training images of `plan.data` (validation on the
    held-out 10%); per-epoch train loss/error and val error. Every arm of an experiment gets the
    same images, order, epochs and batch size."""
    source = load_source(plan.data)
    kept, held = stratified_split(source.train.labels, 0.1, seed=plan.seed)
    train, val = source.train.subset(kept[: plan.images]), source.train.subset(held[: max(500, plan.images // 5)])
    normalization = Normalization(*image_stats(train))
    side = size or train.shape[-1]
    torch.manual_seed(plan.seed)
    batches = make_batches(train, plan.batch_size, size=side, normalization=normalization, shuffle=True, seed=plan.seed,
                           drop_last=True)
    val_batches = make_batches(val, 512, size=side, normalization=normalization)
    steps = plan.epochs * len(batches)
    make = torch.optim.Adam if optimizer == "adam" else (lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9))
    opt = make(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.2)
    history = []
    started = time.perf_counter()
    for epoch in range(plan.epochs):
        batches.set_epoch(epoch)
        model.train()
        loss_sum, wrong, seen = 0.0, 0, 0
        for x, y in batches:
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            schedule.step()
            if not torch.isfinite(loss):
                break
            loss_sum += loss.item() * len(y)
            wrong += (logits.argmax(1) != y).sum().item()
            seen += len(y)
        val = evaluate_batches(model, val_batches, len(source.class_names))
        diverged = seen < len(batches) * plan.batch_size
        history.append({"epoch": epoch + 1, "train_loss": loss_sum / max(seen, 1) if not diverged else float("nan"),
                        "train_error": wrong / max(seen, 1) if not diverged else 1.0,
                        "val_error": 1 - val["top1"] if not diverged else 1.0})
        if diverged:
            break
    last = history[-1]
    log(f"  {label}: train loss {last['train_loss']:.4f}, train error {last['train_error']:.2%}, "
        f"val error {last['val_error']:.2%} ({time.perf_counter() - started:.1f} s)")
    return {"history": history, "seconds": time.perf_counter() - started, **{k: last[k] for k in last if k != "epoch"}}


def _curves(name: str, arms: dict[str, dict], out: Path, keys=("train_error", "val_error")) -> Path:
    plt = pyplot()
    figure, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.6), squeeze=False)
    for axis, key in zip(axes.flat, keys):
        for label, arm in arms.items():
            axis.plot([h["epoch"] for h in arm["history"]], [100 * h[key] for h in arm["history"]], marker="o", label=label)
        axis.set(xlabel="epoch", ylabel=key.replace("_", " ") + " (%)", title=key.replace("_", " "))
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.suptitle(name, fontsize=10)
    return save_figure(figure, out / f"{name}.png")


def _bars(name: str, labels: list[str], series: dict[str, list[float]], out: Path) -> Path:
    plt = pyplot()
    figure, axes = plt.subplots(1, len(series), figsize=(4 * len(series), 3.4), squeeze=False)
    for axis, (title, values) in zip(axes.flat, series.items()):
        axis.bar(labels, values, color=["#4477aa", "#ee6677", "#228833", "#ccbb44"][: len(labels)])
        axis.set_title(title, fontsize=9)
        axis.tick_params(axis="x", labelsize=7)
        axis.grid(axis="y", alpha=0.3)
    figure.suptitle(name, fontsize=10)
    return save_figure(figure, out / f"{name}.png")


# -- the experiments -------------------------------------------------------------------------
def degradation(out: Path, quick: bool, data: str, log) -> Result:
    from cnnlab.models import create_model

    plan = budget(data, quick, quick_images=1500)
    arms = {}
    for name in ("plain20", "plain56", "resnet20", "resnet56"):
        model = create_model(name, num_classes=10, in_chans=1)
        arms[name] = train_arm(model, plan, lr=0.05, optimizer="sgd", size=32, log=log, label=name)
    files = [str(_curves("degradation", arms, out))]
    holds = arms["plain56"]["train_error"] > arms["plain20"]["train_error"] and \
        arms["resnet56"]["train_error"] < arms["plain56"]["train_error"]
    rows = [{"model": k, "train_error": v["train_error"], "val_error": v["val_error"], "train_loss": v["train_loss"],
             "seconds": v["seconds"]} for k, v in arms.items()]
    note = ("resnet56 " + ("has" if arms["resnet56"]["train_error"] < arms["resnet20"]["train_error"] else "has not yet")
            + " passed resnet20 at this budget (the paper's Fig. 6 shows it does after 64k iterations at batch 128)")
    return Result("degradation", "plain-56 ends with a higher training error than plain-20 (degradation, not "
                  "overfitting), and resnet-56 with a lower one than plain-56", holds, rows,
                  {"arms": arms, "budget": vars(plan)}, note=note, files=files)


def batchnorm(out: Path, quick: bool, data: str, log) -> Result:
    from cnnlab.models import create_model

    plan = budget(data, quick)
    rates = (0.01, 0.1, 0.5) if quick else (0.01, 0.03, 0.1, 0.3, 1.0)
    arms, rows = {}, []
    for lr in rates:
        for bn in (False, True):
            torch.manual_seed(plan.seed)
            model = create_model("lenet5_modern", activation="relu", pool="max", batch_norm=bn)
            label = f"{'BN' if bn else 'no BN'}, lr {lr:g}"
            arms[label] = train_arm(model, plan, lr=lr, optimizer="sgd", log=log, label=label)
            rows.append({"batch_norm": bn, "lr": lr, "val_error": arms[label]["val_error"],
                         "train_error": arms[label]["train_error"], "epoch1_val_error": arms[label]["history"][0]["val_error"]})
    files = [str(_curves("batchnorm", arms, out))]
    with_bn = [r for r in rows if r["batch_norm"]]
    without = [r for r in rows if not r["batch_norm"]]
    # higher rates: BN's error at the highest rate is lower; faster: its first-epoch error is lower on average
    holds = with_bn[-1]["val_error"] < without[-1]["val_error"] and \
        sum(r["epoch1_val_error"] for r in with_bn) < sum(r["epoch1_val_error"] for r in without)
    return Result("batchnorm", "with BatchNorm the highest learning rate still trains and the first epoch ends at a lower "
                  "error (higher rates, faster convergence)", holds, rows, {"arms": arms, "budget": vars(plan)}, files=files)


def _small_filter_net(stack: bool, width: int = 32) -> nn.Sequential:
    """A stem, then either three 3x3 convs (ReLU after each) or one 7x7 (one ReLU), then a GAP head."""
    block = [nn.Conv2d(width, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
             nn.Conv2d(width, width, 3, padding=1), nn.ReLU()] if stack else [nn.Conv2d(width, width, 7, padding=3), nn.ReLU()]
    return nn.Sequential(OrderedDict([
        ("stem", nn.Conv2d(1, width, 3, padding=1)), ("stem_relu", nn.ReLU()), ("pool", nn.MaxPool2d(2)),
        ("block", nn.Sequential(*block)), ("gap", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()),
        ("fc", nn.Linear(width, 10)),
    ]))


def small_filters(out: Path, quick: bool, data: str, log) -> Result:
    plan = budget(data, quick)
    rows, arms = [], {}
    for stack in (True, False):
        label = "three 3x3" if stack else "one 7x7"
        torch.manual_seed(plan.seed)
        net = _small_filter_net(stack)
        block = summary(net.block, input_size=(32, 14, 14), batch=1)
        rf = max(row.rf or 0 for row in block.rows)
        arms[label] = train_arm(net, plan, lr=3e-3, log=log, label=label)
        rows.append({"block": label, "params": block.totals.params, "flops": block.totals.flops, "receptive_field": rf,
                     "relus": sum(isinstance(m, nn.ReLU) for m in net.block), "val_error": arms[label]["val_error"]})
    files = [str(_bars("small-filters", [r["block"] for r in rows], {
        "block parameters": [r["params"] for r in rows], "block FLOPs (14x14x32)": [r["flops"] for r in rows],
        "val error (%)": [100 * r["val_error"] for r in rows]}, out))]
    stacked, single = rows
    holds = stacked["params"] < single["params"] and stacked["flops"] < single["flops"] and \
        stacked["receptive_field"] == single["receptive_field"] == 7 and stacked["relus"] > single["relus"]
    return Result("small-filters", "three stacked 3x3 convs see the same 7x7 field as one 7x7 conv with fewer parameters "
                  "and FLOPs (27C^2 against 49C^2) and three non-linearities instead of one", holds, rows,
                  {"arms": arms, "budget": vars(plan)},
                  note=f"val error: three 3x3 {stacked['val_error']:.2%}, one 7x7 {single['val_error']:.2%}", files=files)


def inception_bottleneck(out: Path, quick: bool, data: str, log) -> Result:
    from cnnlab.models.googlenet import Inception, NaiveInception

    modules = {"naive": NaiveInception(256, 128, 192, 96), "1x1 bottlenecks": Inception(256, 128, 64, 192, 64, 96, 64)}
    x = torch.randn(8, 256, 28, 28)
    repeats = 3 if quick else 20
    with torch.no_grad():  # timed in turns, as `cnnlab bench` times its forms
        times = time_in_turns({label: functools.partial(module.eval(), x) for label, module in modules.items()},
                              warmup=1, iterations=repeats)
    rows = []
    for label, module in modules.items():
        table = summary(module, input_size=(256, 28, 28), batch=1)
        macs = sum(r.macs for r in table.rows if r.kind == "conv")
        rows.append({"module": label, "conv_macs": macs, "params": table.totals.params,
                     "output_channels": table.totals.output_shape[0],
                     "ms_per_batch_of_8": statistics.median(times[label])})
        log(f"  {label}: {macs:,} multiply-adds, {table.totals.params:,} parameters, "
            f"{rows[-1]['ms_per_batch_of_8']:.1f} ms per batch of 8 (median of {repeats})")
    files = [str(_bars("inception-bottleneck", [r["module"] for r in rows], {
        "conv multiply-adds (M)": [r["conv_macs"] / 1e6 for r in rows], "parameters (K)": [r["params"] / 1e3 for r in rows],
        "time, batch 8 (ms)": [r["ms_per_batch_of_8"] for r in rows]}, out))]
    naive, reduced = rows
    holds = naive["conv_macs"] == 854_196_224 and reduced["conv_macs"] < naive["conv_macs"] / 3 and \
        reduced["ms_per_batch_of_8"] < naive["ms_per_batch_of_8"]
    return Result("inception-bottleneck", "1x1 bottlenecks cut the naive module's 854M multiply-adds to a third or less "
                  "(271M by the slide's own six terms; it prints 358M) and it runs faster", holds, rows,
                  note="seed 000 prints 358M for the bottleneck module; its six terms sum to 271,351,808 (docs/analysis.md)",
                  files=files)


def _gap_net(gap: bool) -> nn.Sequential:
    backbone = [("conv1", nn.Conv2d(1, 32, 3, padding=1)), ("relu1", nn.ReLU()), ("pool1", nn.MaxPool2d(2)),
                ("conv2", nn.Conv2d(32, 64, 3, padding=1)), ("relu2", nn.ReLU()), ("pool2", nn.MaxPool2d(2))]
    head = [("gap", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()), ("fc", nn.Linear(64, 10))] if gap else \
        [("flatten", nn.Flatten()), ("fc1", nn.Linear(64 * 7 * 7, 256)), ("relu3", nn.ReLU()), ("fc", nn.Linear(256, 10))]
    return nn.Sequential(OrderedDict(backbone + head))


def gap_vs_flatten(out: Path, quick: bool, data: str, log) -> Result:
    plan = budget(data, quick)
    rows, arms = [], {}
    for gap in (True, False):
        label = "GAP + FC" if gap else "flatten + FC"
        torch.manual_seed(plan.seed)
        net = _gap_net(gap)
        table = summary(net, input_size=(1, 28, 28), batch=1)
        head = sum(p.numel() for name, p in net.named_parameters() if name.startswith("fc"))
        arms[label] = train_arm(net, plan, lr=2e-3, log=log, label=label)
        rows.append({"head": label, "params": table.totals.params, "head_params": head,
                     "val_error": arms[label]["val_error"], "train_error": arms[label]["train_error"]})
    files = [str(_bars("gap-vs-flatten", [r["head"] for r in rows], {
        "head parameters": [r["head_params"] for r in rows], "val error (%)": [100 * r["val_error"] for r in rows],
        "train error (%)": [100 * r["train_error"] for r in rows]}, out))]
    gap_row, flat_row = rows
    holds = gap_row["head_params"] * 100 < flat_row["head_params"]
    return Result("gap-vs-flatten", "a global-average-pooling head needs a small fraction of the flatten + FC head's "
                  "parameters", holds, rows, {"arms": arms, "budget": vars(plan)},
                  note=f"val error: GAP {gap_row['val_error']:.2%}, flatten {flat_row['val_error']:.2%}", files=files)


EXPERIMENTS: dict[str, Callable[..., Result]] = {
    "degradation": degradation, "batchnorm": batchnorm, "small-filters": small_filters,
    "inception-bottleneck": inception_bottleneck, "gap-vs-flatten": gap_vs_flatten,
}


def run_experiment(name: str, out: str | Path = "experiments", quick: bool = False, data: str = "fashion-mnist",
                   log: Callable[[str], None] = print) -> Result:
    """Run experiment `name`, write OUT/NAME.json and its plot, and return what it found."""
    if name not in EXPERIMENTS:
        raise CnnlabError(f"unknown experiment {name!r}; choose one of {', '.join(EXPERIMENTS)}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CnnlabError(f"{out} is a file; give a folder for the experiment's files")
    out.mkdir(parents=True, exist_ok=True)
    result = EXPERIMENTS[name](out, quick, data, log)
    record = {"experiment": name, "quick": quick, "data": data, "claim": result.claim, "holds": result.holds,
              "note": result.note, "rows": result.rows, "figures": result.figures, "files": result.files}
    atomic_write_text(out / f"{name}.json", json.dumps(record, indent=2, default=float))
    result.files.append(str(out / f"{name}.json"))
    return result
