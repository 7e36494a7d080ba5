"""Per-layer cost tables: what seed 003 works out by hand, for any network, instantly."""

from __future__ import annotations

import csv
import inspect
import io
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_leaves

from cnnlab import rendering
from cnnlab.analysis import formulas, seed_tables
from cnnlab.analysis.formulas import one_decimal
from cnnlab.analysis.memory import AMP_NAMES, TrainingPeak, TrainingStep
from cnnlab.analysis.inputs import meta_model, parse_input_size
from cnnlab.analysis.trace import LayerRow, TraceSettings, meta_example, trace
from cnnlab.errors import CnnlabError, InputShapeError

MB = formulas.MB


@dataclass
class Totals:
    params: int
    trainable_params: int
    flops: int
    macs: int
    elementwise_ops: int
    activation_memory: int
    parameter_memory: int
    activations: int  # per image, over the rows that hold a tensor of their own
    output_shape: tuple[int, ...]

    @property
    def training_memory(self) -> int:
        return self.activation_memory + self.parameter_memory


@dataclass
class TreeNode:
    """A line of the layer tree: one layer (`row`), or a module that holds several layers (a stage,
    a block) with their sums: parameters, FLOPs, MACs, element-wise work and memory added up, the
    output and receptive field of its last layer."""

    name: str
    parent: str  # the enclosing module's name; "" at the top
    depth: int
    row: LayerRow | None = None
    children: list[TreeNode] = field(default_factory=list)
    layers: int = 0
    params: int = 0
    flops: int = 0
    macs: int = 0
    elementwise_ops: int = 0
    activation_memory: int = 0
    parameter_memory: int = 0
    output_shape: tuple[int, ...] = ()
    rf: int | None = None

    SUMMED = ("params", "flops", "macs", "elementwise_ops", "activation_memory", "parameter_memory")

    @property
    def is_group(self) -> bool:
        return self.row is None

    def add(self, row: LayerRow) -> None:
        self.layers += 1
        for key in self.SUMMED:
            setattr(self, key, getattr(self, key) + getattr(row, key))
        self.output_shape, self.rf = row.output_shape, row.rf

    def walk(self):
        """This node and everything under it, in reading order."""
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass
class Summary:
    """The rows of a network's per-layer table and their totals (a whole minibatch's costs)."""

    model_name: str
    input_size: tuple[int, int, int]
    batch: int
    dtype: str
    optimizer: str
    rows: list[LayerRow]
    totals: Totals
    folded_depth: int | None = None
    notes: list[str] = field(default_factory=list)
    not_counted: list[str] = field(default_factory=list)  # operations whose work no formula covers
    training_peak: TrainingPeak | None = None  # a simulated training step's real peak (summary(..., peak=True))
    paper_names: dict[str, str] = field(default_factory=dict)  # row name -> the paper's name (VGG's conv3_2)
    module_types: dict[str, str] = field(default_factory=dict)  # module name -> its class ("layer1.0": "BasicBlock")

    # -- lookups ----------------------------------------------------------------------------
    def row(self, name: str) -> LayerRow:
        """The row called `name`; a unique suffix works too ("conv1" for "features.conv1")."""
        for row in self.rows:
            if row.name == name:
                return row
        matches = [row for row in self.rows if row.name.endswith("." + name) or row.name.split(".")[-1] == name]
        if len(matches) == 1:
            return matches[0]
        hint = f"; it matches {', '.join(r.name for r in matches[:5])}" if matches else ""
        raise CnnlabError(f"no single layer called {name!r} in {self.model_name}{hint} (names are shown in the Layer column)")

    @property
    def bytes_per_element(self) -> int:
        return formulas.DTYPE_BYTES[self.dtype]

    def per_image_activation_memory(self) -> float:
        return self.totals.activation_memory / self.batch

    def largest_batch(self, memory_bytes: int) -> int:
        """The largest minibatch whose training memory fits `memory_bytes` under the seeds' model:
        parameters (with optimizer state) are fixed, activations grow linearly with the batch."""
        free = memory_bytes - self.totals.parameter_memory
        return max(0, int(free // self.per_image_activation_memory())) if free > 0 else 0

    def step_live(self, row: LayerRow) -> int | None:
        """The most bytes alive while this row's module ran in the simulated training step
        (forward or backward; a folded row takes its deepest layers' figure), or None."""
        if self.training_peak is None:
            return None
        live = self.training_peak.live_by_layer
        prefix = row.name + "."
        values = [value for name, value in live.items() if name == row.name or name.startswith(prefix)]
        return max(values) if values else None

    def tree(self) -> list[TreeNode]:
        """The rows as a tree of the modules that hold several of them (stage, block, layer), in
        reading order; the top-level nodes are returned, each holding its children."""
        parts_of = [tuple(row.name.split(".")) if row.kind != "input" else (row.name,) for row in self.rows]
        counts: dict[tuple[str, ...], int] = {}
        for parts in parts_of:
            for cut in range(1, len(parts)):
                counts[parts[:cut]] = counts.get(parts[:cut], 0) + 1
        top: list[TreeNode] = []
        made: dict[tuple[str, ...], TreeNode] = {}

        def enclosing(parts: tuple[str, ...]) -> TreeNode | None:
            for cut in range(len(parts) - 1, 0, -1):
                if parts[:cut] in made:
                    return made[parts[:cut]]
            return None

        for row, parts in zip(self.rows, parts_of):
            for cut in range(1, len(parts)):
                prefix = parts[:cut]
                if counts[prefix] >= 2 and prefix not in made:
                    parent = enclosing(prefix)
                    node = TreeNode(".".join(prefix), parent.name if parent else "", parent.depth + 1 if parent else 0)
                    (parent.children if parent else top).append(node)
                    made[prefix] = node
            parent = enclosing(parts)
            leaf = TreeNode(row.name, parent.name if parent else "", parent.depth + 1 if parent else 0, row=row)
            leaf.add(row)
            (parent.children if parent else top).append(leaf)
            for cut in range(1, len(parts)):
                if parts[:cut] in made:
                    made[parts[:cut]].add(row)
        return top

    # -- renderers --------------------------------------------------------------------------
    def to_dict(self) -> dict:
        totals = asdict(self.totals)
        totals["training_memory"] = self.totals.training_memory
        return {
            "model": self.model_name,
            "input_size": list(self.input_size),
            "batch": self.batch,
            "dtype": self.dtype,
            "optimizer": self.optimizer,
            "conventions": "seed 003: FLOPs = 2 x MACs for conv/linear, K_h x K_w per pooled output; "
                           "biases not counted; activation memory = 2 x batch x activations x bytes (input once); "
                           "parameter memory = (2 + optimizer slots) x params x bytes; MB = 2^20 bytes",
            "rows": [{**{k: v for k, v in asdict(row).items() if k not in ("explain", "path")},
                      **({"step_live_bytes": self.step_live(row)} if self.training_peak else {})} for row in self.rows],
            "totals": totals,
            "notes": self.notes,
            "not_counted": self.not_counted,
            "peak_training": self.training_peak.to_dict() if self.training_peak else None,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    TABLE_COLUMNS = (
        "Layer", "Kernels", "Kernel H/W", "S", "P", "Activations H/W", "Activations Channels", "#Activations",
        "#params", "FLOPs (M)", "MACs (M)", "Element-wise (M)", "Activations memory (MB)", "Parameters memory (MB)",
        "RF", "Jump",
    )

    # The terminal table's headers (the CSV and Markdown keep seed 003's full names above).
    SHORT_COLUMNS = (
        "Layer", "Kernels", "K", "S", "P", "H/W", "C", "#Activations", "#Params", "MFLOPs", "MMACs", "M elem-ops",
        "Act MB", "Param MB", "RF", "Jump",
    )

    def table_rows(self) -> list[list[str]]:
        out = []
        for row in self.rows:
            kernel = "x".join(map(str, sorted(set(row.kernel_size)))) if row.kernel_size else ""
            if row.kernel_size and row.kernel_size[0] != row.kernel_size[1]:
                kernel = f"{row.kernel_size[0]}x{row.kernel_size[1]}"
            kernels = str(row.kernels) if row.kernels is not None else ""
            if row.widths:
                kernels = "/".join(map(str, row.widths))
            stride, padding = _pair_text(row.stride), _pair_text(row.padding)
            if row.branches:  # an inception module: each branch's window, as the seed's columns give them
                kernel, stride, padding = ("/".join(str(branch[i]) for branch in row.branches) for i in range(3))
                stride = stride if len(set(stride.split("/"))) > 1 else stride.split("/")[0]
            out.append([
                row.name, kernels, kernel,
                stride, padding,
                row.height_width, str(row.channels), f"{row.activations:,}", f"{row.params:,}",
                one_decimal(row.flops / 1e6), one_decimal(row.macs / 1e6), one_decimal(row.elementwise_ops / 1e6),
                one_decimal(row.activation_memory / MB), one_decimal(row.parameter_memory / MB),
                row.rf_text, "" if row.jump is None or row.whole_image else str(row.jump),
            ])
        return out

    def totals_row(self) -> list[str]:
        t = self.totals
        return ["Totals", "", "", "", "", "", "", f"{t.activations:,}", f"{t.params:,}", one_decimal(t.flops / 1e6),
                one_decimal(t.macs / 1e6), one_decimal(t.elementwise_ops / 1e6), one_decimal(t.activation_memory / MB),
                one_decimal(t.parameter_memory / MB), "", ""]

    def to_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(self.TABLE_COLUMNS)
        writer.writerows([[cell.replace(",", "") if i >= 7 else cell for i, cell in enumerate(r)] for r in self.table_rows()])
        writer.writerow([cell.replace(",", "") for cell in self.totals_row()])
        return buffer.getvalue()

    def to_markdown(self) -> str:
        lines = ["| " + " | ".join(self.TABLE_COLUMNS) + " |", "|" + "---|" * len(self.TABLE_COLUMNS)]
        lines += ["| " + " | ".join(r) + " |" for r in self.table_rows()]
        lines.append("| " + " | ".join(f"**{cell}**" if cell else "" for cell in self.totals_row()) + " |")
        return "\n".join(lines) + "\n\n" + self.headline() + "\n"

    def rich_table(self, max_rows: int | None = None):
        """The table for a terminal; `max_rows` keeps the first and last rows of a longer one, with
        a line saying how many are left out between them."""
        from rich.table import Table

        table = Table(title=self.title(), caption=self.headline(), show_lines=False)
        peak = self.training_peak
        columns = self.SHORT_COLUMNS + (("Step MB",) if peak else ())
        for column in columns:
            table.add_column(column, justify="left" if column == "Layer" else "right", overflow="fold")
        peak_row = self._peak_row()
        shown = list(zip(self.table_rows(), self.rows))
        left_out = len(shown) - max_rows if max_rows is not None and len(shown) > max_rows else 0
        for index, (values, row) in enumerate(shown):
            if left_out and index == max_rows // 2:
                table.add_row(f"... {left_out:,} rows ...", *[""] * (len(columns) - 1), style="dim")
            if left_out and max_rows // 2 <= index < max_rows // 2 + left_out:
                continue
            style = "dim" if row.kind in ("activation", "view", "dropout") else None
            if peak:
                live = self.step_live(row)
                values = [*values, "" if live is None else one_decimal(live / MB) + (" ◀ peak" if row is peak_row else "")]
                style = "bold red" if row is peak_row else style
            table.add_row(*values, style=style)
        table.add_row(*self.totals_row(), *([one_decimal(peak.peak / MB)] if peak else []), style="bold")
        return table

    def _peak_row(self) -> LayerRow | None:
        """The row whose module was running when the simulated step peaked."""
        if self.training_peak is None or not self.training_peak.layer:
            return None
        layer = self.training_peak.layer
        best = None
        for row in self.rows:
            if layer == row.name or layer.startswith(row.name + "."):
                best = row if best is None or len(row.name) > len(best.name) else best
        return best

    def title(self) -> str:
        shapes = self.input_size if isinstance(self.input_size, list) else [self.input_size]
        inputs = " + ".join("x".join(map(str, shape)) for shape in shapes)
        return f"{self.model_name}: input {inputs}, minibatch {self.batch}, {self.dtype}, {self.optimizer}"

    def headline(self) -> str:
        t = self.totals
        per_image = t.flops / self.batch / 1e9
        return (
            f"{t.params:,} parameters ({t.trainable_params:,} trainable); {t.flops / 1e9:,.2f} GFLOPs per minibatch "
            f"({per_image:,.3f} per image; {t.macs / self.batch / 1e9:,.3f} GMACs per image) + "
            f"{t.elementwise_ops / 1e9:,.2f} G element-wise ops; training memory "
            f"{t.activation_memory / MB:,.1f} MB activations + {t.parameter_memory / MB:,.1f} MB parameters = "
            f"{t.training_memory / MB:,.1f} MB (the seeds' convention)"
            + (f"\n{self.peak_line()}" if self.training_peak else "")
            + (f"\nnot counted (no formula; their work is in no column): {', '.join(self.not_counted)}"
               if self.not_counted else "")
        )

    def peak_line(self) -> str:
        p = self.training_peak
        precision = AMP_NAMES[p.amp]
        layout = ", channels_last" if p.channels_last else ""
        return (f"a real training step ({p.optimizer}, {precision}{layout}; simulated, step by step): peak "
                f"{p.breakdown()}")

    def explain(self, layer: str | None = None) -> Explanation:
        """The formulas of one layer (or of every layer) filled in with its numbers; text that a
        notebook shows as a table of worked lines."""
        rows = [self.row(layer)] if layer else [r for r in self.rows if r.kind not in ("view",) or r.explain]
        blocks = []
        for row in rows:
            blocks.append(f"{row.name} ({row.op}):\n" + "\n".join(f"  {line}" for line in row.explain))
        explanation = Explanation("\n".join(blocks))
        explanation.rows = rows
        explanation.title = f"{self.model_name}, minibatch {self.batch}, {self.dtype}, {self.optimizer}"
        return explanation

    # -- shown in a terminal and in a notebook ---------------------------------------------------
    FOLD_ABOVE = 40  # a table of more rows starts with its modules folded
    NAME_WIDTH = 40  # characters of a layer's name shown; a longer one is cut, whole in its tooltip

    def __repr__(self) -> str:  # the table, not the dataclass's fields (a notebook shows _repr_html_)
        return self.to_text()

    def __str__(self) -> str:
        return self.to_text()

    def to_text(self, width: int = 180, max_rows: int | None = None) -> str:
        """The table as `cnnlab summary` prints it, with its notes (`max_rows`: its first and last rows)."""
        from rich.console import Console

        # force_jupyter=False: in a kernel, rich would also display what it prints to the string
        out = Console(file=io.StringIO(), width=width, color_system=None, soft_wrap=True, force_jupyter=False)
        out.print(self.rich_table(max_rows))
        for note in self.notes:
            out.print(f"note: {note}", highlight=False)
        return out.file.getvalue().rstrip("\n")

    TEXT_ROWS = 30  # rows of the text a notebook carries beside the HTML (its fallback)

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        """What a notebook shows: the HTML table, and as its text fallback the table's first and
        last rows (the whole table as text takes rich half a second for ResNet-152; print(s) has it)."""
        return rendering.mimebundle(self.to_text(max_rows=self.TEXT_ROWS), self.to_html())

    def _repr_html_(self) -> str:
        return self.to_html()

    def to_html(self, folded: bool | None = None) -> str:
        """The table for a notebook: each module that holds several layers (a stage, a block) folds
        under one line with its sums; folded at first when the table is long (`folded` overrides).
        Where seed 003 works this model out at these settings, the slide's values sit under
        cnnlab's rows, each that differs marked and explained."""
        columns = list(self.SHORT_COLUMNS) + (["Step MB"] if self.training_peak else [])
        peak_row = self._peak_row()
        cells_of, class_of = {}, {}
        for row, values in zip(self.rows, self.table_rows()):
            long_name = len(row.name) > self.NAME_WIDTH
            cells = [rendering.Cell(values[0], title=f"{row.name}: {row.op}" if long_name else row.op), *values[1:]]
            if self.training_peak:
                live = self.step_live(row)
                cells.append("" if live is None else one_decimal(live / MB) + (" ◀ peak" if row is peak_row else ""))
            cells_of[id(row)] = cells
            class_of[id(row)] = ("mark" if row is peak_row and self.training_peak else
                                 "dim" if row.kind in ("activation", "view", "dropout") else "")
        table = seed_tables.seed_table(self.model_name, self.input_size, self.batch, self.dtype, self.optimizer)
        seed_rows: dict[str, list[list]] = {}
        slips = []
        for seed, cells in self.seed_comparisons():
            seed_rows.setdefault(seed.layer, []).append(self._seed_cells(seed, cells, len(columns)))
            slips += [f"{seed.name} {cell.header}: printed {cell.printed}; {cell.why}" for cell in cells if not cell.equal]
        layout = rendering.column_widths(columns, [*cells_of.values(), self.totals_row(),
                                                   *(cells for rows in seed_rows.values() for cells in rows)],
                                         first_max=self.NAME_WIDTH)
        open_modules = len(self.rows) <= self.FOLD_ABOVE if folded is None else not folded

        def body(nodes: list[TreeNode]) -> str:
            parts, pending, classes = [], [], []

            def flush() -> None:
                if pending:
                    parts.append(rendering.table(columns, list(pending), row_classes=list(classes), layout=layout,
                                                 head=False, scroll=False))
                    pending.clear()
                    classes.clear()

            for node in nodes:
                if node.is_group:
                    flush()
                    parts.append(rendering.fold(node.name, self.group_detail(node), body(node.children),
                                                open=open_modules))
                    continue
                pending.append(cells_of[id(node.row)])
                classes.append(class_of[id(node.row)])
                for cells in seed_rows.get(node.row.name, ()):
                    pending.append(cells)
                    classes.append("aside")
            flush()
            return "".join(parts)

        totals = [self.totals_row() + ([one_decimal(self.training_peak.peak / MB)] if self.training_peak else [])]
        totals += seed_rows.get("Totals", [])
        layers = (layout.style() + rendering.table(columns, [], layout=layout, scroll=False) + body(self.tree())
                  + rendering.table(columns, totals, row_classes=["total"] + ["aside"] * (len(totals) - 1),
                                    layout=layout, head=False, scroll=False))
        notes = list(self.notes)
        if table is None and self.model_name in seed_tables.TABLES:
            seeds = seed_tables.TABLES[self.model_name]
            notes.append(f"seed 003 works {self.model_name} out for a minibatch of 128 in float32 with momentum "
                         f"({'x'.join(map(str, seeds.input_size))}): summary({self.model_name!r}, batch=128) shows "
                         "the slide's values beside cnnlab's")
        return rendering.frame(
            rendering.facts(self._facts()),
            rendering.scrolled(layers),
            rendering.notes(slips, "seed 003"),
            rendering.notes(notes),
            rendering.notes([", ".join(self.not_counted)], "not counted (no formula; their work is in no column)")
            if self.not_counted else "",
            title=self.title(),
        )

    _SEED_COLUMNS = {"activations": 7, "params_k": 8, "mflops": 9, "activation_mb": 12, "parameter_mb": 13}

    def seed_comparisons(self) -> list[tuple[seed_tables.SeedRow, list[seed_tables.SeedCell]]]:
        """Seed 003's printed rows for this summary (when the slides work this model out at these
        settings), each with its values against cnnlab's: equal, or a slip and why."""
        table = seed_tables.seed_table(self.model_name, self.input_size, self.batch, self.dtype, self.optimizer)
        found = []
        for seed in table.rows if table else ():
            if seed.layer == "Totals":
                t = self.totals
                values = seed_tables.cnnlab_values(0, t.params, t.flops, t.activation_memory, t.parameter_memory)
            else:
                rows = [row for row in self.rows if row.name == seed.layer]
                if not rows:  # folded away (depth=...)
                    continue
                values = seed_tables.cnnlab_values(rows[0].activations, rows[0].params, rows[0].flops,
                                                   rows[0].activation_memory, rows[0].parameter_memory)
            found.append((seed, seed_tables.compare_row(seed, values)))
        return found

    def _seed_cells(self, seed, cells, width: int) -> list:
        """A row of seed 003's values, in the columns where cnnlab's stand; those that differ marked."""
        row: list = [rendering.Cell(f"seed 003: {seed.name}", title="as the slide prints it")] + [""] * (width - 1)
        for cell in cells:
            row[self._SEED_COLUMNS[cell.column]] = (
                rendering.Cell(cell.printed, title="equal to cnnlab's at the printed precision") if cell.equal
                else rendering.Cell(cell.printed + " *", title=cell.why, differs=True))
        return row

    def group_detail(self, node: TreeNode) -> str:
        """One line on a module that holds several layers: what it holds, its output and its sums."""
        kind = self.module_types.get(node.name, "")
        blocks = [child for child in node.children if child.is_group]
        block_types = {self.module_types.get(child.name, "") for child in blocks}
        if len(blocks) > 1 and len(blocks) == len(node.children) and len(block_types) == 1:
            kind = f"{len(blocks)} × {block_types.pop()}"
        shape = "x".join(map(str, node.output_shape))
        return (f"{kind + ' · ' if kind else ''}{node.layers} layers · output {shape} · {node.params:,} params · "
                f"{one_decimal(node.flops / 1e6)} MFLOPs · {one_decimal(node.activation_memory / MB)} MB activations")

    def _facts(self) -> list[tuple[str, str]]:
        t = self.totals
        facts = [
            ("parameters", f"{t.params:,} ({t.trainable_params:,} trainable)"),
            ("FLOPs", f"{t.flops / 1e9:,.2f} G per minibatch; {t.flops / self.batch / 1e9:,.3f} G per image "
                      f"({t.macs / self.batch / 1e9:,.3f} GMACs)"),
            ("element-wise", f"{t.elementwise_ops / 1e9:,.2f} G operations (BatchNorm, activations, adds...)"),
            ("training memory", f"{t.activation_memory / MB:,.1f} MB activations + {t.parameter_memory / MB:,.1f} MB "
                                f"parameters = {t.training_memory / MB:,.1f} MB (the seeds' convention)"),
        ]
        if self.training_peak:
            facts.append(("a real training step", self.peak_line().split(": ", 1)[1]))
        if t.output_shape:
            facts.append(("output", "x".join(map(str, t.output_shape))))
        return facts


class Explanation(str):
    """What `Summary.explain` returns: the worked formulas as text (printed as `--explain` prints
    them), shown in a notebook as a table per layer."""

    rows: list[LayerRow] = []
    title: str = ""

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(str(self))

    def _repr_html_(self) -> str:
        parts = [rendering.fold(row.name, row.op, rendering.formulas(row.explain), open=True) for row in self.rows]
        return rendering.frame(*parts, title=f"formulas: {self.title}")


def _pair_text(value) -> str:
    if not value:
        return ""
    return str(value[0]) if value[0] == value[1] else f"{value[0]}x{value[1]}"


def summary(
    model: nn.Module | str,
    input_size: tuple[int, ...] | str | list[tuple[int, ...]] | None = None,
    batch: int = 1,
    dtype: str = "float32",
    optimizer: str = "momentum",
    depth: int | None = None,
    peak: bool = False,
    amp: str = "none",
    channels_last: bool = False,
    dtypes: torch.dtype | list[torch.dtype] | None = None,
    input_data=None,
    **model_kwargs,
) -> Summary:
    """The per-layer table of `model` (a zoo name or any nn.Module) for a minibatch of `batch`.

    Runs on the `meta` device: shapes only, so the cost does not depend on the batch.
    `depth` folds every module deeper than that many levels into one row per module at that level.
    `input_size` is one sample's shape, or a list of shapes for a forward that takes several inputs.
    The forward may return a tensor, a tuple, a list or a dict (its first tensor is the output).
    `peak=True` also simulates one training step (forward, backward and the `optimizer`'s step, with
    `amp` autocast and `channels_last` as training would run them) and records its real peak and
    what it is made of as `training_peak` (see cnnlab.analysis.memory).
    `dtypes` gives the input's element type (one, or one per input): `[torch.long]` for the token
    indices an embedding takes; float32 by default.
    `input_data` instead of `input_size`: an example input as the forward takes it (a tensor, a tuple
    or list of arguments, or a dict of keyword arguments), batch dimension included; only its shapes
    and types are used (on the meta device), and its batch is the summary's.
    """
    from cnnlab.models.base import CnnModel, check_input_rank_and_channels, explain_input_size_error

    if dtype not in formulas.DTYPE_BYTES:
        raise CnnlabError(f"unknown dtype {dtype!r}; choose one of {', '.join(formulas.DTYPE_BYTES)}")
    if optimizer not in formulas.OPTIMIZER_COPIES:
        raise CnnlabError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(formulas.OPTIMIZER_COPIES)}")
    call = None
    if input_data is not None:
        call, input_size, batch, dtypes = _from_example(input_data, input_size, dtypes)
    if batch < 1:
        raise CnnlabError(f"batch must be at least 1, got {batch}")
    owned = isinstance(model, str)  # built here on meta: the walk may use it without copying
    if owned:
        model = meta_model(model, input_size, **model_kwargs)
    name = getattr(model, "model_name", "") or type(model).__name__
    if input_size is None:
        if not isinstance(model, CnnModel):
            raise InputShapeError(f"{name} is not a cnnlab model, so its input size is unknown: pass input_size=(C, H, W)")
        input_size = model.default_input_size
    several = isinstance(input_size, list) and bool(input_size) and all(isinstance(v, (tuple, list)) for v in input_size)
    input_size = [parse_input_size(shape) for shape in input_size] if several else parse_input_size(input_size)
    settings = TraceSettings(batch=batch, bytes_per_element=formulas.DTYPE_BYTES[dtype], optimizer=optimizer)
    if isinstance(model, CnnModel) and not several:
        check_input_rank_and_channels(model, torch.empty(1, *input_size, device="meta"))
    # copied before the walk, which may change a model it owns (shape-only BatchNorm)
    step, step_error = None, None
    input_dtypes = _input_dtypes(dtypes, len(input_size) if several else 1)
    lazy = [name or type(module).__name__ for name, module in model.named_modules()
            if any(isinstance(p, nn.parameter.UninitializedParameter) for p in module.parameters(recurse=False))]
    if peak and lazy:
        step_error = ("its lazy modules have no parameters yet (they are made by the module's first real forward; "
                      "run one, then summarize it)")
    elif peak:
        try:
            step = TrainingStep(model, input_size, optimizer, amp, channels_last, dtypes=input_dtypes)
        except (CnnlabError, RuntimeError, NotImplementedError) as error:
            step_error = str(error).splitlines()[0]
    try:
        rows, tracer, output = trace(model, input_size, settings, copy_model=not owned, dtypes=input_dtypes, call=call)
    except CnnlabError:
        raise
    except Exception as error:  # noqa: BLE001 - the module's own error, said in one line and chained
        if isinstance(error, RuntimeError) and isinstance(model, CnnModel) and not several:
            explain_input_size_error(model, torch.empty(1, *input_size, device="meta"), error)
        shapes = " + ".join("x".join(map(str, shape)) for shape in (input_size if several else [input_size]))
        kinds = " + ".join(str(dtype).removeprefix("torch.") for dtype in input_dtypes)
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        if _names_a_dtype(first):
            raise CnnlabError(f"{name} cannot take a {shapes} {kinds} input: {first}; give the input's type with "
                              "dtypes=[torch.long] (e.g. for an embedding's indices)") from error
        if isinstance(error, RuntimeError) and _names_a_shape(first):
            raise InputShapeError(f"{name} cannot take a {shapes} input: {first}") from None
        raise CnnlabError(f"{name}'s forward raised {type(error).__name__} on a {shapes} {kinds} input (on the meta "
                          f"device, shapes only): {first}") from error

    input_rows = [_input_row(shape, settings, name)
                  for name, shape in zip(_input_names(model, len(input_size) if several else 1), input_size if several else [input_size])]
    # the walked copy's parameters: a lazy module's are materialized there, from the input
    all_params = {id(p): p for p in tracer.model.parameters()}
    totals = Totals(
        params=sum(p.numel() for p in all_params.values()),
        trainable_params=sum(p.numel() for p in all_params.values() if p.requires_grad),
        flops=sum(r.flops for r in rows),
        macs=sum(r.macs for r in rows),
        elementwise_ops=sum(r.elementwise_ops for r in rows),
        activation_memory=sum(r.activation_memory for r in input_rows) + sum(r.activation_memory for r in rows),
        parameter_memory=int(formulas.parameter_memory(sum(p.numel() for p in all_params.values() if p.requires_grad),
                                                       optimizer, settings.bytes_per_element).value),
        activations=sum(r.activations for r in input_rows) + sum(r.activations for r in rows if r.new_tensor),
        output_shape=tuple(output.shape[1:]) if output is not None else (),
    )
    notes, not_counted = [], list(tracer.not_counted)
    returned = tracer.returned
    if output is None:
        what = "None" if returned is None else type(returned).__name__
        notes.append(f"the forward returned {what}, no tensor: the work of every layer that ran is "
                     "counted, the output has no size")
    elif isinstance(returned, torch.distributions.Distribution):
        notes.append(f"the forward returned a {type(returned).__name__} distribution: its size is that of its first "
                     "parameter")
    masked = {f"{name + '.' if name else ''}{buffer[:-len('_mask')]}": int((mask == 0).sum())
              for name, module in model.named_modules() for buffer, mask in module.named_buffers(recurse=False)
              if buffer.endswith("_mask") and hasattr(module, buffer[:-len("_mask")] + "_orig") and not mask.is_meta}
    if masked:
        zeros = sum(masked.values())
        notes.append(f"pruning masks hold {zeros:,} weights at zero ({', '.join(f'{k}: {v:,}' for k, v in masked.items())}): "
                     f"{totals.params - zeros:,} effective parameters of the {totals.params:,} counted")
    if lazy:
        notes.append(f"lazy modules ({', '.join(lazy)}) sized here from the {'x'.join(map(str, input_size))} input on the meta "
                     "device (the module itself stays uninitialized until its first real forward)")
    idle, uncounted = _unassigned_parameters(tracer)
    if idle:
        notes.append(f"{sum(idle.values()):,} parameters belong to modules the forward pass did not run "
                     f"({', '.join(idle)}; e.g. auxiliary heads in eval mode)")
    if uncounted:
        notes.append(f"{sum(uncounted.values()):,} parameters belong to modules that ran but that no formula covers "
                     f"({', '.join(uncounted)}): their work is in no column")
        # the module itself is named, not the functional calls inside it
        owners = tuple(label.split(" (")[0] + "." for label in uncounted)
        not_counted = [entry for entry in not_counted if not entry.startswith(owners)] + list(uncounted)
    paper_names = dict(getattr(model, "paper_names", {}) or {})
    shift = len(input_rows)  # the trace counts its rows from 0 and its inputs as -1, -2, ...
    for row in rows:
        row.inputs = tuple(i + shift if i >= 0 else -1 - i for i in row.inputs)
    module_types = {module_name: type(module).__name__ for module_name, module in model.named_modules() if module_name}
    result = Summary(name, input_size, batch, dtype, optimizer, input_rows + rows, totals, notes=notes,
                     not_counted=not_counted, paper_names=paper_names, module_types=module_types)
    if depth is not None:
        result.rows = fold_rows(result.rows, depth, tracer, model, settings)
        result.folded_depth = depth
    if step is not None:
        try:
            result.training_peak = step.peak(batch)
        except CnnlabError as error:
            step_error = str(error)
        except (RuntimeError, ValueError) as error:  # e.g. BatchNorm cannot train on one value per channel
            step_error = f"{str(error).splitlines()[0]} (at minibatch {batch})"
    if step_error:
        result.notes.append(f"the training step was not simulated: {step_error}")
    return result


def _unassigned_parameters(tracer) -> tuple[dict[str, int], dict[str, int]]:
    """Parameters no row counted, by module: ({module: count} of modules that did not run,
    {module (type): count} of modules that ran without a formula)."""
    idle, uncounted = {}, {}
    for module_name, module in tracer.model.named_modules():
        own = sum(p.numel() for p in module.parameters(recurse=False) if id(p) not in tracer.seen_params)
        if own:
            if id(module) in tracer.ran:
                uncounted[f"{module_name or 'the model'} ({type(module).__name__})"] = own
            else:
                idle[module_name or type(module).__name__] = own
    return idle, uncounted


def _input_names(model: nn.Module, count: int) -> list[str]:
    """"input" for one input; for several, the names of `forward`'s arguments (a NASNet cell's h and
    h_prev), or input1, input2, ... where forward takes *args."""
    if count == 1:
        return ["input"]
    parameters = [p for p in inspect.signature(model.forward).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(parameters) >= count:
        return [p.name for p in parameters[:count]]
    return [f"input{index}" for index in range(1, count + 1)]


def _from_example(input_data, input_size, dtypes) -> tuple[tuple[tuple, dict], Any, int, list[torch.dtype]]:
    """The meta call, the per-sample shapes, the batch and the types of an example input."""
    if input_size is not None or dtypes is not None:
        raise CnnlabError("give input_data alone: its tensors carry their own shapes and types (input_size and dtypes "
                          "are for a summary without an example)")
    try:
        call = meta_example(input_data)
    except TypeError:
        raise CnnlabError(f"input_data must be a tensor, a tuple or list of the forward's arguments, or a dict of its "
                          f"keyword arguments; got {type(input_data).__name__}") from None
    tensors = [leaf for leaf in tree_leaves(call) if isinstance(leaf, torch.Tensor)]
    if not tensors or any(t.dim() == 0 for t in tensors):
        raise CnnlabError("input_data needs at least one tensor, each with a batch dimension first (e.g. "
                          "torch.zeros(1, 3, 224, 224))")
    shapes = [tuple(t.shape[1:]) for t in tensors]
    return call, (shapes if len(shapes) > 1 else shapes[0]), int(tensors[0].shape[0]), [t.dtype for t in tensors]


def _input_dtypes(dtypes, count: int) -> list[torch.dtype]:
    """One element type per input: float32 unless `dtypes` says (one for all, or one each)."""
    if dtypes is None:
        return [torch.float32] * count
    given = list(dtypes) if isinstance(dtypes, (list, tuple)) else [dtypes] * count
    if len(given) != count or not all(isinstance(d, torch.dtype) for d in given):
        raise CnnlabError(f"dtypes must be {count} torch dtype(s), one per input (e.g. [torch.long]), got {dtypes!r}")
    return given


def _names_a_dtype(message: str) -> bool:
    return any(words in message for words in ("scalar type", "dtype", "Long, Int", "must be Long"))


def _names_a_shape(message: str) -> bool:
    return any(word in message.lower() for word in ("shape", "size", "dimension", "mat1 and mat2", "expected input",
                                                    "channels", "too small", "out of bounds", "dims", "reduction dim",
                                                    "must match", "kernel size"))


def _input_row(input_size: tuple[int, ...], settings: TraceSettings, name: str = "input") -> LayerRow:
    if len(input_size) == 3:
        c, h, w = input_size
        acts = formulas.activations(h, w, c)
    else:
        count = 1
        for size in input_size:
            count *= size
        acts = formulas.Worked(count, f"activations = {' x '.join(map(str, input_size))} = {count:,}")
    memory = formulas.activation_memory(settings.batch, acts.value, settings.bytes_per_element, copies=1)
    return LayerRow(name=name, kind="input", op="input", depth=0, output_shape=tuple(input_size), activations=acts.value,
                    activation_memory=int(memory.value), rf=1, jump=1, rf_centre=0.5,
                    explain=[acts.text, memory.text + " (the input is stored once: it needs no gradient)"])


def fold_rows(rows: list[LayerRow], depth: int, tracer, model: nn.Module, settings: TraceSettings) -> list[LayerRow]:
    """Merge the rows of every module nested deeper than `depth` into one row for its ancestor at `depth`."""
    if depth < 1:
        raise CnnlabError(f"--depth must be 1 or more (1 = the model's top-level modules), got {depth}")
    modules = dict(model.named_modules())
    folded: list[LayerRow] = []
    group: list[LayerRow] = []
    group_path: tuple[str, ...] | None = None

    members: list[list[int]] = []  # for each folded row, the indices of the rows it holds
    into: dict[int, int] = {}  # row index -> folded row index
    group_members: list[int] = []

    def flush() -> None:
        if group:
            folded.append(_merge(group, group_path, tracer, modules, settings))
            members.append(list(group_members))
            group.clear()
            group_members.clear()

    for i, row in enumerate(rows):
        parts = tuple(row.name.split(".")) if row.kind != "input" else ()
        if len(parts) <= depth:  # already at or above the requested depth
            flush()
            group_path = None
            folded.append(replace(row))
            members.append([i])
            continue
        if parts[:depth] != group_path:
            flush()
            group_path = parts[:depth]
        group.append(row)
        group_members.append(i)
    flush()
    # the dataflow between folded rows: what each reads from outside itself
    for f, held in enumerate(members):
        for i in held:
            into[i] = f
    for f, held in enumerate(members):
        folded[f].inputs = tuple(sorted({into[j] for i in held for j in rows[i].inputs if j in into and into[j] != f}))
    return folded


def _merge(group: list[LayerRow], path: tuple[str, ...], tracer, modules: dict, settings: TraceSettings) -> LayerRow:
    name = ".".join(path)
    module = modules.get(name)
    output_info = tracer.block_outputs.get(name)
    last = group[-1]
    shape = tuple(output_info[0].shape[1:]) if output_info else last.output_shape
    field_ = tracer.field_of(output_info[0]) if output_info else None
    weighted = [r for r in group if r.kind in ("conv", "pool", "linear")]
    single = weighted[0] if len(weighted) == 1 else None
    widths = getattr(module, "widths", None)
    count = 1
    for size in shape:
        count *= size
    row = LayerRow(
        name=name, kind="block", op=type(module).__name__ if module is not None else "block", depth=len(path),
        output_shape=shape, activations=count, params=sum(r.params for r in group), flops=sum(r.flops for r in group),
        macs=sum(r.macs for r in group), elementwise_ops=sum(r.elementwise_ops for r in group),
        activation_memory=sum(r.activation_memory for r in group), parameter_memory=sum(r.parameter_memory for r in group),
        kernels=single.kernels if single else (shape[0] if widths is None else None),
        kernel_size=single.kernel_size if single else None, stride=single.stride if single else None,
        padding=single.padding if single else None, widths=tuple(widths) if widths else None,
        branches=getattr(module, "branch_geometry", None),
        rf=field_.r if field_ else last.rf, jump=field_.j if field_ else last.jump,
        rf_centre=field_.start if field_ else last.rf_centre, path=path,
    )
    output_memory = formulas.activation_memory(settings.batch, count, settings.bytes_per_element)
    row.explain = [f"{len(group)} operations folded: " + ", ".join(r.name.split(".")[-1] for r in group),
                   f"activation memory = sum over the folded operations = {row.activation_memory / MB:,.1f} MB "
                   f"(the block's output alone: {output_memory.text.split(' = ', 1)[1]})"]
    return row
