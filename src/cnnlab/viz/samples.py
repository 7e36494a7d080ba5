"""A labelled grid of a data set's images, as they are stored or as training sees them."""

from __future__ import annotations

from pathlib import Path

import torch

from cnnlab.data import StreamingImageSet, load_source, parse_augment
from cnnlab.data.augment import resize
from cnnlab.errors import CnnlabError
from cnnlab.viz.plots import pyplot


def sample_grid(data: str, out: str | Path, count: int = 32, seed: int = 0, size: int | None = None,
                augment: str | None = None, augmented: bool = False, image_size: int = 64) -> tuple[Path, int, int]:
    """Write `count` random training images of `data` (chosen with `seed`) as a PNG grid titled with
    their classes, resized to `size`; with `augment` (a preset or a list) or `augmented` (the data's
    default preset), after that augmentation. Returns (path, images, side)."""
    out_path = Path(out)
    if not out_path.parent.exists():
        raise CnnlabError(f"the folder {out_path.parent} does not exist; create it or write the grid elsewhere")
    if count < 1:
        raise CnnlabError("--count must be at least 1")
    source = load_source(data, image_size=image_size)
    generator = torch.Generator().manual_seed(seed)
    index = torch.randperm(len(source.train), generator=generator)[:count]
    if isinstance(source.train, StreamingImageSet):
        x = source.train.subset(index).sample_images(len(index)).float() / 255.0
    else:
        x = source.train.images[index].float() / 255.0
    side = size or x.shape[-1]
    if augmented or augment:
        transform = parse_augment(augment, default="digits" if x.shape[1] == 1 else "cifar")
        x = transform(x, generator, side)
        title = f"{source.name}, augmented: {transform.describe()}"
    else:
        x = resize(x, side)
        title = source.name
    labels = source.train.labels[index].tolist()
    plt = pyplot()
    columns = min(8, len(labels))
    rows = -(-len(labels) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.8 * rows + 0.4), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, image, label in zip(axes.flat, x, labels):
        picture = image.clamp(0, 1).permute(1, 2, 0).numpy()
        grey = picture.shape[-1] == 1
        axis.imshow(picture.squeeze(-1) if grey else picture, cmap="gray" if grey else None)
        axis.set_title(source.class_names[label], fontsize=8)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    temporary = out_path.with_name(f".{out_path.name}.tmp")
    figure.savefig(temporary, dpi=100, format="png")
    plt.close(figure)
    temporary.replace(out_path)
    return out_path, len(labels), side
