"""A trained checkpoint on a data set: its metrics in the run's precision and with its test-time
flip, and an image file fed as the run fed its model."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from cnnlab.checkpoint import RunMeta, resolve
from cnnlab.errors import CnnlabError
from cnnlab.train.precision import Precision


@dataclass
class Evaluation:
    """What `evaluate_checkpoint` found: the metrics (loss, top-1, top-5, per-class top-1, the
    confusion matrix, optionally each image's prediction) and what they were computed on."""

    metrics: dict[str, Any]
    meta: RunMeta
    checkpoint: Path  # the checkpoint's .json
    source: Any  # the DataSource
    split: str  # "test" or "val"
    data: str
    precision: Precision

    def where(self) -> str:
        return f"{self.source.name} {self.split} ({self.metrics['images']:,} images)"

    def write(self, folder: str | Path) -> list[Path]:
        """confusion.png and .csv, and evaluation.json (every metric but the matrix, and what they were
        computed on), each written whole or not at all; returns the paths."""
        from cnnlab.checkpoint import atomic_write_text
        from cnnlab.viz.accuracy_plots import write_confusion

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_confusion(folder, self.metrics["confusion"], self.meta.class_names)
        summary = {"checkpoint": str(self.checkpoint), "data": self.data, "split": self.split,
                   "precision": self.precision.name, **{k: v for k, v in self.metrics.items() if k != "confusion"}}
        atomic_write_text(folder / "evaluation.json", json.dumps(summary, indent=2))
        return [folder / "confusion.png", folder / "confusion.csv", folder / "evaluation.json"]


def evaluate_checkpoint(checkpoint: str | Path, data: str | None = None, split: str | None = None, device: str = "auto",
                        amp: str | None = None, predictions: bool = False) -> Evaluation:
    """Metrics of a checkpoint on a data set's test split (by default the run's own data), or on
    the run's held-out validation images (`split="val"`), in the run's precision (or `amp`) and
    with its test-time flip."""
    from cnnlab.data import Normalization, load_source, make_batches, stratified_split
    from cnnlab.data.splits import hold_out_test
    from cnnlab.models.from_checkpoint import load_model
    from cnnlab.train.distributed import pick_device
    from cnnlab.train.metrics import evaluate_batches
    from cnnlab.train.precision import for_inference

    device = pick_device(device)
    json_path = resolve(checkpoint)
    model, meta = load_model(json_path, device)
    precision = for_inference(amp, meta.precision, device)
    data_name = data or meta.data
    source = load_source(data_name)
    if data_name == meta.data:  # the run's own data: the test split it held out, if it held one out
        source = hold_out_test(source, meta.test_fraction)
    if len(source.class_names) != meta.num_classes:
        raise CnnlabError(f"{json_path} was trained for {meta.num_classes} classes but {source.name} has "
                          f"{len(source.class_names)}; evaluate on a set with the same classes")
    if source.image_shape[0] != meta.in_chans:
        raise CnnlabError(f"{json_path} takes {meta.in_chans}-channel images but {source.name} has {source.image_shape[0]}")
    split = split or ("test" if source.test is not None else "val")
    if split == "test":
        if source.test is None:
            raise CnnlabError(f"{source.name} has no published test split; use --split val")
        images = source.test
    else:
        _, held = stratified_split(source.train.labels, meta.val_fraction, seed=meta.seed)
        images = source.train.subset(held[: meta.val_images or len(held)])
    batches = make_batches(images, 512, size=meta.side, normalization=Normalization(meta.mean, meta.std), device=device)
    metrics = evaluate_batches(model, batches, meta.num_classes, confusion=True, autocast=precision.autocast(device),
                               flip=meta.test_flip, predictions=predictions)
    return Evaluation(metrics, meta, json_path, source, split, data_name, precision)


def checkpoint_input(meta: RunMeta, path: str | Path) -> torch.Tensor:
    """The image file at `path` preprocessed as the checkpoint's run fed its model: (1, C, H, W)."""
    from cnnlab.data import Normalization
    from cnnlab.data.loader import image_for_model

    if not Path(path).is_file():
        raise CnnlabError(f"{path} does not exist")
    return image_for_model(Path(path), meta.in_chans, meta.stored_side, meta.side, Normalization(meta.mean, meta.std))


@dataclass
class Prediction:
    """The `k` most likely classes of one image file, with their probabilities."""

    path: Path
    top: list[tuple[str, float]]


def predict_images(checkpoint: str | Path, images: list[str | Path], top_k: int = 5, device: str = "cpu",
                   amp: str | None = None) -> tuple[list[Prediction], Precision, RunMeta]:
    """Classify image files with a checkpoint, preprocessed as its run fed its model, in the run's
    precision (or `amp`) and with its test-time flip."""
    from cnnlab.models.from_checkpoint import load_model
    from cnnlab.train.metrics import predict_logits
    from cnnlab.train.precision import for_inference

    model, meta = load_model(checkpoint, device)
    precision = for_inference(amp, meta.precision, torch.device(device))
    autocast = precision.autocast(torch.device(device))
    k = min(top_k, meta.num_classes)
    predictions = []
    for path in images:
        x = checkpoint_input(meta, path).to(device)
        with torch.inference_mode(), autocast():
            probabilities = torch.softmax(predict_logits(model, x, meta.test_flip).float(), dim=1)[0]
        top = probabilities.topk(k)
        predictions.append(Prediction(Path(path), [(meta.class_names[i], p) for p, i in zip(top.values.tolist(),
                                                                                         top.indices.tolist())]))
    return predictions, precision, meta
