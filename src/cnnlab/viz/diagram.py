"""Block diagrams of networks, drawn as the papers draw them, laid out by Graphviz.

The picture is read from the analysis trace (the same walk `cnnlab summary` makes), never from a
per-model drawing: each row of the table is a box ("3x3 conv, 64, /2"), BatchNorm, activations,
dropout and views are folded into the box they follow, the dataflow the trace recorded gives the
edges (a residual shortcut is an edge that skips boxes and meets an "+"; an inception module's
branches meet at a concat), and each edge carries the tensor's shape ("64x56x56"). A block module
(a Bottleneck, an Inception, a DenseLayer) is a frame around its boxes, and a run of identical
blocks is drawn once, marked "Bottleneck ×3". `depth=N` draws the modules N levels down as one
box each, with their totals; `depth=0` unfolds every layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from cnnlab import rendering
from cnnlab.analysis.formulas import MB, one_decimal
from cnnlab.errors import CnnlabError

FORMATS = ("svg", "png", "pdf")
ANNOTATIONS = ("params", "flops", "memory", "rf")
FOLDED_KINDS = ("norm", "activation", "dropout", "view", "copy")  # drawn inside the box before them
COLOURS = {
    "input": "#e8e8e8", "conv": "#cfe2f3", "linear": "#d9ead3", "rbf": "#d9ead3", "pool": "#fce5cd",
    "norm": "#ead1dc", "concat": "#fff2cc", "add": "#ffffff", "block": "#d0e0e3", "other": "#eeeeee",
    "matmul": "#d9ead3", "resize": "#fce5cd", "output": "#e8e8e8", "reduce": "#fff2cc",
}
SHORT_NAMES = {"BatchNorm2d": "BN", "BatchNorm1d": "BN", "LocalResponseNorm": "LRN", "ReLU": "ReLU", "ReLU6": "ReLU6",
               "Dropout": "dropout", "Flatten": "flatten", "Tanh": "tanh", "Sigmoid": "sigmoid", "GELU": "GELU",
               "SiLU": "SiLU", "Hardswish": "h-swish", "relu": "ReLU", "flatten": "flatten", "GroupNorm": "GN"}
CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


@dataclass
class _Box:
    row: int  # the index of its main row in the summary
    label: str
    kind: str
    extras: list[str] = field(default_factory=list)  # folded BN, ReLU, ...
    rows: list[int] = field(default_factory=list)  # every row the box stands for


class Diagram:
    """A drawn network: shown inline in a notebook as SVG (scaled down to the cell's width,
    scrolled when tall, never cropped), saved with `.save("net.svg")` (.png, .pdf), its Graphviz
    source in `.source`, the graphviz.Digraph itself in `.graph`."""

    def __init__(self, graph, title: str) -> None:
        self.graph = graph
        self.title = title
        self._svg: str | None = None

    @property
    def source(self) -> str:
        """The DOT text Graphviz lays out."""
        return self.graph.source

    def pipe(self, format: str = "svg") -> bytes:  # noqa: A002 - graphviz's own keyword
        """The laid-out drawing as bytes, in `format` (svg, png or pdf)."""
        return _laid_out(self.graph, format)

    def svg(self) -> str:
        if self._svg is None:
            self._svg = self.pipe("svg").decode("utf-8")
        return self._svg

    def save(self, out: str | Path) -> Path:
        """Write the drawing in the format its suffix names (.svg, .png or .pdf)."""
        return render(self.graph, out)

    def __repr__(self) -> str:
        return f"<Diagram of {self.title}: {self.source.count(' [label=')} boxes; .save('net.svg') writes it>"

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        try:
            svg = self.svg()
        except CnnlabError as error:  # no Graphviz: say how to get it, in the cell
            return rendering.mimebundle(str(error), rendering.frame(rendering.notes([str(error)])))
        return rendering.mimebundle(repr(self), rendering.frame(rendering.svg_figure(svg)), rendering.inline_svg(svg))

    def _repr_svg_(self) -> str:
        return rendering.inline_svg(self.svg())


def draw(model: nn.Module | str, input_size=None, out: str | Path | None = None, depth: int | None = None,
         annotate: tuple[str, ...] | list[str] = (), batch: int = 1, title: str | None = None,
         **model_kwargs) -> Diagram:
    """Draw `model` (a zoo name or any nn.Module); returns a Diagram (shown inline in a notebook;
    `.save(path)`, `.source`), and writes `out` (.svg, .png or .pdf) when given."""
    from cnnlab.analysis import summary

    if depth is not None and depth < 0:
        raise CnnlabError(f"--depth must be 0 or more (0 unfolds every layer, 1 is one box per top-level module), got {depth}")
    unknown = [a for a in annotate if a not in ANNOTATIONS]
    if unknown:
        raise CnnlabError(f"unknown annotation {', '.join(unknown)}: choose from {', '.join(ANNOTATIONS)}")
    if out is not None:
        _check_format(out)
    if isinstance(model, str):
        from cnnlab.analysis.inputs import meta_model

        model = meta_model(model, input_size, **model_kwargs)
        input_size = input_size or model.default_input_size
    if depth is None:  # a net whose paper draws it as boxes of modules (NASNet-A: cells; a cell: operations)
        depth = getattr(model, "figure_depth", None)
    # depth N: the modules N levels down as boxes; 0 or None: every layer (None folds repeated blocks)
    result = summary(model, input_size=input_size, batch=batch, depth=depth or None)
    drawing = _Diagram(result, dict(model.named_modules()), fold_repeats=depth is None, frames=not depth,
                       annotate=annotate)
    diagram = Diagram(drawing.digraph(title), title or drawing.default_title())
    if out is not None:
        diagram.save(out)
    return diagram


def drawing_of(result, modules: dict[str, nn.Module], title: str | None = None) -> tuple[Diagram, dict[int, int]]:
    """The drawing of a summary's rows as `draw` makes it (repeats folded, blocks framed), and for
    each row the box that draws it (Graphviz node "n{box}"; a row of a folded repeat: its twin's)."""
    drawing = _Diagram(result, modules, fold_repeats=True, frames=True)
    diagram = Diagram(drawing.digraph(title), title or drawing.default_title())
    box_of = {row: drawing.stands_for.get(box, box) for box, content in drawing.boxes.items() for row in content.rows}
    return diagram, box_of


def drawings_of_parts(result, parts: list[list[int]], modules: dict[str, nn.Module]) -> list[tuple[str, dict[int, list[int]]]]:
    """Parts of a network each drawn on its own (a block's layers, the layers between two stages):
    for each, the SVG and, for each of its boxes (node "n{box}"), the summary rows it draws (indices
    into result.rows). Edges from rows outside a part are left out. Graphviz lays them all out in
    one run (one process for hundreds of small drawings)."""
    import graphviz

    from dataclasses import replace as copy_row
    from types import SimpleNamespace

    sources, boxes = [], []
    for indices in parts:
        local = {index: k for k, index in enumerate(indices)}
        rows = [copy_row(result.rows[index], inputs=tuple(local[j] for j in result.rows[index].inputs if j in local))
                for index in indices]
        drawing = _Diagram(SimpleNamespace(rows=rows, model_name=result.model_name), modules, fold_repeats=False,
                           frames=False)
        sources.append(drawing.digraph(whole=False).source)
        boxes.append({box: [indices[k] for k in content.rows] for box, content in drawing.boxes.items()})
    if not sources:
        return []
    try:
        laid_out = graphviz.pipe("dot", "svg", "\n".join(sources).encode("utf-8")).decode("utf-8")
    except graphviz.ExecutableNotFound:
        raise CnnlabError("Graphviz's `dot` program is not installed: run `make graphviz` (or `apt-get install graphviz`, "
                          "`brew install graphviz`), then draw again") from None
    svgs = ["<svg" + piece.split("</svg>")[0] + "</svg>" for piece in laid_out.split("<svg")[1:]]
    if len(svgs) != len(sources):
        raise CnnlabError(f"Graphviz laid out {len(svgs)} drawings of {len(sources)}")
    return list(zip(svgs, boxes))


def render(graph, out: str | Path) -> Path:
    """Lay `graph` out with Graphviz's dot and write it in the format its suffix names."""
    path = Path(out)
    data = _laid_out(graph, _check_format(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _laid_out(graph, fmt: str) -> bytes:
    import graphviz

    if fmt not in FORMATS:
        raise CnnlabError(f"cannot lay a drawing out as {fmt!r}: choose svg, png or pdf")
    try:
        return graph.pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise CnnlabError("Graphviz's `dot` program is not installed: run `make graphviz` (or `apt-get install graphviz`, "
                          "`brew install graphviz`), then draw again") from None


def _check_format(out) -> str:
    fmt = Path(out).suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise CnnlabError(f"cannot draw to {str(out)!r}: the file must end in .svg, .png or .pdf")
    return fmt


class _Diagram:
    def __init__(self, result, modules: dict[str, nn.Module], fold_repeats: bool, frames: bool, annotate=()):
        self.result, self.rows, self.modules = result, result.rows, modules
        self.annotate = tuple(annotate)
        self.frames = frames
        self.boxes: dict[int, _Box] = {}
        self.owner: dict[int, int] = {}  # row -> the row of the box that draws it
        self._build_boxes()
        self.block_of = {i: self._block(i) for i in self.boxes} if frames else {}
        self.stands_for: dict[int, int] = {}  # a row of a folded repeat -> its twin in the run's first block
        self.repeats: dict[str, tuple[int, list[str]]] = {}  # first block -> (count, the blocks it stands for)
        self.order: dict[int, int] = {}  # row -> which block of its run (0 for the first)
        if fold_repeats:
            self._fold_repeats()

    # -- boxes ---------------------------------------------------------------------------
    def _build_boxes(self) -> None:
        for i, row in enumerate(self.rows):
            sources = [self.owner.get(j, j) for j in row.inputs]
            if row.kind == "reduce" and len(sources) == 1 and sources[0] in self.boxes \
                    and self.rows[sources[0]].op == "stack":  # stack then mean: FractalNet's join, one box
                box = self.boxes[sources[0]]
                box.label = f"join ({row.op})"
                box.rows.append(i)
                self.owner[i] = sources[0]
                continue
            if row.kind in FOLDED_KINDS and len(sources) == 1 and sources[0] in self.boxes \
                    and _scope(row) == _scope(self.rows[sources[0]]):
                box = self.boxes[sources[0]]
                short = SHORT_NAMES.get(row.op, row.op)
                inside = box.kind == "module"  # the steps of a module drawn as one box add nothing to its label
                if not inside and (short not in box.extras and row.kind != "view"
                                   or short == "flatten" and short not in box.extras):
                    box.extras.append(short)
                box.rows.append(i)
                self.owner[i] = sources[0]
                continue
            label, kind = (self._block_label(row), row.kind) if row.kind == "block" else (self._label(row), row.kind)
            module = self.modules.get(".".join(_scope(row)))
            if row.kind in ("view", "copy") and _scope(row) and module is not None and not list(module.children()):
                label, kind = type(module).__name__, "module"  # a shape-only module, e.g. a channel shuffle
            self.boxes[i] = _Box(i, label, kind, rows=[i])
            self.owner[i] = i

    def _block_label(self, row) -> str:
        """A folded module: its name and what it holds ("layer1: Bottleneck ×3")."""
        module = self.modules.get(row.name)
        if callable(getattr(module, "figure_label", None)):  # a module that names itself as its paper does
            return module.figure_label()
        children = list(module.children()) if module is not None else []
        kinds = {type(child).__name__ for child in children}
        if isinstance(module, CONTAINERS) and len(kinds) == 1 and len(children) > 1:
            return f"{row.name}: {kinds.pop()} ×{len(children)}"
        return f"{row.name}: {row.op}"

    @staticmethod
    def _label(row) -> str:
        if row.kind == "input":
            return row.name  # "input", or forward's argument name where a module takes several
        if row.kind == "block":
            return row.op
        kernel = f"{row.kernel_size[0]}x{row.kernel_size[1]}" if row.kernel_size else ""
        stride = row.stride[0] if row.stride else 1
        step = f", /{stride}" if stride > 1 else ""
        if row.kind == "conv":
            groups = f", {row.groups} groups" if row.groups > 1 else ""
            return f"{kernel} conv, {row.kernels}{step}{groups}"
        if row.kind in ("linear", "rbf"):
            return f"fc, {row.kernels}"
        if row.kind == "pool":
            kind = "max pool" if "Max" in row.op or "max" in row.op else "avg pool"
            return f"global {kind}" if row.whole_image and row.output_shape[-1:] == (1,) else f"{kernel} {kind}{step}"
        if row.kind == "add":
            return "+"
        if row.kind == "concat":
            return "stack" if row.op == "stack" else "concat"
        if row.kind == "reduce":
            return row.op
        return SHORT_NAMES.get(row.op, row.op)

    def _block(self, i: int) -> str | None:
        """The innermost block module the row belongs to (not a plain container, not the model)."""
        path = self.rows[i].path
        own = path if self.rows[i].kind != "block" else path[:-1]
        for cut in range(len(own), 0, -1):
            name = ".".join(own[:cut])
            module = self.modules.get(name)
            if module is None:
                continue
            if cut == len(path) and self.rows[i].name == name:  # the row is the module itself
                continue
            is_block = not isinstance(module, CONTAINERS) or (cut > 1 and all(
                not list(child.children()) for child in module.children()))
            if is_block and sum(1 for j in self.boxes if self.rows[j].path[:cut] == own[:cut]) >= 2:
                return name
        return None

    # -- repeated blocks -----------------------------------------------------------------
    def _signature(self, block: str, members: list[int]) -> tuple:
        position = {row: k for k, row in enumerate(members)}
        parts = [type(self.modules[block]).__name__]
        for row in members:
            r = self.rows[row]
            # outside inputs once each: a dense layer reads every earlier feature map, one more each time
            inputs = tuple(dict.fromkeys(position.get(self.owner.get(j, j), "out") for j in r.inputs))
            parts.append((self.boxes[row].label, tuple(self.boxes[row].extras), inputs))
        return tuple(parts)

    def _fold_repeats(self) -> None:
        """Draw each run of identical sibling blocks that follow one another once, marked ×N."""
        frames = set(self.block_of.values()) - {None}
        members = {name: [i for i in self.boxes if self.block_of[i] is not None
                          and (self.block_of[i] == name or self.block_of[i].startswith(name + "."))]
                   for name in frames}
        position = {row: k for k, row in enumerate(self.boxes)}
        siblings: dict[str | None, list[str]] = {}
        for name in sorted(frames, key=lambda n: (n.count("."), members[n][0])):
            siblings.setdefault(_frame_parent(name, frames), []).append(name)
        for parent in sorted(siblings, key=lambda n: -1 if n is None else n.count(".")):
            names = sorted(siblings[parent], key=lambda n: members[n][0])
            run: list[str] = []
            for name in names + [None]:
                if name is not None and members[name][0] in self.stands_for:
                    continue  # inside a later copy of a block already folded
                if name is not None and run and position[members[name][0]] == position[members[run[-1]][-1]] + 1 \
                        and self._signature(name, members[name]) == self._signature(run[-1], members[run[-1]]):
                    run.append(name)
                    continue
                if len(run) > 1:
                    self.repeats[run[0]] = (len(run), list(run))
                    for k, later in enumerate(run[1:], start=1):
                        for mine, twin in zip(members[later], members[run[0]]):
                            self.stands_for[mine] = twin
                            self.order[mine] = k
                run = [name] if name is not None else []

    # -- the picture ---------------------------------------------------------------------
    def digraph(self, title: str | None = None, whole: bool = True):
        """The Graphviz graph; `whole=False` draws a part of a network (no title, no output box)."""
        import graphviz

        graph = graphviz.Digraph(name=self.result.model_name or "model")
        graph.attr(rankdir="TB", nodesep="0.25", ranksep="0.3", fontname="Helvetica", fontsize="11",
                   label=(title or self.default_title()) if whole else "", labelloc="t")
        graph.attr("node", shape="box", style="rounded,filled", fontname="Helvetica", fontsize="10", margin="0.12,0.04",
                   height="0.3")
        graph.attr("edge", fontname="Helvetica", fontsize="8", color="#555555", arrowsize="0.6")
        drawn = [i for i in self.boxes if i not in self.stands_for]
        frames: dict[str | None, list[int]] = {}
        for i in drawn:
            frames.setdefault(self.block_of.get(i), []).append(i)
        self._nest(graph, frames, None)
        last = drawn[-1]
        if whole:
            graph.node("output", f"output\n{_shape(self.rows[self._last_row(last)].output_shape)}",
                       fillcolor=COLOURS["output"])
            graph.edge(f"n{last}", "output")
        edges: set[tuple[int, int]] = set()
        for i in self.boxes:
            for j in self.rows[i].inputs:
                source = self.owner.get(j, j)
                if source not in self.boxes:
                    continue
                a, b = self.stands_for.get(source, source), self.stands_for.get(i, i)
                if a == b or (self.order.get(source, 0) < self.order.get(i, 0) and self._same_run(source, i)):
                    continue
                if (a, b) in edges:
                    continue
                edges.add((a, b))
                graph.edge(f"n{a}", f"n{b}", label=" " + _shape(self.rows[self._last_row(source)].output_shape))
        return graph

    def _same_run(self, a: int, b: int) -> bool:
        return self.stands_for.get(a, a) != a or self.stands_for.get(b, b) != b

    def _last_row(self, box: int) -> int:
        return self.boxes[box].rows[-1]

    def _nest(self, graph, frames: dict, parent: str | None) -> None:
        """Nodes of `parent`'s frame, then each child frame as a cluster inside it."""
        for i in frames.get(parent, []):
            self._node(graph, i)
        children = sorted({name for name in frames if name is not None and _frame_parent(name, frames) == parent})
        for name in children:
            count, members = self.repeats.get(name, (1, [name]))
            module = self.modules[name]
            label = f"{type(module).__name__} ×{count}" if count > 1 else type(module).__name__
            where = f"{members[0]} … {members[-1].rsplit('.', 1)[-1]}" if count > 1 else name
            with graph.subgraph(name=f"cluster_{name}") as frame:
                frame.attr(label=f"{label}  ({where})", style="rounded,dashed" if count == 1 else "rounded,bold",
                           color="#777777" if count == 1 else "#1f4e79", fontsize="10", labeljust="l")
                self._nest(frame, frames, name)

    def _node(self, graph, i: int) -> None:
        box = self.boxes[i]
        lines = [box.label]
        if box.extras:
            lines.append(", ".join(box.extras))
        lines += self._annotations(box)
        shape = "circle" if box.kind == "add" else "box"
        graph.node(f"n{i}", "\n".join(lines), fillcolor=COLOURS.get(box.kind, COLOURS["other"]), shape=shape,
                   **({"width": "0.3", "fixedsize": "true"} if shape == "circle" and len(lines) == 1 else {}))

    def _annotations(self, box: _Box) -> list[str]:
        rows = [self.rows[i] for i in box.rows]
        lines = []
        if box.kind == "input":
            return lines
        for what in self.annotate:
            if what == "params":
                lines.append(f"{sum(r.params for r in rows):,} params")
            elif what == "flops":
                lines.append(f"{one_decimal(sum(r.flops for r in rows) / 1e6)} MFLOPs")
            elif what == "memory":
                lines.append(f"{one_decimal(sum(r.activation_memory for r in rows) / MB)} MB act")
            elif what == "rf" and rows[-1].rf is not None:
                lines.append("RF whole image" if rows[-1].whole_image else f"RF {rows[-1].rf}")
        return lines

    def default_title(self) -> str:
        result = self.result
        shapes = result.input_size if isinstance(result.input_size, list) else [result.input_size]
        inputs = " + ".join(_shape(s) for s in shapes)
        flops = result.totals.flops / result.batch
        cost = f"{flops / 1e9:,.2f} GFLOPs" if flops >= 1e8 else f"{flops / 1e6:,.2f} MFLOPs"
        return f"{result.model_name}: input {inputs}, {result.totals.params:,} parameters, {cost} per image"


def _scope(row) -> tuple[str, ...]:
    """The module a row's operation runs in: a layer's parent, or the module a functional call is in."""
    return row.path[:-1] if row.name == ".".join(row.path) else row.path


def _frame_parent(name: str, frames: dict) -> str | None:
    """The nearest enclosing frame of `name` among those drawn (None: the top level)."""
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        candidate = ".".join(parts[:cut])
        if candidate in frames:
            return candidate
    return None


def _shape(shape) -> str:
    return "x".join(str(v) for v in shape)


# -- the seeds' module figures ----------------------------------------------------------------

MODULE_FIGURES = ("inception", "naive-inception", "residual", "bottleneck", "dense", "nin", "vgg", "nasnet-normal",
                  "nasnet-reduction")


def module_figure(name: str):
    """(module, input size, title) of one of the seeds' module figures at the seeds' sizes; a NASNet-A
    cell takes two inputs, h and h_prev, so its size is a list of two shapes."""
    from cnnlab.models.densenet import DenseBlock
    from cnnlab.models.googlenet import Inception, NaiveInception
    from cnnlab.models.nasnet import NORMAL_CELL, NORMAL_OUTPUT, REDUCTION_CELL, REDUCTION_OUTPUT, Cell
    from cnnlab.models.nin import nin_block
    from cnnlab.layers.residual import BasicBlock, Bottleneck

    figures = {
        "inception": (lambda: Inception(256, 128, 64, 192, 64, 96, 64), (256, 28, 28),
                      "Inception module with 1x1 bottlenecks (seed 000: 28x28x256 in, 271M multiply-adds)"),
        "naive-inception": (lambda: NaiveInception(256, 128, 192, 96), (256, 28, 28),
                            "Naive inception module (seed 000: 28x28x256 in, 854M multiply-adds)"),
        "residual": (lambda: BasicBlock(64, 64), (64, 56, 56), "Residual block (ResNet-18/34, stage 1)"),
        "bottleneck": (lambda: Bottleneck(256, 64), (256, 56, 56), "Bottleneck block (ResNet-50/101/152, stage 1)"),
        "dense": (lambda: DenseBlock(6, 64, 32), (64, 56, 56), "Dense block (DenseNet-121, block 1: 6 layers, k = 32)"),
        "nin": (lambda: nin_block(3, 96, 11, 4, 0), (3, 224, 224),
                "NiN mlpconv block (11x11 conv, then two 1x1 convs)"),
        "vgg": (lambda: _vgg_stage(), (64, 112, 112), "VGG stage: 3x3 convs, then 2x2 max pool (VGG-16 stage 2)"),
        "nasnet-normal": (lambda: Cell(NORMAL_CELL, NORMAL_OUTPUT, 264, 264, 44, "conv"), [(264, 28, 28)] * 2,
                          "NASNet-A Normal cell (Zoph et al. 2018, Fig. 4; NASNet-A Mobile, stage 1: 5 blocks, 44 wide)"),
        "nasnet-reduction": (lambda: Cell(REDUCTION_CELL, REDUCTION_OUTPUT, 264, 264, 88, "conv"), [(264, 28, 28)] * 2,
                             "NASNet-A Reduction cell (Zoph et al. 2018, Fig. 4; NASNet-A Mobile, the first reduction)"),
    }
    if name not in figures:
        raise CnnlabError(f"unknown module figure {name!r}: choose from {', '.join(figures)}")
    build, size, title = figures[name]
    return build(), size, title


def _vgg_stage() -> nn.Module:
    return nn.Sequential(nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(128, 128, 3, padding=1),
                         nn.ReLU(inplace=True), nn.MaxPool2d(2, 2))
