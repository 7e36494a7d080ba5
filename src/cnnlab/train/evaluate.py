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

    def write_json(self, folder: str | Path) -> Path:
        """FOLDER/evaluation.json: every metric but the confusion matrix, and what they were computed
        on, written whole or not at all (the matrix's picture and CSV: viz.accuracy_plots.write_confusion)."""
        from cnnlab.checkpoint import atomic_write_text

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        summary = {"checkpoint": str(self.checkpoint), "data": self.data, "split": self.split,
                   "precision": self.precision.name, **{k: v for k, v in self.metrics.items() if k != "confusion"}}
        atomic_write_text(folder / "evaluation.json", json.dumps(summary, indent=2))
        return folder / "evaluation.json"


def evaluate_checkpoint(checkpoint: str | Path, data: str | None = None, split: str | None = None, device: str = "auto",
                        amp: str | None = None, predictions: bool = False, module=None) -> Evaluation:
    """Metrics of a checkpoint on a data set's test split (by default the run's own data), or on
    the run's held-out validation images (`split="val"`), in the run's precision (or `amp`) and
    with its test-time flip. A run of a module of the user's own needs the module (`module=`)."""
    from cnnlab.data import Normalization, load_source, make_batches, stratified_split
    from cnnlab.data.splits import hold_out_test
    from cnnlab.models.from_checkpoint import load_model
    from cnnlab.train.distributed import pick_device
    from cnnlab.train.metrics import evaluate_batches
    from cnnlab.train.precision import for_inference

    device = pick_device(device)
    json_path = resolve(checkpoint)
    model, meta = load_model(json_path, device, module=module)
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


def predict_images(checkpoint: str | Path, images, top_k: int = 5, device: str = "cpu",
                   amp: str | None = None, module=None) -> tuple[list[Prediction], Precision, RunMeta]:
    """Classify images with a checkpoint, preprocessed as its run fed its model, in the run's
    precision (or `amp`) and with its test-time flip. `images`: image files, or a tensor or array
    of decoded images as its data set stores them (uint8 0-255 or floats 0-1; N x C x H x W,
    N x H x W for one channel, or one image). A run of a module of the user's own needs it (`module=`)."""
    from cnnlab.models.from_checkpoint import load_model
    from cnnlab.train.metrics import predict_logits
    from cnnlab.train.precision import for_inference

    model, meta = load_model(checkpoint, device, module=module)
    precision = for_inference(amp, meta.precision, torch.device(device))
    autocast = precision.autocast(torch.device(device))
    k = min(top_k, meta.num_classes)
    if isinstance(images, (str, Path)):
        images = [images]
    decoded = not isinstance(images, (list, tuple))
    inputs = tensor_inputs(meta, images) if decoded else [checkpoint_input(meta, path) for path in images]
    predictions = []
    for index, x in enumerate(inputs):
        with torch.inference_mode(), autocast():
            probabilities = torch.softmax(predict_logits(model, x.to(device), meta.test_flip).float(), dim=1)[0]
        top = probabilities.topk(k)
        where = Path(f"image {index}") if decoded else Path(images[index])
        predictions.append(Prediction(where, [(meta.class_names[i], p) for p, i in zip(top.values.tolist(),
                                                                                     top.indices.tolist())]))
    return predictions, precision, meta


def tensor_inputs(meta: RunMeta, images) -> list[torch.Tensor]:
    """Decoded images (a tensor or array) as the run fed its model: one (1, C, H, W) input each."""
    from cnnlab.data import Normalization
    from cnnlab.data.loader import resize

    batch = torch.as_tensor(images)
    if batch.dim() == 2 or (batch.dim() == 3 and batch.shape[0] == meta.in_chans and meta.in_chans != 1):
        batch = batch[None]  # one image
    if batch.dim() == 3:  # N x H x W: one channel
        batch = batch[:, None]
    if batch.dim() != 4 or batch.shape[1] != meta.in_chans:
        raise CnnlabError(f"the run's model takes {meta.in_chans}-channel images; got a {tuple(batch.shape)} "
                          "array (give N x C x H x W, N x H x W for one channel, or one image)")
    batch = batch.float() / 255.0 if not batch.is_floating_point() else batch.float()
    normalization = Normalization(meta.mean, meta.std)
    return [normalization(resize(resize(image[None], meta.stored_side), meta.side)) for image in batch]
