"""Pictures of the analysis tables (per-layer bars, the accuracy-complexity chart) and of a training
run's metrics (its curves).

Every figure is read from an `analysis.Summary` or a run's metrics; nothing is recomputed here. Files are written to
a temporary name and renamed into place; the format follows the suffix (.png, .svg, .pdf).
"""

from __future__ import annotations

import os
from pathlib import Path

from cnnlab.analysis.summary import Summary
from cnnlab.errors import CnnlabError
from cnnlab.viz.accuracy import PUBLISHED_TOP1

MB = 2**20
METRICS = {  # what -> (row attribute, axis label, unit divisor)
    "params": ("params", "parameters", 1),
    "flops": ("flops", "FLOPs per image (2 x multiply-adds)", 1),
    "memory": ("activation_memory", "activation memory for training (MB)", MB),
    "rf": ("rf", "receptive field (input pixels)", 1),
}
KIND_COLOURS = {"conv": "#4477aa", "linear": "#ee6677", "pool": "#228833", "norm": "#ccbb44", "activation": "#66ccee",
                "add": "#aa3377", "concat": "#aa3377"}


def curves_figure(history: list[dict], title: str = ""):
    """A run's loss and accuracy per epoch (train and validation), as a matplotlib figure."""
    plt = pyplot()
    epochs = [r["epoch"] for r in history]
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 3.6))
    loss_axis.plot(epochs, [r["train_loss"] for r in history], label="train")
    loss_axis.plot(epochs, [r["val_loss"] for r in history], label="val")
    loss_axis.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    accuracy_axis.plot(epochs, [100 * r["train_top1"] for r in history], label="train top-1")
    accuracy_axis.plot(epochs, [100 * r["val_top1"] for r in history], label="val top-1")
    accuracy_axis.plot(epochs, [100 * r["val_top5"] for r in history], label="val top-5", linestyle="--")
    accuracy_axis.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    from matplotlib.ticker import MaxNLocator

    for axis in (loss_axis, accuracy_axis):
        axis.grid(alpha=0.3)
        axis.legend()
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure


def figure_png(figure, dpi: int = 80) -> bytes:
    """The figure as PNG bytes (to show inline), and closed."""
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    pyplot().close(figure)
    return buffer.getvalue()


def write_curves(out: Path, history: list[dict]) -> Path | None:
    """RUN/curves.png from the run's metrics (None for a run with no epoch yet)."""
    if not history:
        return None
    return save_figure(curves_figure(history), Path(out) / "curves.png", dpi=100, tight=False)


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure, path: str | Path, dpi: int = 110, tight: bool = True) -> Path:
    """Write `figure` to `path` (the format from its suffix) through a temporary name, and close it;
    `tight` crops the canvas to what is drawn."""
    path = Path(path)
    if not path.parent.is_dir():
        raise CnnlabError(f"the folder {path.parent} does not exist; create it or choose another output path")
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in ("png", "svg", "pdf"):
        raise CnnlabError(f"{path}: write .png, .svg or .pdf")
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    figure.savefig(temporary, format=suffix, dpi=dpi, bbox_inches="tight" if tight else None)
    pyplot().close(figure)
    os.replace(temporary, path)
    return path


def share_by_kind(result: Summary, attribute: str) -> dict[str, float]:
    """Each layer kind's share of the total of `attribute` over the table's rows."""
    values = [(row.kind, getattr(row, attribute) or 0) for row in result.rows if row.kind != "input"]
    total = sum(v for _, v in values) or 1
    shares: dict[str, float] = {}
    for kind, value in values:
        shares[kind] = shares.get(kind, 0.0) + value / total
    return shares


