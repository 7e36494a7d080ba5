"""Building blocks shared by several families."""

from cnnlab.layers.activations import ScaledTanh, make_activation
from cnnlab.layers.classifier import fc_classifier, replace_last_linear
from cnnlab.layers.conv import ConvBnAct, conv1x1, conv3x3
from cnnlab.layers.drop_path import DropPath, ScheduledDropPath, linear_drop_path_rates, set_drop_path_progress
from cnnlab.layers.init import kaiming_init_
from cnnlab.layers.norm import krizhevsky_lrn
from cnnlab.layers.shapes import window_output_size

__all__ = [
    "ConvBnAct",
    "DropPath",
    "ScaledTanh",
    "ScheduledDropPath",
    "fc_classifier",
    "kaiming_init_",
    "krizhevsky_lrn",
    "linear_drop_path_rates",
    "make_activation",
    "replace_last_linear",
    "set_drop_path_progress",
    "conv1x1",
    "conv3x3",
    "window_output_size",
]
