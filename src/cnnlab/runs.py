"""Training from Python, as a notebook does it: `fit` trains a zoo model (by name or as an object)
or a module of your own, and draws its loss and accuracy live, redrawn each epoch in one display
that stays in the saved notebook; `load_run` opens any run folder, the CLI's included. Both give
a `Run`: its history and folder, its best model, `evaluate()` and `predict(images)`, shown in a
notebook as its curves and final figures.

    run = cnnlab.fit("lenet5_modern", data="mnist-embedded", epochs=3, out="runs/lenet")
    run.evaluate()                       # the best epoch on the held-out test digits
    run = cnnlab.load_run("runs/demo")   # a folder `cnnlab demo` wrote

This module composes training (train/: metrics and checkpoints) with pictures (viz/: the curves)
and the notebook's display (rendering), so it stands on the floor above both, beside the CLI;
neither train/ nor viz/ imports the other. The training itself is `cnnlab train`'s, with the same
defaults: only what is shown differs (a live plot and an HTML progress bar in a notebook, rich's
bar and log lines in a terminal).
"""

from __future__ import annotations

import copy
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from torch import nn

from cnnlab import rendering
from cnnlab.checkpoint import RunMeta, checkpoint_exists, read_meta
from cnnlab.errors import CnnlabError


@dataclass
class Run:
    """A training run: its folder, its metrics epoch by epoch, its best epoch and test figures, and
    the model of its best epoch (`model`, loaded once). A run of a module of your own keeps that
    module (`module`): its files hold the weights, not the code."""

    out: Path
    history: list[dict[str, Any]]
    best: dict[str, Any]
    test: dict[str, Any] | None
    meta: RunMeta
    config: dict[str, Any] = field(default_factory=dict)
    seconds: float | None = None
    module: nn.Module | None = field(default=None, repr=False)
    _model: nn.Module | None = field(default=None, repr=False)

    @property
    def model(self) -> nn.Module:
        """The best epoch's model, in eval mode on the CPU (a copy of your module with its weights)."""
        if self._model is None:
            from cnnlab.models.from_checkpoint import load_model

            self._model, _ = load_model(self.out / "best.json", "cpu", module=self._template())
        return self._model

    def evaluate(self, data: str | None = None, split: str | None = None, device: str = "auto"):
        """The best epoch's loss, top-1, top-5, per-class top-1 and confusion matrix on `data`'s test
        split (by default the run's own data, held-out images included), as `cnnlab evaluate`."""
        from cnnlab.train.evaluate import evaluate_checkpoint

        return evaluate_checkpoint(self.out, data, split, device, module=self._template())

    def predict(self, images, top_k: int = 5, device: str = "cpu"):
        """The `top_k` classes of each image (files, or decoded images as a tensor or array),
        preprocessed as the run fed its model."""
        from cnnlab.train.evaluate import predict_images

        predictions, _, _ = predict_images(self.out, images, top_k, device, module=self._template())
        return predictions

    def curves(self):
        """The loss and accuracy per epoch, as a matplotlib figure."""
        from cnnlab.viz.plots import curves_figure

        return curves_figure(self.history, title=self.title())

    def _template(self) -> nn.Module | None:
        """A copy of your module for the best weights to load into (the module itself stays as trained)."""
        return copy.deepcopy(self.module).cpu() if self.module is not None else None

    # -- what it says --------------------------------------------------------------------------
    def title(self) -> str:
        return f"{self.meta.model} on {self.meta.data}"

    def headline(self) -> str:
        best = self.best
        parts = [f"{len(self.history)} epochs"]
        if best.get("epoch"):
            parts.append(f"best val top-1 {best['val_top1']:.2%} (epoch {best['epoch']})")
        if self.test is not None:
            parts.append(f"test top-1 {self.test['top1']:.2%} on {self.test.get('images', 0):,} images")
        return ", ".join(parts)

    def __repr__(self) -> str:
        return f"<Run {self.out}: {self.title()}, {self.headline()}>"

    def to_dict(self) -> dict[str, Any]:
        return {"out": str(self.out), "model": self.meta.model, "data": self.meta.data, "history": self.history,
                "best": self.best, "test": self.test, "config": self.config, "seconds": self.seconds}

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        return rendering.mimebundle(repr(self), self.to_html())

    def to_html(self) -> str:
        from cnnlab.viz.plots import curves_figure, figure_png

        facts = [("folder", str(self.out)), ("model", self.meta.model + (f" (your {self.meta.module})" if self.meta.module
                                                                          else "")),
                 ("data", f"{self.meta.data}, {len(self.meta.class_names)} classes, input "
                          f"{'x'.join(map(str, self.meta.input_size))}")]
        if self.best.get("epoch"):
            facts.append(("best epoch", f"{self.best['epoch']}: val top-1 {self.best['val_top1']:.2%}, top-5 "
                                        f"{self.best['val_top5']:.2%}, loss {self.best['val_loss']:.4f}"))
        if self.test is not None:
            facts.append(("test (best epoch)", f"top-1 {self.test['top1']:.2%}, top-5 {self.test['top5']:.2%}, loss "
                                               f"{self.test['loss']:.4f} on {self.test.get('images', 0):,} images"))
        if self.history:
            facts.append(("time", f"{sum(r['seconds'] for r in self.history):.1f} s of training"
                                  + (f", {self.seconds:.1f} s in all" if self.seconds else "")))
        parts = [rendering.facts(facts)]
        if self.history:
            parts.append(rendering.image(figure_png(curves_figure(self.history)), "loss and accuracy per epoch",
                                         max_width_px=800))
            parts.append(rendering.fold("epochs", f"{len(self.history)} rows of metrics.jsonl",
                                        rendering.table(*_epoch_table(self.history))))
        return rendering.frame(*parts, title=f"{self.title()}: {self.headline()}")