def layer_bars(result: Summary, what: str, path: str | Path) -> tuple[Path, str]:
    """One bar per layer of `what` (params, flops, memory, rf), coloured by layer kind, with each
    kind's share in the title: the seeds' "trends to note" at a glance. Returns (path, title)."""
    if what not in METRICS:
        raise CnnlabError(f"--what takes {', '.join(METRICS)}, got {what!r}")
    attribute, label, divisor = METRICS[what]
    rows = [row for row in result.rows if row.kind != "input" and (getattr(row, attribute) or 0) > 0]
    if what == "memory":
        rows = [row for row in rows if row.new_tensor]
    if not rows:
        raise CnnlabError(f"{result.model_name} has no layer with {label}")
    per_image = result.batch if what == "flops" else 1
    values = [(getattr(row, attribute) or 0) / divisor / per_image for row in rows]
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(max(6.0, 0.22 * len(rows) + 2), 4.2))
    axis.bar(range(len(rows)), values, color=[KIND_COLOURS.get(row.kind, "#bbbbbb") for row in rows])
    labels = [f"{result.paper_names[row.name]} ({row.name})" if row.name in result.paper_names else row.name
              for row in rows]  # the paper's layer names beside the module paths, where the paper names them
    axis.set_xticks(range(len(rows)), labels, rotation=90, fontsize=6 if len(rows) > 40 else 8)
    axis.set_ylabel(label)
    if what == "rf":
        title = f"{result.model_name}: receptive field grows to {max(values):,.0f} pixels"
    else:
        shares = share_by_kind(result, attribute)
        leading = sorted(((share, kind) for kind, share in shares.items() if share > 0.005), reverse=True)[:3]
        title = f"{result.model_name}: {label}, " + ", ".join(f"{share:.0%} in {kind} layers" for share, kind in leading)
    axis.set_title(title, fontsize=10)
    kinds = sorted({row.kind for row in rows})
    handles = [plt.Rectangle((0, 0), 1, 1, color=KIND_COLOURS.get(kind, "#bbbbbb")) for kind in kinds]
    axis.legend(handles, kinds, fontsize=7, loc="upper right")
    axis.grid(axis="y", alpha=0.3)
    return save_figure(figure, path), title


def complexity_chart(results: list[Summary], path: str | Path) -> tuple[Path, list[str]]:
    """Canziani et al. 2017's chart: published ImageNet top-1 against GFLOPs per image, bubble area
    proportional to parameters. Returns the path and the models left out (no published figure)."""
    plotted = [(r, PUBLISHED_TOP1[r.model_name]) for r in results if r.model_name in PUBLISHED_TOP1]
    missing = [r.model_name for r in results if r.model_name not in PUBLISHED_TOP1]
    if not plotted:
        raise CnnlabError("none of these models has a published ImageNet accuracy in cnnlab's table; those that do: "
                          + ", ".join(sorted(PUBLISHED_TOP1)))
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(8, 5.5))
    largest = max(r.totals.params for r, _ in plotted)
    for result, (top1, source) in plotted:
        gflops = result.totals.flops / result.batch / 1e9
        several_crops = "10-crop" in source or "10 patches" in source  # a few points above a single crop
        axis.scatter(gflops, top1, s=2500 * result.totals.params / largest, alpha=0.45, edgecolors="black",
                     linewidths=1.5 if several_crops else 0.5, linestyle="--" if several_crops else "-")
        axis.annotate(f"{result.model_name}\n{result.totals.params / 1e6:.1f}M", (gflops, top1), fontsize=7,
                      ha="center", va="center")
    axis.set_xlabel("GFLOPs per image (2 x multiply-adds, at each model's own input size)")
    axis.set_ylabel("ImageNet top-1 accuracy (%), published")
    axis.set_title("accuracy against operations; bubble area = parameters (after Canziani et al. 2017); "
                   "dashed edge: 10-crop figure", fontsize=9)
    axis.grid(alpha=0.3)
    by_source: dict[str, list[str]] = {}
    for result, (top1, source) in plotted:
        by_source.setdefault(source, []).append(f"{result.model_name} {top1:.2f}%")
    citation = "\n".join(f"{source}: {', '.join(figures)}" for source, figures in by_source.items())
    figure.text(0.01, -0.06, "top-1 as published: " + citation, fontsize=6, wrap=True)
    return save_figure(figure, path), missing
