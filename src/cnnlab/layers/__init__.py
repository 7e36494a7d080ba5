"""Building blocks shared by several families."""

from cnnlab.layers.activations import ScaledTanh, make_activation
from cnnlab.layers.classifier import fc_classifier, replace_last_linear
from cnnlab.layers.conv import ConvBnAct
from cnnlab.layers.norm import krizhevsky_lrn
from cnnlab.layers.shapes import window_output_size

__all__ = [
    "ConvBnAct",
    "ScaledTanh",
    "fc_classifier",
    "krizhevsky_lrn",
    "make_activation",
    "replace_last_linear",
    "window_output_size",
]