def _epoch_table(history: list[dict]) -> tuple[list[str], list[list[str]]]:
    columns = ["epoch", "train loss", "train top-1", "val loss", "val top-1", "val top-5", "lr", "img/s"]
    rows = [[str(r["epoch"]), f"{r['train_loss']:.4f}", f"{r['train_top1']:.2%}", f"{r['val_loss']:.4f}",
             f"{r['val_top1']:.2%}", f"{r['val_top5']:.2%}", f"{r['lr']:.3g}", f"{r['images_per_second']:,.0f}"]
            for r in history]
    return columns, rows


def load_run(path: str | Path, model: nn.Module | None = None) -> Run:
    """The run in folder `path` (one `cnnlab train`, `cnnlab demo` or `cnnlab.fit` wrote). A run of a
    module of your own needs that module: `load_run(path, model=MyNet())`."""
    out = Path(path)
    if out.is_file() and out.suffix == ".json":
        out = out.parent
    if not out.is_dir():
        raise CnnlabError(f"{out} is not a run folder: give a folder that cnnlab.fit or `cnnlab train` wrote")
    if not checkpoint_exists(out, "best"):
        raise CnnlabError(f"{out} holds no best.json checkpoint: no epoch of this run finished (or it is not a run "
                          "folder); train it, or resume it with --resume")
    meta = read_meta(out / "best.json")
    if meta.module and model is None:
        from cnnlab.models.from_checkpoint import own_module_needed

        raise CnnlabError(own_module_needed(out / "best.json", meta))
    metrics = out / "metrics.jsonl"
    history = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()] if metrics.is_file() else []
    best = {**(meta.metrics or {}), "epoch": meta.epoch}
    test = json.loads((out / "test.json").read_text()) if (out / "test.json").is_file() else None
    config = json.loads((out / "config.json").read_text()) if (out / "config.json").is_file() else {}
    return Run(out, history, best, test, meta, config, module=model)


def fit(model: str | nn.Module, *, data: str = "mnist-embedded", epochs: int | None = None, out: str | Path | None = None,
        live: bool | None = None, log: Callable[[str], None] | None = None, **settings) -> Run:
    """Train `model` (a zoo name, a zoo model, or a module of your own, trained in place) on `data`
    with `cnnlab train`'s settings and defaults (`settings` are TrainConfig's fields: lr=, batch_size=,
    optimizer=, augment=, ...), write the run folder (`out`, default runs/NAME), and return the Run.

    In a notebook (`live=None` finds out; True or False forces it) the loss and accuracy are drawn
    live, redrawn each epoch, with a progress bar; in a terminal rich's bar and the log lines show.
    A module of your own trains with the generic defaults at its data's image size; its run folder
    records its class, and reloading it needs the module (`load_run(path, model=MyNet())`)."""
    from cnnlab.train import TrainConfig
    from cnnlab.train import fit as train
    from cnnlab.viz.plots import write_curves

    module = model if isinstance(model, nn.Module) else None
    if module is None and not isinstance(model, str):
        raise CnnlabError(f"fit takes a zoo model's name, a zoo model or an nn.Module; got {type(model).__name__}")
    name = model if module is None else (getattr(module, "model_name", "") or type(module).__name__)
    if epochs is not None:
        settings["epochs"] = epochs
    config = TrainConfig(model=name, data=data, out=str(out) if out is not None else None, **settings)
    in_notebook = _in_notebook() if live is None else live
    display = LiveCurves(name, data) if in_notebook else None
    if log is None:
        log = display.log if display is not None else print
    progress = display.progress if display is not None else sys.stdout.isatty()
    result = train(config, log=log, progress=progress, module=module,
                   after_epoch=display.after_epoch if display is not None else None)
    write_curves(result.out, result.history)
    if display is not None:
        display.finish(result.history)
    run = load_run(result.out, model=module) if module is not None else load_run(result.out)
    run.seconds = result.seconds
    return run


