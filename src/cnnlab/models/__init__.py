"""The model zoo: one module per family; importing them fills the registry."""

from cnnlab.models import alexnet, densenet, fractalnet, googlenet, inception, lenet, nasnet, nin, resnet, resnet_cifar, shufflenet, squeezenet, vgg, wide_resnet, zfnet  # noqa: F401
from cnnlab.models.base import CnnModel, accepted_input_sizes
from cnnlab.models.from_checkpoint import load_model
from cnnlab.models.registry import create_model, get_entry, list_models, register_model

__all__ = ["CnnModel", "accepted_input_sizes", "create_model", "get_entry", "list_models", "load_model", "register_model"]
