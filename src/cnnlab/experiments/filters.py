"""What filter sizes buy: three 3x3 convs against one 7x7 (seeds 000/003), the inception module's
1x1 bottlenecks (seed 000), and ZFNet's first layer against AlexNet's (seeds 000/003)."""

from __future__ import annotations

import functools
import statistics
from collections import OrderedDict

import torch
from torch import nn

from cnnlab.analysis import summary
from cnnlab.experiments.core import Arm, Context, Plan, below, gap_text, learned, pm, split_of, steps_of, stuck
from cnnlab.experiments.figures import COLOURS, bars
from cnnlab.experiments.result import Result
from cnnlab.models.alexnet import ClassicConvNet, ConvLayer
from cnnlab.viz.plots import pyplot, save_figure


# -- small-filters --------------------------------------------------------------------------------
def small_filter_net(stack: bool, width: int = 32) -> nn.Sequential:
    """A stem, then either three 3x3 convs (ReLU after each) or one 7x7 (one ReLU), then a GAP head."""
    block = [nn.Conv2d(width, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
             nn.Conv2d(width, width, 3, padding=1), nn.ReLU()] if stack else [nn.Conv2d(width, width, 7, padding=3), nn.ReLU()]
    return nn.Sequential(OrderedDict([
        ("stem", nn.Conv2d(1, width, 3, padding=1)), ("stem_relu", nn.ReLU()), ("pool", nn.MaxPool2d(2)),
        ("block", nn.Sequential(*block)), ("gap", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()),
        ("fc", nn.Linear(width, 10)),
    ]))


def small_filters(ctx: Context) -> Result:
    budget = ctx.pick(quick=Plan(images=1280, epochs=3, optimizer="adam", lr=3e-3, probe_images=250, test_images=500),
                      standard=Plan(images=20_000, epochs=10, optimizer="adam", lr=3e-3),
                      full=Plan(images=60_000, epochs=40, optimizer="adam", lr=3e-3))
    ctx.announce(budget.describe(ctx.data), steps_of(budget, 2, len(ctx.seeds)))
    rows, arms = [], {}
    for stack in (True, False):
        label = "three 3x3" if stack else "one 7x7"
        net = small_filter_net(stack)
        block = summary(net.block, input_size=(32, 14, 14), batch=1)
        arms[label] = ctx.train(lambda stack=stack: small_filter_net(stack), budget, label)
        rows.append(arms[label].row(block=label, params=block.totals.params, flops=block.totals.flops,
                                    receptive_field=max(row.rf or 0 for row in block.rows),
                                    relus=sum(isinstance(m, nn.ReLU) for m in net.block)))
    files = [str(bars("small-filters", list(arms), {
        "block parameters": [r["params"] for r in rows], "block FLOPs (14x14x32)": [r["flops"] for r in rows],
        "test error (%)": [100 * arm.mean("test_error") for arm in arms.values()]}, ctx.out,
        spreads={"test error (%)": [100 * arm.spread("test_error") for arm in arms.values()]},
        title=f"three 3x3 against one 7x7: {budget.describe(ctx.data)}"))]
    stacked, single = rows
    counted = stacked["params"] < single["params"] and stacked["flops"] < single["flops"] and \
        stacked["receptive_field"] == single["receptive_field"] == 7 and stacked["relus"] > single["relus"]
    three, seven = arms["three 3x3"], arms["one 7x7"]
    reaches = not below(seven, three)  # not worse beyond the seed spread
    parts = [f"the same 7x7 field with {stacked['params']:,} parameters against {single['params']:,} "
             f"({stacked['params'] / single['params']:.0%}) and {stacked['relus']} ReLUs against {single['relus']}",
             f"test error {pm(three, 'test_error')} (three 3x3) against {pm(seven, 'test_error')} (one 7x7): "
             + ("the stack is lower by " + gap_text(three, seven) if below(three, seven) else
                "the stack reaches the 7x7's accuracy (no difference beyond the seed spread)" if reaches else
                "the 7x7 is lower by " + gap_text(seven, three))]
    # the counted half is exact; the accuracy half needs both arms to have learned
    trained = not stuck(arms.values())
    verdict = "shown" if counted and reaches and trained else "shown with a caveat" if counted else "not shown"
    return Result("small-filters", "three stacked 3x3 convs see the same 7x7 field as one 7x7 conv with fewer parameters "
                  "and FLOPs (27C^2 against 49C^2), three non-linearities instead of one, and reach its accuracy", verdict,
                  "; ".join(parts), rows, {"arms": {label: arm.record() for label, arm in arms.items()}}, files,
                  budget.describe(ctx.data),
                  open=(["the counts (parameters, FLOPs, field, ReLUs)"] if not counted else [])
                  + (["the stack reaches the 7x7's accuracy"] if not (reaches and trained) else []))


# -- inception-bottleneck -----------------------------------------------------------------------------
def inception_bottleneck(ctx: Context) -> Result:
    from cnnlab.deploy.bench import time_in_turns
    from cnnlab.models.googlenet import Inception, NaiveInception

    modules = {"naive": NaiveInception(256, 128, 192, 96), "1x1 bottlenecks": Inception(256, 128, 64, 192, 64, 96, 64)}
    x = torch.randn(8, 256, 28, 28)
    repeats = ctx.pick(quick=3, standard=20, full=50)
    ctx.announce(f"forward passes of a batch of 8 at 28x28x256, timed in turns, median of {repeats}", 0)
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
        ctx.log(f"  {label}: {macs:,} multiply-adds, {table.totals.params:,} parameters, "
                f"{rows[-1]['ms_per_batch_of_8']:.1f} ms per batch of 8 (median of {repeats})")
    files = [str(bars("inception-bottleneck", [r["module"] for r in rows], {
        "conv multiply-adds (M)": [r["conv_macs"] / 1e6 for r in rows], "parameters (K)": [r["params"] / 1e3 for r in rows],
        "time, batch 8 (ms)": [r["ms_per_batch_of_8"] for r in rows]}, ctx.out))]
    naive, reduced = rows
    counted = naive["conv_macs"] == 854_196_224 and reduced["conv_macs"] < naive["conv_macs"] / 3
    faster = reduced["ms_per_batch_of_8"] < naive["ms_per_batch_of_8"]
    reason = (f"{naive['conv_macs']:,} multiply-adds naive, {reduced['conv_macs']:,} with the bottlenecks "
              f"({naive['conv_macs'] / reduced['conv_macs']:.1f}x fewer; the slide prints 358M, but its own six terms add to "
              f"271,351,808: docs/analysis.md); measured {naive['ms_per_batch_of_8'] / reduced['ms_per_batch_of_8']:.1f}x "
              "faster: the 1x1 convs and the concatenation cost memory traffic the count leaves out")
    return Result("inception-bottleneck", "1x1 bottlenecks cut the naive module's 854M multiply-adds to a third or less "
                  "and it runs faster", "shown" if counted and faster else "shown with a caveat" if counted else "not shown",
                  reason, rows, files=files, budget=f"median of {repeats} timed batches",
                  open=(["the count: a third or less"] if not counted else []) + (["the module runs faster"] if not faster else []))


# -- first-layer -------------------------------------------------------------------------------------
FIRST_SIDE = 63  # 227/3.6: the first layers' strides then leave 15x15 (AlexNet) and 30x30 (ZFNet) maps
FIRST_FILTERS = 48
# cycles per input pixel; "high" runs past 0.5 into the spectrum's corners (diagonals up to 0.71)
BANDS = {"low": (0.0, 0.125), "mid": (0.125, 0.25), "high": (0.25, float("inf"))}
LIMIT = ("the images are Fashion-MNIST's 28 pixels upsampled to 63: they hold nothing above 0.22 cycles/pixel "
         "(0.5 x 28/63), so no filter can learn the high band from them, and ImageNet's dead filters at 224 pixels "
         "are not this data's to reproduce")


def first_layer_net(design: str, dropout: float = 0.5) -> ClassicConvNet:
    """AlexNet's first two layers (11x11/4; 5x5/1) or ZFNet's (7x7/2; 5x5/2), then the same three
    convs and FC layers at a third of the width, for 63x63 grey images. Both reach 7x7 maps after
    conv2's pool, so only the first layers differ."""
    first = (ConvLayer(FIRST_FILTERS, 11, stride=4, padding=2, pool=True), ConvLayer(128, 5, padding=2, pool=True)) \
        if design == "alexnet" else \
        (ConvLayer(FIRST_FILTERS, 7, stride=2, padding=1, pool=True), ConvLayer(128, 5, stride=2, padding=2, pool=True))
    layers = first + (ConvLayer(192, 3, padding=1), ConvLayer(128, 3, padding=1, pool=True))
    return ClassicConvNet(layers, num_classes=10, in_chans=1, input_size=FIRST_SIDE, hidden=(256, 256), dropout=dropout,
                          name=f"small {design}", designed_size=FIRST_SIDE)


def spectra(weight: torch.Tensor, grid: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Each filter's spectral energy as shares of its total (its 2-D DFT zero-padded to `grid`, the
    mean removed, the grey input's single channel), and each frequency bin's radius in cycles per pixel."""
    w = weight.detach().float()
    w = (w - w.mean(dim=(-2, -1), keepdim=True)).sum(1)
    power = torch.fft.fft2(w, s=(grid, grid)).abs() ** 2
    frequencies = torch.fft.fftfreq(grid)
    radius = (frequencies[:, None] ** 2 + frequencies[None, :] ** 2).sqrt()
    return power / power.sum(dim=(-2, -1), keepdim=True).clamp(min=1e-12), radius


def band_shares(weight: torch.Tensor, grid: int = 64) -> dict[str, list[float]]:
    """Each filter's spectral energy split into the low, mid and high bands of BANDS, as shares of its total."""
    shares, radius = spectra(weight, grid)
    return {band: (shares * ((radius >= low) & (radius < high))).sum(dim=(-2, -1)).tolist()
            for band, (low, high) in BANDS.items()}


def dead_share(model: ClassicConvNet, images: torch.Tensor) -> float:
    """The share of first-layer filters whose ReLU output is positive at under 1% of the positions
    of `images`: filters that (almost) never fire."""
    model.eval()
    with torch.no_grad():
        maps = model.features.relu1(model.features.conv1(images))
    firing = (maps > 0).float().mean(dim=(0, 2, 3))
    return (firing < 0.01).float().mean().item()


def aliased_share(weight: torch.Tensor, stride: int, grid: int = 64) -> list[float]:
    """Each filter's share of spectral energy above the Nyquist frequency of its stride, 1/(2 stride)
    cycles per input pixel: what the stride folds back onto lower frequencies (ZFNet's aliasing)."""
    shares, radius = spectra(weight, grid)
    return (shares * (radius > 0.5 / stride)).sum(dim=(-2, -1)).tolist()


def filter_measures(model: ClassicConvNet, images: torch.Tensor, initial: torch.Tensor | None = None) -> dict[str, float]:
    """ZFNet's measures of a first layer: dead filters, the spectral bands, the energy its stride aliases,
    and (given the `initial` weights) how far training moved the filters, as a share of their initial norm."""
    weight = model.features.conv1.weight.detach().float()
    bands = band_shares(weight)
    measures = {"dead": dead_share(model, images), **{band: statistics.fmean(bands[band]) for band in BANDS},
                "aliased": statistics.fmean(aliased_share(weight, model.features.conv1.stride[0]))}
    if initial is not None:
        measures["moved"] = ((weight - initial).norm() / initial.norm()).item()
    return measures


MOVED_ENOUGH = 0.5  # trained filters at least half their initial norm away from it: no longer the initialization


def first_layer(ctx: Context) -> Result:
    """AlexNet's first layers against ZFNet's, measured on the trained filters and on the same nets
    untrained (the control: what the kernel sizes and strides give before any learning). A budget
    under which the filters did not move from their initialization decides nothing."""
    import copy

    from cnnlab.data import Normalization, image_stats, make_batches

    # Adam at 3e-3 moves the first-layer filters within the budget (SGD at 0.02 left them near their initialization;
    # Adam at 1e-3 moved AlexNet's by 29% of their norm in 2 epochs, at 3e-3 by 38%, measured before the verdict run)
    budget = ctx.pick(quick=Plan(images=1024, epochs=2, optimizer="adam", lr=3e-3, size=FIRST_SIDE, probe_images=250,
                                 test_images=500),
                      standard=Plan(images=20_000, epochs=6, optimizer="adam", lr=3e-3, size=FIRST_SIDE),
                      full=Plan(images=60_000, epochs=60, optimizer="adam", lr=3e-3, size=FIRST_SIDE))
    ctx.announce(f"{budget.describe(ctx.data)}; {FIRST_FILTERS} first-layer filters; {LIMIT}",
                 steps_of(budget, 2, len(ctx.seeds)))
    untrained: dict[str, list[ClassicConvNet]] = {"alexnet": [], "zfnet": []}

    def build(design: str) -> ClassicConvNet:
        model = first_layer_net(design)
        untrained[design].append(copy.deepcopy(model))  # the control: this seed's initialization, never trained
        return model

    arms = {design: ctx.train(lambda design=design: build(design), budget,
                              "AlexNet 11x11/4" if design == "alexnet" else "ZFNet 7x7/2") for design in ("alexnet", "zfnet")}
    split = split_of(ctx.data)
    train = split.train.subset(torch.arange(min(budget.images, len(split.train))))
    probe = next(iter(make_batches(split.test.subset(torch.arange(500)), 500, size=FIRST_SIDE,
                                   normalization=Normalization(*image_stats(train)))))[0]
    measures, control = {}, {}
    for design, arm in arms.items():
        trained = [filter_measures(run["model"], probe, initial.features.conv1.weight.detach().float())
                   for run, initial in zip(arm.runs, untrained[design])]
        before = [filter_measures(initial, probe) for initial in untrained[design]]
        measures[design] = {key: [m[key] for m in trained] for key in trained[0]}
        control[design] = {key: [m[key] for m in before] for key in before[0]}
    mean = statistics.fmean
    rows = []
    for design, arm in arms.items():
        m, c = measures[design], control[design]
        rows.append(arm.row(first_layer=arm.label, moved=mean(m["moved"]), dead_filter_share=mean(m["dead"]),
                            untrained_dead_share=mean(c["dead"]), mid_band_share=mean(m["mid"]),
                            untrained_mid_share=mean(c["mid"]), high_band_share=mean(m["high"]),
                            aliased_share=mean(m["aliased"]), untrained_aliased_share=mean(c["aliased"])))
    files = [str(_filters_figure(arms, measures, untrained, ctx.out, budget.describe(ctx.data)))]
    alex, zf, alex0, zf0 = measures["alexnet"], measures["zfnet"], control["alexnet"], control["zfnet"]
    moved = min(alex["moved"] + zf["moved"])
    more_dead = max(zf["dead"]) < min(alex["dead"]) and mean(alex["dead"]) > mean(alex0["dead"])
    # the mid-band deficit must be the training's: lower in every seed, and wider than the untrained nets' difference
    less_mid = max(alex["mid"]) < min(zf["mid"]) and mean(zf["mid"]) - mean(alex["mid"]) > mean(zf0["mid"]) - mean(alex0["mid"])
    parts = [LIMIT,
             f"training moved the filters by {mean(alex['moved']):.0%} (AlexNet) and {mean(zf['moved']):.0%} (ZFNet) of "
             f"their initial norm (at least {MOVED_ENOUGH:.0%} decides)",
             f"dead filters (firing at under 1% of positions): AlexNet {mean(alex['dead']):.0%}, ZFNet {mean(zf['dead']):.0%}, "
             f"untrained {mean(alex0['dead']):.0%} and {mean(zf0['dead']):.0%} "
             f"({'more in AlexNet in every seed' if more_dead else 'not more in trained AlexNet in every seed'})",
             f"mid-band share of the filters' energy (0.125-0.25 cycles/pixel): AlexNet {mean(alex['mid']):.1%}, ZFNet "
             f"{mean(zf['mid']):.1%}; untrained {mean(alex0['mid']):.1%} and {mean(zf0['mid']):.1%} "
             f"({'lower in AlexNet in every seed, beyond the untrained difference' if less_mid else 'not lower in AlexNet beyond the untrained difference in every seed'})",
             f"energy above the stride's Nyquist frequency (aliased): AlexNet {mean(alex['aliased']):.1%} (stride 4), ZFNet "
             f"{mean(zf['aliased']):.1%} (stride 2); untrained {mean(alex0['aliased']):.1%} and {mean(zf0['aliased']):.1%}",
             f"test error {pm(arms['alexnet'], 'test_error')} (AlexNet) against {pm(arms['zfnet'], 'test_error')} (ZFNet)"]
    verdict = ("not decided at this budget" if moved < MOVED_ENOUGH else
               "shown" if more_dead and less_mid else "not shown")
    if moved < MOVED_ENOUGH:
        parts.append("the filters are still close to their initialization, so the measures are mostly of that")
    verdict, reason = learned(arms.values(), verdict, "; ".join(parts))
    return Result("first-layer", "AlexNet's aggressive 11x11/4 first layer leaves dead filters and misses the mid "
                  "frequencies; ZFNet's 7x7/2 fixes both", verdict, reason, rows,
                  {"arms": {arm.label: arm.record() for arm in arms.values()}, "measures": measures, "untrained": control,
                   "limit": LIMIT}, files, budget.describe(ctx.data),
                  open=(["the filters moved too little to decide either half"] if moved < MOVED_ENOUGH else
                        (["more dead filters in AlexNet's first layer"] if not more_dead else [])
                        + (["AlexNet's filters miss the mid frequencies"] if not less_mid else [])))


def _filters_figure(arms: dict[str, Arm], measures: dict, untrained: dict, out, title: str):
    """Seed 0's first-layer filters of each net side by side, and the filters' mean radial spectra,
    trained (solid) and untrained (dashed, the control)."""
    from cnnlab.viz.filters import scaled_each

    plt = pyplot()
    figure = plt.figure(figsize=(13, 4.6))
    grid = figure.add_gridspec(1, 3, width_ratios=[1, 1, 1.1], wspace=0.3)
    for column, (design, arm) in enumerate(arms.items()):
        weight = arm.runs[0]["model"].features.conv1.weight.detach().float().sum(1)
        tiles = scaled_each(weight[:, None])[:, 0]
        side = 8
        rows = -(-len(tiles) // side)
        k = tiles.shape[-1]
        sheet = torch.ones(rows * (k + 1) - 1, side * (k + 1) - 1)
        for index, tile in enumerate(tiles):
            r, c = divmod(index, side)
            sheet[r * (k + 1): r * (k + 1) + k, c * (k + 1): c * (k + 1) + k] = tile
        axis = figure.add_subplot(grid[0, column])
        axis.imshow(sheet.numpy(), cmap="gray", interpolation="nearest")
        axis.set_title(f"{arm.label}: dead {statistics.fmean(measures[design]['dead']):.0%}", fontsize=9)
        axis.axis("off")
    axis = figure.add_subplot(grid[0, 2])
    edges = torch.linspace(0, 0.5 ** 0.5, 23)  # to the corners of the spectrum
    for colour, (design, arm) in zip(COLOURS, arms.items()):
        for model, style, marker, label in ((arm.runs[0]["model"], "-", "o", arm.label),
                                            (untrained[design][0], "--", None, f"{arm.label}, untrained")):
            shares, radius = spectra(model.features.conv1.weight)
            profile = [shares[:, (radius >= lo) & (radius < hi)].sum(-1).mean().item()
                       for lo, hi in zip(edges[:-1], edges[1:])]
            axis.plot(((edges[:-1] + edges[1:]) / 2).tolist(), profile, style, marker=marker, color=colour, label=label)
    for low, _ in BANDS.values():
        axis.axvline(low, color="#999999", linewidth=0.6)
    axis.set(xlabel="cycles per input pixel", ylabel="share of the filters' energy", title="first-layer spectra (seed 0)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.suptitle(f"first layer: {title}", fontsize=10)
    return save_figure(figure, out / "first-layer.png")
