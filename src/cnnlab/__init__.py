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


def fit(model, **settings):
    """Train a zoo model (by name or as an object) or a module of your own, with `cnnlab train`'s
    defaults; in a notebook its curves are drawn live. Returns a Run: cnnlab.fit("resnet20",
    data="cifar10:DIR", epochs=30). See cnnlab.runs.fit and cnnlab.train.TrainConfig."""
    from cnnlab.runs import fit as _fit

    return _fit(model, **settings)


def load_run(path, model=None):
    """The Run in a run folder (cnnlab.fit's, `cnnlab train`'s or `cnnlab demo`'s); a run of a
    module of your own needs it: load_run(path, model=MyNet()). See cnnlab.runs.load_run."""
    from cnnlab.runs import load_run as _load_run

    return _load_run(path, model=model)


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
    "load_run",
    "summary",
]
