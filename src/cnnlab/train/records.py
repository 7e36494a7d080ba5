"""What a run writes as it goes, besides its checkpoints: the metrics files, the curves, TensorBoard
scalars, and the progress bar on the terminal."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from cnnlab.errors import CnnlabError
from cnnlab.checkpoint import atomic_write_text


def write_metrics(out: Path, history: list[dict[str, Any]]) -> None:
    atomic_write_text(out / "metrics.jsonl", "".join(json.dumps(record) + "\n" for record in history))
    buffer = io.StringIO()
    if history:
        writer = csv.DictWriter(buffer, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    atomic_write_text(out / "metrics.csv", buffer.getvalue())


def plot_curves(out: Path, history: list[dict[str, Any]]) -> Path | None:
    if not history:
        return None
    from cnnlab.viz.plots import pyplot, save_figure

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
    for axis in (loss_axis, accuracy_axis):
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    return save_figure(figure, out / "curves.png", dpi=100, tight=False)


def tensorboard(out: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise CnnlabError("--tensorboard needs the tensorboard package: pip install tensorboard") from None
    return SummaryWriter(str(out / "tensorboard"))


class Bar:
    def __init__(self, epoch: int, epochs: int, steps: int) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn(f"epoch {epoch + 1}/{epochs}"), BarColumn(), TextColumn("{task.fields[info]}"),
                                 TimeRemainingColumn(), transient=True)
        self.task = self.progress.add_task("train", total=steps, info="")
        self.progress.start()

    def update(self, step: int, loss: float, accuracy: float, images: int, seconds: float) -> None:
        self.progress.update(self.task, completed=step,
                             info=f"loss {loss:.4f} top-1 {accuracy:.2%} {images / max(seconds, 1e-9):,.0f} img/s")

    def close(self) -> None:
        self.progress.stop()


def progress_bar(enabled: bool, epoch: int, epochs: int, steps: int) -> Bar | None:
    return Bar(epoch, epochs, steps) if enabled else None
