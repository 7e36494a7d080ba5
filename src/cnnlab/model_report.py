"""The one-page report of a model or a training run (`cnnlab report`): the summary, the diagram,
the training curves and metrics, the confusion matrix, per-class accuracy and the mistakes, the
settings, and the layer table as a tree.

It composes training (a checkpoint's evaluation) with pictures (viz/), so it stands on the floor
above both, beside the CLI: neither train/ nor viz/ imports the other."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from cnnlab.analysis import summary
from cnnlab.checkpoint import read_meta, resolve
from cnnlab.errors import CnnlabError
from cnnlab.models.from_checkpoint import names_a_file
from cnnlab.viz.diagram import draw
from cnnlab.viz.plots import curves_figure, figure_png, layer_bars
from cnnlab.viz.report import Page


def build_report(source: str | Path) -> Page:
    """The page `cnnlab report` writes, for a zoo model name or a run folder; write it with
    `cnnlab.viz.report.write_page(page, "model.html")`."""
    from cnnlab.models.from_checkpoint import own_module_needed

    run, source = Path(source), str(source)
    meta = None
    if run.is_dir():
        meta = read_meta(resolve(run))
        if meta.module:
            raise CnnlabError(own_module_needed(resolve(run), meta) + "; the report rebuilds zoo models only")
        table = summary(meta.model, input_size=meta.input_size, batch=1, num_classes=meta.num_classes,
                        in_chans=meta.in_chans, **meta.model_kwargs)
        page = Page(f"{meta.model} run {run.resolve().name} on {meta.data}")
    elif names_a_file(source):
        raise CnnlabError(f"{source} is not a run folder: give a folder that `cnnlab train` wrote, or a zoo model name")
    else:
        table = summary(source, batch=1)  # an unknown name gets the registry's "did you mean", as everywhere
        page = Page(f"{source}: layer by layer")
    t = table.totals
    page.paragraph(f"{table.model_name}, input {'x'.join(map(str, table.input_size))}: {t.params:,} parameters, "
                   f"{t.flops / 1e9:.3f} GFLOPs and {t.activation_memory / 2**20:.1f} MB of activations per image "
                   "(float32; see docs/analysis.md for the conventions).")
    _diagram(page, meta.model if meta else source, table.input_size, meta)
    _explorer(page, meta.model if meta else source, table.input_size, meta)
    if meta is not None:
        page.heading("Training")
        history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()] \
            if (run / "metrics.jsonl").is_file() else []
        if history:  # drawn from the metrics: a run stopped before its end has no curves.png yet
            page.image(figure_png(curves_figure(history)), "loss and accuracy per epoch")
            columns = list(history[0])
            page.table(columns, [[r[c] for c in columns] for r in history],
                       numeric={c for c in columns if c != "phase"}, caption="metrics.jsonl (click a column to sort)")
        with tempfile.TemporaryDirectory() as folder:
            from cnnlab.train.evaluate import evaluate_checkpoint
            from cnnlab.viz.accuracy_plots import class_accuracy_bars, mistakes_grid, write_confusion

            result = evaluate_checkpoint(run, device="cpu", predictions=True)
            metrics, source_set, split = result.metrics, result.source, result.split
            write_confusion(Path(folder), metrics["confusion"], meta.class_names)
            where = f"best checkpoint on {source_set.name} {split} ({metrics['images']:,} images)"
            page.image((Path(folder) / "confusion.png").read_bytes(),
                       f"confusion matrix, {where}: top-1 {metrics['top1']:.2%}")
            path = class_accuracy_bars(metrics["per_class_top1"], meta.class_names, Path(folder) / "classes.png")
            page.image(path.read_bytes(), f"top-1 per class, {where}")
            images = source_set.test if split == "test" else None
            if images is not None and hasattr(images, "images"):
                path, shown = mistakes_grid(images, metrics["predictions"], meta.class_names, Path(folder) / "mistakes.png")
                page.image(path.read_bytes(), f"the first {shown} misclassified {split} images: true -> predicted")
        if (run / "config.json").is_file():
            page.heading("Settings")
            page.settings(json.loads((run / "config.json").read_text()))
    page.heading("Layers")
    page.layer_tree(table, caption="per image, from cnnlab.analysis: stages and blocks fold and unfold (▸), each with "
                                   "its totals; click a column to sort within each level")
    with tempfile.TemporaryDirectory() as folder:
        for what in ("params", "flops", "memory", "rf"):
            path, title = layer_bars(table, what, Path(folder) / f"{what}.png")
            page.image(path.read_bytes(), title)
    return page


def _explorer(page, model_name: str, input_size, meta) -> None:
    """The network's explorer page (`cnnlab explore`), embedded: click any layer for its numbers."""
    from cnnlab.viz.explorer import explore

    kwargs = {} if meta is None else {"num_classes": meta.num_classes, "in_chans": meta.in_chans, **meta.model_kwargs}
    try:
        explorer = explore(model_name, input_size=input_size, **kwargs)
    except CnnlabError as error:  # Graphviz's dot is missing: the page says so instead
        page.paragraph(f"(no explorer: {error})")
        return
    page.heading("Explore")
    page.embedded_page(explorer.html, "the network, layer by layer: click a box or find a layer by name (cnnlab explore)")


def _diagram(page, model_name: str, input_size, meta) -> None:
    """The network's block diagram at the top of the page (or why it is missing)."""
    kwargs = {} if meta is None else {"num_classes": meta.num_classes, "in_chans": meta.in_chans,
                                      **meta.model_kwargs}
    graph = draw(model_name, input_size=input_size, **kwargs)
    try:
        page.image(graph.pipe(format="svg"), "the network, as `cnnlab draw` draws it", kind="svg", css="diagram")
    except CnnlabError:  # Graphviz's dot is missing
        page.paragraph("(no diagram: Graphviz's dot is not installed; `make graphviz` installs it)")
