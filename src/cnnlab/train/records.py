"""What a run writes as it goes, besides its checkpoints: the metrics files, TensorBoard scalars, and
the progress bar on the terminal. Its pictures (curves.png) are drawn by viz/ from the metrics, by
whoever composes the two (the CLI, cnnlab.fit)."""

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


def progress_bar(progress, epoch: int, epochs: int, steps: int):
    """The epoch's progress bar: rich's on a terminal (`progress=True`), none (False), or the bar a
    factory makes (`progress(epoch, epochs, steps)`: a notebook's, with `update` and `close` as Bar's)."""
    if callable(progress):
        return progress(epoch, epochs, steps)
    return Bar(epoch, epochs, steps) if progress else None
