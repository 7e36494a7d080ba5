"""cnnlab: the convolutional networks that shaped computer vision, built, inspected, trained,
transferred and deployed.

    import cnnlab
    model = cnnlab.create_model("resnet50", num_classes=10)
    cnnlab.list_models("vgg*")
"""

from cnnlab.errors import CnnlabError, InputShapeError, ModelConfigError, UnknownModelError
from cnnlab.models import CnnModel, create_model, list_models

__version__ = "0.1.0"

__all__ = [
    "CnnModel",
    "CnnlabError",
    "InputShapeError",
    "ModelConfigError",
    "UnknownModelError",
    "create_model",
    "list_models",
]
