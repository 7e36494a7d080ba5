"""Normalization layers: BatchNorm's higher rates and faster start (seeds 000/001), and LRN,
which AlexNet used and VGG dropped because it did not help (seed 003)."""

from __future__ import annotations

from dataclasses import replace

from cnnlab.experiments.alexnet import alexnet_plan, small_alexnet
from cnnlab.experiments.core import Arm, Context, Plan, below, gap_text, learned, pm, steps_of
from cnnlab.experiments.figures import bars, curves
from cnnlab.experiments.result import Result


# -- batchnorm ----------------------------------------------------------------------------------
def batchnorm(ctx: Context) -> Result:
    from cnnlab.models import create_model

    rates = ctx.pick(quick=(0.01, 0.1, 1.0), standard=(0.01, 0.03, 0.1, 0.3, 1.0))
    # a constant rate (no warm-up that would rescue a rate too high), SGD with momentum 0.9
    budget = ctx.pick(quick=Plan(images=1280, epochs=2, schedule="constant", probe_images=250, test_images=500),
                      standard=Plan(images=20_000, epochs=5, schedule="constant"),
                      full=Plan(images=60_000, epochs=20, schedule="constant"))
    ctx.announce(budget.describe(ctx.data, rates),
                 steps_of(budget, 2 * len(rates), len(ctx.seeds)))
    arms: dict[tuple[float, bool], Arm] = {}
    for lr in rates:
        for bn in (False, True):
            build = lambda bn=bn: create_model("lenet5_modern", activation="relu", pool="max", batch_norm=bn)
            arms[lr, bn] = ctx.train(build, replace(budget, lr=lr), f"{'BN' if bn else 'no BN'}, lr {lr:g}")
    rows = [arm.row(batch_norm=bn, lr=lr, first_epoch_test_error=_first_epoch(arm), diverged=arm.diverged)
            for (lr, bn), arm in arms.items()]
    files = [str(curves("batchnorm", {f"lr {lr:g}": [arms[lr, False], arms[lr, True]] for lr in rates}, ctx.out,
                        title=f"LeNet with and without BatchNorm: {budget.describe(ctx.data, rates)}"))]
    trains = lambda arm: not arm.diverged and arm.mean("test_error") < 0.5  # noqa: E731
    highest = {bn: max((lr for lr in rates if trains(arms[lr, bn])), default=None) for bn in (False, True)}
    higher = highest[True] is not None and (highest[False] is None or highest[True] > highest[False])
    common = [lr for lr in rates if trains(arms[lr, False]) and trains(arms[lr, True])]
    faster = [lr for lr in common if max(_first_epochs(arms[lr, True])) < min(_first_epochs(arms[lr, False]))]
    parts = [f"the highest rate that trains (test error under 50%): {highest[True]} with BatchNorm, {highest[False]} without",
             f"after one epoch BatchNorm is ahead in every seed at {len(faster)} of the {len(common)} rates where both train"]
    verdict = ("shown" if higher and faster and len(faster) == len(common) else
               "shown with a caveat" if higher or faster else "not shown")
    return Result("batchnorm", "with BatchNorm a network trains at higher learning rates, and converges faster (a lower "
                  "error after the first epoch)", verdict, "; ".join(parts), rows,
                  {"arms": {f"{'BN' if bn else 'no BN'}, lr {lr:g}": arm.record() for (lr, bn), arm in arms.items()}},
                  files, budget.describe(ctx.data, rates))


def _first_epochs(arm: Arm) -> list[float]:
    """Each seed's test error at the end of the first epoch: its probe there, or chance for a seed
    that diverged before (the record a diverged run ends with)."""
    return [first_epoch_probe(run)["test_error"] for run in arm.runs]


def first_epoch_probe(run: dict) -> dict:
    """The run's probe at the end of epoch 1, or the divergence record if it diverged sooner."""
    return next((probe for probe in run["history"] if probe["epoch"] >= 1.0), run["history"][-1])


def _first_epoch(arm: Arm) -> float:
    values = _first_epochs(arm)
    return sum(values) / len(values)


# -- lrn ------------------------------------------------------------------------------------------
def lrn(ctx: Context) -> Result:
    budget = alexnet_plan(ctx, images=12_000, epochs=8)
    ctx.announce(f"{budget.describe(ctx.data)}; LRN (k=2, n=5, alpha=1e-4, beta=0.75) after conv1 and conv2, as AlexNet",
                 steps_of(budget, 2, len(ctx.seeds)))
    arms = {label: ctx.train(lambda flag=flag: small_alexnet(lrn=flag), budget, label)
            for label, flag in (("with LRN", True), ("without LRN", False))}
    with_lrn, without = arms["with LRN"], arms["without LRN"]
    rows = [arm.row(variant=label, clean_train_error=arm.mean("clean_train_error"),
                    seconds=sum(run["seconds"] for run in arm.runs)) for label, arm in arms.items()]
    files = [str(bars("lrn", list(arms), {
        "test error (%)": [100 * arm.mean("test_error") for arm in arms.values()],
        "training time (s, all seeds)": [sum(run["seconds"] for run in arm.runs) for arm in arms.values()]}, ctx.out,
        spreads={"test error (%)": [100 * arm.spread("test_error") for arm in arms.values()]},
        title=f"local response normalization: {budget.describe(ctx.data)}"))]
    helps = below(with_lrn, without)
    reason = (f"test error {pm(with_lrn, 'test_error')} with LRN against {pm(without, 'test_error')} without "
              f"({'LRN lower by ' + gap_text(with_lrn, without) if helps else 'LRN not lower in every seed'}); "
              f"LRN costs {sum(r['seconds'] for r in with_lrn.runs) / max(sum(r['seconds'] for r in without.runs), 1e-9):.1f}x "
              "the training time here. VGG's Table 3: A-LRN 29.7% top-1 against A's 29.6%")
    verdict, reason = learned(arms.values(), "not shown" if helps else "shown", reason)
    return Result("lrn", "local response normalization does not improve accuracy (VGG's A-LRN against A), so later "
                  "networks dropped it", verdict, reason, rows,
                  {"arms": {label: arm.record() for label, arm in arms.items()}}, files, budget.describe(ctx.data))
