"""Data sets read from their standard formats into memory."""

from cnnlab.data.sources import ImageSet, load_mnist_embedded

__all__ = ["ImageSet", "load_mnist_embedded"]
