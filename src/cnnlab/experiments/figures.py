"""The experiments' plots: curves over training and bars of what the arms cost and reach."""

from __future__ import annotations

from pathlib import Path

from cnnlab.experiments.core import Arm, mean_curve
from cnnlab.viz.plots import pyplot, save_figure

COLOURS = ["#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377", "#bbbbbb"]


def curves(name: str, panels: dict[str, list[Arm]], out: Path, title: str = "") -> Path:
    """Seed 001's Figure 1 style, one panel per group of arms: training error thin, test error
    bold, per iteration, each the mean over seeds."""
    plt = pyplot()
    figure, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.8), squeeze=False, sharey=True)
    for axis, (panel, arms) in zip(axes.flat, panels.items()):
        for colour, arm in zip(COLOURS, arms):
            xs, train = mean_curve(arm, "train_error")
            _, test = mean_curve(arm, "test_error")
            axis.plot(xs, [100 * v for v in train], color=colour, linewidth=0.9, linestyle="--")
            axis.plot(xs, [100 * v for v in test], color=colour, linewidth=2.4, label=arm.label)
        axis.set(xlabel="iteration", ylabel="error (%)", title=panel)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8, title="bold: test, dashed: training", title_fontsize=7)
    figure.suptitle(title or name, fontsize=10)
    return save_figure(figure, out / f"{name}.png")


def bars(name: str, labels: list[str], series: dict[str, list[float]], out: Path,
         spreads: dict[str, list[float]] | None = None, title: str = "") -> Path:
    """One panel per series, one bar per arm; `spreads` draws each bar's range over the seeds."""
    plt = pyplot()
    figure, axes = plt.subplots(1, len(series), figsize=(max(4.0, 1.1 * len(labels) + 1.5) * len(series) / 1.4, 3.6),
                                squeeze=False)
    for axis, (panel, values) in zip(axes.flat, series.items()):
        errors = [v / 2 for v in spreads[panel]] if spreads and panel in spreads else None
        axis.bar(labels, values, color=COLOURS[: len(labels)] if len(labels) <= len(COLOURS) else None, yerr=errors,
                 capsize=3)
        axis.set_title(panel, fontsize=9)
        axis.tick_params(axis="x", labelsize=7, rotation=20 if len(labels) > 3 else 0)
        axis.grid(axis="y", alpha=0.3)
    figure.suptitle(title or name, fontsize=10)
    return save_figure(figure, out / f"{name}.png")
