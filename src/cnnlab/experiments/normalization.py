"""Normalization layers: BatchNorm's higher rates and faster start (seeds 000/001), and LRN,
which AlexNet used and VGG dropped because it did not help (seed 003)."""

from __future__ import annotations

from dataclasses import replace

from cnnlab.experiments.alexnet import alexnet_plan, small_alexnet
from cnnlab.experiments.core import Arm, Context, Plan, below, best_rate, gap_text, grid_edge, learned, pm, steps_of
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
                  files, budget.describe(ctx.data, rates),
                  open=(["trains at higher rates"] if not higher else [])
                  + (["ahead after one epoch at every rate where both train"] if not (faster and len(faster) == len(common)) else []))


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
# the grid every arm is tuned on, factors of 4 around 0.08: the first grid, (0.005, 0.02, 0.08), had both
# arms choose its top rate, so it did not bracket either optimum
LRN_RATES = (0.02, 0.08, 0.32)


def lrn(ctx: Context) -> Result:
    """With and without LRN, each at its own best rate from one grid, chosen on held-out training
    images: LRN divides the activations (by about 1.7 per layer at k=2), which moves the best rate,
    so one shared rate would compare a tuned arm with an untuned one."""
    rates = ctx.pick(quick=(0.02,), standard=LRN_RATES)
    budget = replace(alexnet_plan(ctx, images=4_000, epochs=8), validation_images=ctx.pick(quick=250, standard=2_000))
    variants = (("with LRN", True), ("without LRN", False))
    ctx.announce(f"{budget.describe(ctx.data, rates)}; LRN (k=2, n=5, alpha=1e-4, beta=0.75) after conv1 and conv2, as "
                 f"AlexNet; each arm at its own best rate, chosen on {budget.validation_images:,} held-out training images",
                 steps_of(budget, len(variants) * len(rates), len(ctx.seeds)))
    by_rate: dict[str, dict[float, Arm]] = {label: {} for label, _ in variants}
    for label, flag in variants:
        for lr in rates:
            by_rate[label][lr] = ctx.train(lambda flag=flag: small_alexnet(lrn=flag), replace(budget, lr=lr),
                                           f"{label}, lr {lr:g}")
    chosen = {label: best_rate(arms) for label, arms in by_rate.items()}
    (lrn_rate, with_lrn), (plain_rate, without) = chosen["with LRN"], chosen["without LRN"]
    edges = {label: edge for label, (lr, _) in chosen.items() if (edge := grid_edge(rates, lr))}  # chosen rates not bracketed
    rows = [arm.row(variant=label, lr=lr, chosen=chosen[label][0] == lr, validation_error=arm.mean("validation_error"),
                    clean_train_error=arm.mean("clean_train_error"), seconds=sum(run["seconds"] for run in arm.runs))
            for label, arms in by_rate.items() for lr, arm in arms.items()]
    seconds = {label: sum(run["seconds"] for arm in arms.values() for run in arm.runs) for label, arms in by_rate.items()}
    files = [str(bars("lrn", [f"{label} (lr {chosen[label][0]:g})" for label, _ in variants], {
        "test error (%)": [100 * chosen[label][1].mean("test_error") for label, _ in variants],
        "training time (s, every rate and seed)": [seconds[label] for label, _ in variants]}, ctx.out,
        spreads={"test error (%)": [100 * chosen[label][1].spread("test_error") for label, _ in variants]},
        title=f"local response normalization, each arm at its best rate: {budget.describe(ctx.data, rates)}"))]
    helps = below(with_lrn, without)
    shared = [lr for lr in rates if below(by_rate["without LRN"][lr], by_rate["with LRN"][lr])]
    reason = (f"each arm at its own best rate (chosen on validation images): test error {pm(with_lrn, 'test_error')} with "
              f"LRN (lr {lrn_rate:g}) against {pm(without, 'test_error')} without (lr {plain_rate:g}); "
              + (f"LRN lower by {gap_text(with_lrn, without)}" if helps else
                 "LRN not lower beyond the seed spread" if not below(without, with_lrn) else
                 f"LRN higher by {gap_text(without, with_lrn)}")
              + f"; at a shared rate LRN is worse in every seed at {len(shared)} of the {len(rates)} rates"
              f"; LRN costs {seconds['with LRN'] / max(seconds['without LRN'], 1e-9):.1f}x the training time here"
              + "".join(f"; {label}'s lr {chosen[label][0]:g} is {edge}" for label, edge in edges.items()) + ". "
              "VGG's Table 3: A-LRN 29.7% top-1 against A's 29.6%")
    verdict, reason = learned([with_lrn, without], "not shown" if helps else "shown", reason)
    return Result("lrn", "local response normalization does not improve accuracy when each net has its own best "
                  "learning rate (VGG's A-LRN against A), so later networks dropped it", verdict, reason, rows,
                  {"arms": {arm_label: arm.record() for label, arms in by_rate.items()
                            for arm_label, arm in ((f"{label}, lr {lr:g}", arm) for lr, arm in arms.items())},
                   "chosen_rates": {label: lr for label, (lr, _) in chosen.items()},
                   "at_grid_edge": list(edges), "protocol":
                   "each arm at its own best rate from the grid, chosen on held-out training images"},
                  files, budget.describe(ctx.data, rates), open=["LRN does not improve accuracy"] if helps else [])
