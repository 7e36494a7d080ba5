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


def explore(model, input_size=None, batch: int = 1, out=None, **options):
    """One offline page of `model` (a zoo name or any nn.Module): its diagram, and any layer's numbers
    worked out on a click; shown inline in a notebook, `.save("page.html")`. See cnnlab.viz.explorer."""
    from cnnlab.viz.explorer import explore as _explore

    return _explore(model, input_size=input_size, batch=batch, out=out, **options)


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


def compare(models, batch: int = 128, sort: str | None = None, chart: bool = False, **options):
    """Several models side by side (cnnlab compare's columns: parameters, FLOPs, MACs, the seeds'
    memory and the simulated training step's peak; with memory="16GiB" the largest batch that fits),
    sorted by `sort` (a column, "-" first for descending: "-peak"), with the accuracy-complexity
    chart when `chart`. See cnnlab.analysis.compare.compare for the options."""
    from cnnlab.analysis.compare import compare as _compare

    comparison = _compare(list(models), batch=batch, **options)
    if sort is not None:
        comparison.sort(sort)
    if chart:
        import tempfile
        from pathlib import Path

        from cnnlab.viz.plots import complexity_chart

        with tempfile.TemporaryDirectory() as folder:
            path, missing = complexity_chart(comparison.summaries, Path(folder) / "chart.png")
            comparison.chart_png, comparison.chart_missing = Path(path).read_bytes(), missing
    return comparison


def __getattr__(name: str):
    if name == "op":  # cnnlab.op.conv(...): the worked operators, imported when first used
        import importlib

        return importlib.import_module("cnnlab.op")
    raise AttributeError(f"module 'cnnlab' has no attribute {name!r}")


__all__ = [
    "CnnModel",
    "CnnlabError",
    "InputShapeError",
    "ModelConfigError",
    "UnknownModelError",
    "__version__",
    "compare",
    "create_model",
    "draw",
    "explore",
    "fit",
    "list_models",
    "load_run",
    "summary",
]