def _in_notebook() -> bool:
    """Running in a Jupyter kernel (JupyterLab, Notebook, VS Code), not a terminal IPython."""
    shell = sys.modules.get("IPython") and sys.modules["IPython"].get_ipython()
    return bool(shell) and type(shell).__name__ == "ZMQInteractiveShell"


class LiveCurves:
    """A notebook's view of a run as it trains: the settings lines printed once, then one display
    that is redrawn in place (the curves and the last epoch's line) and a progress bar per epoch.
    Redrawing the figure takes ~0.1 s; an epoch that ends sooner after the last drawing than ten
    times that skips it (the last epoch is always drawn), so showing never slows training by more
    than a tenth."""

    BAR_EVERY = 0.25  # seconds between two updates of the progress bar

    def __init__(self, name: str, data: str) -> None:
        self.title = f"{name} on {data}"
        self.status = "starting"
        self.figure_html = ""
        self.drawn_at, self.draw_seconds = 0.0, 0.0
        self.view = self.bar = None  # shown at the first epoch, below the settings lines

    def _show(self) -> None:
        from IPython.display import HTML, display

        if self.view is None:
            self.view = display(HTML(self._html()), display_id=True)
            self.bar = display(HTML(""), display_id=True)

    def _html(self) -> str:
        return rendering.frame(self.figure_html, rendering.notes([self.status]), title=self.title)

    def log(self, line: str) -> None:
        if line.startswith("epoch "):
            self.status = line
            self._show()
            self.view.update(_html(self._html()))
        else:
            print(line)

    def after_epoch(self, history: list[dict]) -> None:
        now = time.perf_counter()
        if now - self.drawn_at >= 10 * self.draw_seconds:
            self._draw(history)

    def finish(self, history: list[dict]) -> None:
        if history:
            self._draw(history)
        if self.bar is not None:
            self.bar.update(_html(""))

    def _draw(self, history: list[dict]) -> None:
        from cnnlab.viz.plots import curves_figure, figure_png

        started = time.perf_counter()
        png = figure_png(curves_figure(history))
        self.figure_html = rendering.image(png, "loss and accuracy per epoch", max_width_px=800)
        self._show()
        self.view.update(_html(self._html()))
        self.drawn_at = time.perf_counter()
        self.draw_seconds = self.drawn_at - started

    def progress(self, epoch: int, epochs: int, steps: int) -> "_Bar":
        self._show()
        return _Bar(self.bar, epoch, epochs, steps, self.BAR_EVERY)


class _Bar:
    """One epoch's progress in the notebook (what train/records.Bar is on a terminal)."""

    def __init__(self, handle, epoch: int, epochs: int, steps: int, every: float) -> None:
        self.handle, self.epoch, self.epochs, self.steps, self.every = handle, epoch, epochs, steps, every
        self.shown_at = 0.0
        self.handle.update(_html(rendering.frame(rendering.progress(0, steps, f"epoch {epoch + 1}/{epochs}"))))

    def update(self, step: int, loss: float, accuracy: float, images: int, seconds: float) -> None:
        now = time.perf_counter()
        if now - self.shown_at < self.every and step < self.steps:
            return
        self.shown_at = now
        left = seconds / max(step, 1) * (self.steps - step)
        label = (f"epoch {self.epoch + 1}/{self.epochs} · step {step}/{self.steps} · loss {loss:.4f} · top-1 "
                 f"{accuracy:.2%} · {images / max(seconds, 1e-9):,.0f} img/s · {left:.0f} s left")
        self.handle.update(_html(rendering.frame(rendering.progress(step, self.steps, label))))

    def close(self) -> None:
        pass


def _html(text: str):
    from IPython.display import HTML

    return HTML(text)
