"""transfer (seed 003's closing section): a network trained on one task, reused on another.

The seeds' premise is a source trained on far more images than the target, on a related task. The
source is half of the data's classes, chosen so that each target class has a relative in it:
Fashion-MNIST's T-shirt, trouser, pullover, sneaker and bag (30,000 images); the target is the other
half, dress, coat, sandal, shirt and ankle boot (tops beside tops, shoes beside shoes), at 10 to 250
images per class. Every mode starts from the same resnet20 trained on the source (one per seed):

    scratch        a fresh resnet20 on the target alone
    linear-probe   the source net frozen (BatchNorm statistics too) as a feature extractor; a new head trains
    finetune       the new head alone first (seed 003: "start with frozen feature extractor"), then
                   every layer at a tenth of the rate ("use a smaller LR")
    progressive    the head first, then rates that shrink x0.3 per stage toward the input, the
                   lowest stage frozen ("smaller rates for the extractor, and even freeze lower layers")

Every mode takes the same number of steps on the target; the test images are the target classes'
own test split.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.experiments.core import Arm, Context, Plan, below, pm, split_of, train_once
from cnnlab.experiments.figures import COLOURS
from cnnlab.experiments.result import Result
from cnnlab.viz.plots import pyplot, save_figure

MODES = ("scratch", "linear-probe", "finetune", "progressive")
LR = 0.1
SOURCE_CLASSES, TARGET_CLASSES = "0,1,2,7,8", "3,4,5,6,9"  # related halves: each target class has a relative


def freeze(module: nn.Module) -> None:
    """No gradients, and eval mode kept through model.train(): BatchNorm statistics stay the source's."""
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    for part in module.modules():
        part.eval()
        part.train = lambda mode=True, part=part: part  # a frozen part never returns to training mode


def _target_subset(images, per_class: int):
    """The first `per_class` images of each class in the (shuffled) target training set."""
    chosen = torch.cat([torch.nonzero(images.labels == label).flatten()[:per_class] for label in images.labels.unique()])
    return images.subset(chosen.sort().values)


def _source_model(ctx: Context, source: str, plan: Plan, seed: int):
    from cnnlab.models import create_model

    torch.manual_seed(seed)
    run = train_once(create_model("resnet20", num_classes=5, in_chans=1), plan, source, seed, label="source",
                     progress=ctx.progress)
    ctx.log(f"  source resnet20, seed {seed}: test error {run['test_error']:.2%} on {source} ({run['seconds']:.0f} s)")
    return run


def _adapt(mode: str, source_state: dict | None, ctx: Context, target: str, train, steps: int, seed: int,
           test_images: int, probe_images: int) -> dict:
    """One target run of `mode`: `steps` optimizer steps in all (a fifth on the head alone first
    for finetune and progressive)."""
    from cnnlab.models import create_model
    from cnnlab.train.transfer import parameter_stages

    torch.manual_seed(seed)
    model = create_model("resnet20", num_classes=5, in_chans=1)
    batch = min(64, len(train))
    per_epoch = len(train) // batch

    def plan(count: int, lr: float = LR) -> Plan:
        epochs = max(1, round(count / per_epoch))
        return Plan(images=len(train), epochs=epochs, batch_size=batch, lr=lr, weight_decay=5e-4, test_images=test_images,
                    channels_last=True, probes=10, probe_images=probe_images)

    if mode == "scratch":
        return train_once(model, plan(steps), target, seed, label=mode, progress=ctx.progress, train_set=train)
    model.load_state_dict({k: v for k, v in source_state.items() if not k.startswith("fc.")}, strict=False)
    head = model.get_classifier()
    backbone = [m for m in model.children() if m is not head]
    if mode == "linear-probe":
        for part in backbone:
            freeze(part)
        return train_once(model, plan(steps), target, seed, label=mode, progress=ctx.progress, train_set=train)
    warm = steps // 5
    model.requires_grad_(False)
    head.requires_grad_(True)
    first = train_once(model, plan(warm), target, seed, label=mode + " (head)", progress=ctx.progress, train_set=train)
    model.requires_grad_(True)  # every layer trains from here (progressive freezes its lowest stage below)
    if mode == "finetune":
        groups = [{"params": list(head.parameters()), "lr": LR},
                  {"params": [p for p in model.parameters() if not any(p is q for q in head.parameters())], "lr": LR / 10}]
    else:
        stage_of, module_stage, boundaries = parameter_stages(model)
        top = len(boundaries)
        for name, module in model.named_modules():
            if module_stage[name] == 0 and not any(True for _ in module.children()):
                freeze(module)
        by_stage: dict[int, list] = {}
        for name, parameter in model.named_parameters():
            if stage_of[name] > 0:
                by_stage.setdefault(stage_of[name], []).append(parameter)
        groups = [{"params": params, "lr": LR / 10 * 0.3 ** (top - stage)} for stage, params in sorted(by_stage.items())]
    run = train_once(model, plan(steps - warm), target, seed, label=mode, progress=ctx.progress, train_set=train,
                     parameter_groups=groups)
    run["seconds"] += first["seconds"]
    offset = first["history"][-1]["iteration"]
    run["history"] = first["history"] + [{**point, "iteration": point["iteration"] + offset} for point in run["history"]]
    return run


