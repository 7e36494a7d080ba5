"""Data sets read from their standard formats into memory."""

from cnnlab.data.augment import Augment, parse_augment
from cnnlab.data.loader import Normalization, TensorBatches, channel_stats
from cnnlab.data.sources import DataError, DataSource, ImageSet, load_mnist_embedded, load_source
from cnnlab.data.splits import stratified_split

__all__ = [
    "Augment", "DataError", "DataSource", "ImageSet", "Normalization", "TensorBatches", "channel_stats",
    "load_mnist_embedded", "load_source", "parse_augment", "stratified_split",
]
