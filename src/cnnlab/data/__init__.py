"""Data sets read from their standard formats into memory."""

from cnnlab.data.augment import Augment, parse_augment
from cnnlab.data.loader import FolderBatches, Normalization, ShardedBatches, TensorBatches, channel_stats, image_stats, make_batches
from cnnlab.data.sources import DataError, DataSource, ImageSet, StreamingImageSet, load_mnist_embedded, load_source
from cnnlab.data.splits import stratified_split

__all__ = [
    "Augment", "DataError", "DataSource", "FolderBatches", "ImageSet", "Normalization", "ShardedBatches", "StreamingImageSet",
    "TensorBatches", "channel_stats", "image_stats", "load_mnist_embedded", "load_source", "make_batches",
    "parse_augment", "stratified_split",
]