def transfer(ctx: Context) -> Result:
    base = ctx.data.split("[")[0]
    source, target = f"{base}[{SOURCE_CLASSES}]", f"{base}[{TARGET_CLASSES}]"
    source_plan = ctx.pick(quick=Plan(images=1024, epochs=2, lr=LR, weight_decay=5e-4, probe_images=250, test_images=500,
                                      channels_last=True),
                           standard=Plan(images=30_000, epochs=3, lr=LR, weight_decay=5e-4, channels_last=True),
                           full=Plan(images=30_000, epochs=30, lr=LR, weight_decay=5e-4, channels_last=True))
    sizes = ctx.pick(quick=(10,), standard=(10, 50, 250), full=(10, 50, 250, 1000, 6000))
    steps = ctx.pick(quick=20, standard=200, full=2000)
    test_images = ctx.pick(quick=500, standard=5000, full=5000)
    probe_images = ctx.pick(quick=250, standard=500, full=500)
    source_steps = source_plan.epochs * (min(source_plan.images, len(split_of(source).train)) // source_plan.batch_size)
    total = len(ctx.seeds) * (source_steps + len(sizes) * len(MODES) * steps)
    ctx.announce(f"source: resnet20 on {source}, {source_plan.describe(source)}; targets: {', '.join(map(str, sizes))} "
                 f"images per class of {target}, {steps} steps each (batch 64, SGD, lr {LR:g}); modes: {', '.join(MODES)}",
                 total)
    split = split_of(target)
    runs: dict[tuple[int, str], list[dict]] = {}
    for seed in ctx.seeds:
        source_run = _source_model(ctx, source, source_plan, seed)
        state = source_run["model"].state_dict()
        for per_class in sizes:
            train = _target_subset(split.train, per_class)
            for mode in MODES:
                run = _adapt(mode, state, ctx, target, train, steps, seed, test_images, probe_images)
                run.pop("model", None)
                runs.setdefault((per_class, mode), []).append(run)
    arms = {key: Arm(f"{key[1]}, {key[0]} per class", value) for key, value in runs.items()}
    for arm in arms.values():
        ctx.log(f"  {arm.label}: {arm.line()}")
    rows = [arm.row(images_per_class=per_class, mode=mode) for (per_class, mode), arm in arms.items()]
    winners = {}
    for per_class in sizes:
        ranked = sorted(MODES, key=lambda mode: arms[per_class, mode].mean("test_error"))
        clear = below(arms[per_class, ranked[0]], arms[per_class, ranked[1]])
        winners[per_class] = (ranked[0], clear)
    files = [str(_figure(arms, sizes, ctx.out, f"transfer from {source} to {target}"))]
    smallest = sizes[0]
    beats = {mode: below(arms[smallest, mode], arms[smallest, "scratch"]) for mode in MODES[1:]}
    parts = [f"at {smallest} per class: scratch {pm(arms[smallest, 'scratch'], 'test_error')}; "
             + "; ".join(f"{mode} {pm(arms[smallest, mode], 'test_error')} "
                         f"({'below scratch in every seed' if beats[mode] else 'not below scratch in every seed'})"
                         for mode in MODES[1:])]
    parts += [f"{per_class} per class: {mode} wins ({pm(arms[per_class, mode], 'test_error')}; "
              f"{'ahead of the next beyond the seed spread' if clear else 'within the seed spread of the next'}), "
              f"scratch {pm(arms[per_class, 'scratch'], 'test_error')}" for per_class, (mode, clear) in winners.items()]
    # the seed's two uses (frozen feature extractor, fine-tuning) are the core; its progressive rates a refinement
    core = beats["linear-probe"] and beats["finetune"]
    verdict = "shown" if all(beats.values()) else "shown with a caveat" if core else "not shown"
    if verdict == "shown with a caveat":
        parts.append(f"the progressive rates do not beat scratch at {smallest} per class")
    return Result("transfer", "a network trained on a large related data set transfers to a small new one: with few "
                  "target images the frozen feature extractor, fine-tuning and fine-tuning with progressive rates each "
                  "beat training from scratch", verdict,
                  "; ".join(parts), rows, {"arms": {arm.label: arm.record() for arm in arms.values()},
                                           "winners": {str(k): v[0] for k, v in winners.items()}},
                  files, f"source {source_plan.describe(source)}; {steps} target steps",
                  open=[f"{mode} beats scratch at {smallest} per class" for mode, ok in beats.items() if not ok])


def _figure(arms: dict, sizes, out, title: str):
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(6.5, 4))
    for colour, mode in zip(COLOURS, MODES):
        means = [100 * arms[size, mode].mean("test_error") for size in sizes]
        spreads = [50 * arms[size, mode].spread("test_error") for size in sizes]
        axis.errorbar(sizes, means, yerr=spreads, marker="o", capsize=3, color=colour, label=mode)
    axis.set(xscale="log", xlabel="target images per class", ylabel="target test error (%)", title=title)
    axis.set_xticks(list(sizes), [str(s) for s in sizes])
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    return save_figure(figure, out / "transfer.png")


