"""cnnlab: the convolutional networks that shaped computer vision, built, inspected, trained,
transferred and deployed.

    import cnnlab
    model = cnnlab.create_model("resnet50", num_classes=10)
    cnnlab.list_models("vgg*")
"""

from cnnlab.errors import CnnlabError, InputShapeError, ModelConfigError, UnknownModelError
from cnnlab.models import CnnModel, create_model, list_models
from cnnlab.version import __version__


def summary(model, input_size=None, batch: int = 1, **options):
    """Per-layer costs of a model (a zoo name or any nn.Module); see cnnlab.analysis.summary."""
    from cnnlab.analysis import summary as _summary

    return _summary(model, input_size=input_size, batch=batch, **options)


def draw(model, input_size=None, out=None, **options):
    """A block diagram of a model (a zoo name or any nn.Module): a Diagram, shown inline in a
    notebook, `.save("net.svg")`; writes `out` (.svg, .png or .pdf) when given. See cnnlab.viz.diagram.draw."""
    from cnnlab.viz.diagram import draw as _draw

    return _draw(model, input_size=input_size, out=out, **options)


def fit(model: str, **settings):
    """Train a zoo model: cnnlab.fit("resnet20", data="cifar10:DIR", epochs=30); see cnnlab.train.TrainConfig."""
    from cnnlab.train import TrainConfig, fit as _fit

    return _fit(TrainConfig(model=model, **settings))


__all__ = [
    "CnnModel",
    "CnnlabError",
    "InputShapeError",
    "ModelConfigError",
    "UnknownModelError",
    "__version__",
    "create_model",
    "draw",
    "fit",
    "list_models",
    "summary",
]
