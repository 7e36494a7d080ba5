"""`cnnlab explore`: one offline page per network, where a click on any layer shows its numbers
worked out.

    cnnlab explore resnet50 --out resnet50.html
    cnnlab.explore(model, input_size=(3, 224, 224), batch=128).save("model.html")

The page holds the network's diagram (the same drawing as `cnnlab draw`: repeats folded as xN,
branches, joins, each edge's shape), zoomable and pannable, and beside it a panel: a click on a
box, or a name found with the search box, shows that layer's input and output shapes, parameters,
FLOPs and multiply-adds, activations, activation memory, its share of a training step's memory
(simulated), receptive field and jump, each with its formula filled in (what `summary --explain`
prints), and seed 003's printed value beside cnnlab's where the slides have the row. Every figure
is computed here, in Python, from the same summary rows as `cnnlab summary`, and embedded as JSON:
the page's script lays out, selects and shows; it computes nothing. Scripts and styles are inline
and nothing is fetched, so the file works from `file://`.

Two views of the network: the whole drawing (as `cnnlab draw`), zoomable and pannable, and "by
stage", where each module that holds several layers (a stage, a block) is one line with its sums,
and a click unfolds it in place into its blocks, a block into its layers (its own drawing), a
second click folds it; "expand all" and "fold all" do every one. Per-stage bars show where the
parameters, FLOPs and activation memory sit, and a layer's panel draws its output map: hovering a
position outlines the input region it sees.

Why the layout comes from Graphviz, while the page is built, and not from a layout library run in
the page: the page then shows exactly what `cnnlab draw` draws (one layout engine, one set of
folding rules), with no JavaScript library to vendor and keep; building a page needs `dot`, as
drawing does (`make graphviz`), and says so when it is missing. Unfolding in place needs no
layout in the page either: every run of layers between two foldable modules is laid out by
Graphviz on its own (all of them in one run of `dot`), and the page stacks these parts, so that
unfolding a stage inserts its blocks below its line and nothing above it moves.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from torch import nn

from cnnlab.analysis.formulas import MB, one_decimal
from cnnlab.analysis.summary import TreeNode
from cnnlab.errors import CnnlabError


def explore(model: nn.Module | str, input_size=None, batch: int = 1, out: str | Path | None = None,
            **model_kwargs) -> "Explorer":
    """The explorer page of `model` (a zoo name or any nn.Module) at `input_size` for a minibatch of
    `batch` (128 gives seed 003's figures); written to `out` when given."""
    from cnnlab.analysis import summary
    from cnnlab.viz.diagram import drawing_of

    if out is not None:
        checked_page_path(out)  # refused before the work, not after
    if isinstance(model, str):
        from cnnlab.analysis.inputs import meta_model

        model = meta_model(model, input_size, **model_kwargs)
    result = summary(model, input_size=input_size, batch=batch, peak=True)
    modules = dict(model.named_modules())
    diagram, box_of = drawing_of(result, modules)
    svg = diagram.svg()  # needs Graphviz: says how to install it when missing
    explorer = Explorer(result.model_name, page(result, svg, box_of, structure(result, modules)), len(result.rows))
    if out is not None:
        explorer.save(out)
    return explorer


class Explorer:
    """A built explorer page: `save(path)`, `html`; in a notebook it shows inline (an iframe)."""

    def __init__(self, model_name: str, html_text: str, layers: int) -> None:
        self.model_name, self.html, self.layers = model_name, html_text, layers

    def save(self, path: str | Path) -> Path:
        """Write the page whole or not at all (a temporary name, then one rename)."""
        from cnnlab.viz.report import write_page

        return write_page(self.html, checked_page_path(path))

    def __repr__(self) -> str:
        return f"<Explorer of {self.model_name}: {self.layers} layers, {len(self.html) / 1e6:.2f} MB; .save('page.html')>"

    def _repr_html_(self) -> str:
        return (f'<iframe srcdoc="{html.escape(self.html, quote=True)}" style="width:100%;height:760px;border:1px solid '
                f'#ccc" sandbox="allow-scripts"></iframe>')


def checked_page_path(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        raise CnnlabError(f"{path}: the explorer is a web page; give a name ending in .html")
    if not path.parent.is_dir():
        raise CnnlabError(f"the folder {path.parent} does not exist; create it or choose another --out")
    return path


def page_data(result, box_of: dict[int, int]) -> dict:
    """Everything the page shows, computed here: one entry per row of the summary, and the totals."""
    peak = result.training_peak
    seeds = {seed.layer: cells for seed, cells in result.seed_comparisons()}
    rows = []
    for index, row in enumerate(result.rows):
        live = result.step_live(row)
        share = (f"{one_decimal(live / MB)} MB alive while it ran, {100 * live / peak.peak:.0f}% of the step's "
                 f"{one_decimal(peak.peak / MB)} MB peak" if live is not None and peak is not None and peak.peak else "")
        figures = [
            ("output", "x".join(map(str, row.output_shape))),
            ("parameters", f"{row.params:,}"),
            ("FLOPs", f"{one_decimal(row.flops / 1e6)} M" + (" (seed 003's convention)" if row.flops else "")),
            ("multiply-adds", f"{one_decimal(row.macs / 1e6)} M"),
            ("element-wise ops", f"{one_decimal(row.elementwise_ops / 1e6)} M"),
            ("activations", f"{row.activations:,} per image"),
            ("activation memory", f"{one_decimal(row.activation_memory / MB)} MB (value and gradient)"),
            ("parameter memory", f"{one_decimal(row.parameter_memory / MB)} MB ({result.optimizer})"),
            ("training step", share or "not simulated"),
            ("receptive field", "the whole image" if row.whole_image else "" if row.rf is None else f"{row.rf} pixels"),
            ("jump", "" if row.jump is None or row.whole_image else f"{row.jump} pixels"),
        ]
        rows.append({
            "name": row.name, "op": row.op, "kind": row.kind, "box": box_of.get(index),
            "inputs": ["x".join(map(str, (row if row.kind == "input" else result.rows[j]).output_shape))
                       for j in ([0] if row.kind == "input" else row.inputs)],
            "figures": [[label, value] for label, value in figures if value],
            "worked": list(row.explain),
            "seed": [[f"seed 003 {cell.header}", cell.printed, cell.equal, cell.why] for cell in seeds.get(row.name, [])],
        })
    fields, field_index = [], {}
    height, width = (result.input_size[-2:] if not isinstance(result.input_size, list) and len(result.input_size) == 3
                      else (None, None))
    for row, entry in zip(result.rows, rows):
        entry["field"] = None
        if height is None or row.rf is None or row.whole_image or row.kind == "input" or len(row.output_shape) != 3:
            continue
        key = (row.rf, row.jump, row.rf_centre, row.output_shape[-2], row.output_shape[-1])
        if key not in field_index:
            field_index[key] = len(fields)
            fields.append(receptive_field_map(row.rf, row.jump, row.rf_centre, row.output_shape[-2:], (height, width)))
        entry["field"] = field_index[key]
    t = result.totals
    stages = []
    for name, members in cost_stages(result):
        node = TreeNode(name, "", 0)
        for i in members:
            node.add(result.rows[i])
        stages.append({"name": name, "rows": members, "bars": [
            ["parameters", f"{node.params:,}", _share(node.params, t.params)],
            ["FLOPs", f"{one_decimal(node.flops / 1e6)} M", _share(node.flops, t.flops)],
            ["activation memory", f"{one_decimal(node.activation_memory / MB)} MB",
             _share(node.activation_memory, t.activation_memory)]],
            "figures": [["layers", f"{node.layers:,}"], ["output", "x".join(map(str, node.output_shape))],
                        ["parameters", f"{node.params:,}"], ["FLOPs", f"{one_decimal(node.flops / 1e6)} M"],
                        ["multiply-adds", f"{one_decimal(node.macs / 1e6)} M"],
                        ["activation memory", f"{one_decimal(node.activation_memory / MB)} MB"],
                        ["parameter memory", f"{one_decimal(node.parameter_memory / MB)} MB"]]})
    totals = {"parameters": f"{t.params:,}", "FLOPs": f"{one_decimal(t.flops / 1e6)} M",
              "activation memory": f"{one_decimal(t.activation_memory / MB)} MB"}
    facts = [["parameters", f"{t.params:,}"],
             ["FLOPs", f"{t.flops / 1e9:,.3f} G per minibatch of {result.batch} ({t.macs / result.batch / 1e9:,.3f} "
                       "GMACs per image)"],
             ["training memory", f"{one_decimal(t.training_memory / MB)} MB (the seeds' convention)"]]
    if peak is not None:
        facts.append(["a real training step", result.peak_line().split(": ", 1)[1]])
    notes = list(result.notes) + ([f"not counted (no formula; their work is in no column): {', '.join(result.not_counted)}"]
                                  if result.not_counted else [])
    return {"title": result.title(), "facts": facts, "notes": notes, "rows": rows, "fields": fields,
            "stages": stages, "totals": totals,
            "input": list(result.input_size[-2:]) if height is not None else None}


def cost_stages(result) -> list[tuple[str, list[int]]]:
    """The parts the cost bars compare, in order: each top-level module (a stage: ResNet's layer3), and
    a flat run of layers (VGG's and AlexNet's `features`) cut after each pooling layer, so that the
    stages of such a net show apart; (name, the indices of its rows)."""
    index_of = {id(row): i for i, row in enumerate(result.rows)}
    stages = []
    for node in result.tree():
        leaves = [child.row for child in node.walk() if not child.is_group]
        flat = node.is_group and all(not child.is_group for child in node.children)
        if not flat or not any(row.kind == "pool" for row in leaves[:-1]):
            stages.append((node.name, [index_of[id(row)] for row in leaves]))
            continue
        run: list = []
        for row in leaves:
            run.append(row)
            if row.kind == "pool" or row is leaves[-1]:
                names = [result.paper_names.get(run[0].name), result.paper_names.get(run[-1].name)]
                if not all(names):  # VGG's rows have the paper's names (conv1_1 ... pool1); others their own
                    names = [run[0].name.rsplit(".", 1)[-1], run[-1].name.rsplit(".", 1)[-1]]
                stages.append((f"{names[0]}…{names[1]}", [index_of[id(r)] for r in run]))
                run = []
    return stages


def _share(part: float, whole: float) -> float:
    return round(100 * part / whole, 2) if whole else 0.0


def receptive_field_map(rf: int, jump: int, start: float, output_size, input_size) -> dict:
    """Where each output row and column looks in the input, as `cnnlab rf` reckons it: the field of
    output position i is centred at start + i x jump (pixel k spans [k, k + 1)) and is rf pixels
    wide; [first, last] are its input pixels, `inside` how many of them lie in the image (the rest is
    padding). Rows and columns apart: a square field is their product."""
    def spans(count: int, size: int) -> list[list[int]]:
        out = []
        for i in range(count):
            centre = start + i * jump
            first, last = round(centre - rf / 2), round(centre + rf / 2) - 1
            out.append([first, last, max(0, min(last, size - 1) - max(first, 0) + 1)])
        return out

    return {"rf": rf, "jump": jump, "start": start, "rows": spans(output_size[0], input_size[0]),
            "cols": spans(output_size[1], input_size[1])}


def structure(result, modules: dict[str, nn.Module]) -> dict:
    """The network as it folds: the tree of its stages and blocks (a module that holds several
    layers), each with its one-line sums, and for each run of layers between them their own
    drawing, laid out by Graphviz apart from the rest, with the summary rows each box draws. The
    page stacks these parts: unfolding a stage inserts its blocks below its line, a block its
    drawing, and nothing above moves."""
    from cnnlab import rendering
    from cnnlab.viz.diagram import drawings_of_parts

    index_of = {id(row): i for i, row in enumerate(result.rows)}
    parts: list[list[int]] = []

    def level(nodes) -> list[dict]:
        items, run = [], []

        def flush() -> None:
            if run:
                parts.append([index_of[id(node.row)] for node in run])
                items.append({"drawing": len(parts) - 1})
                run.clear()

        for node in nodes:
            if node.is_group:
                flush()
                items.append({"name": node.name, "detail": result.group_detail(node), "layers": node.layers,
                              "children": level(node.children)})
            else:
                run.append(node)
        flush()
        return items

    tree = level(result.tree())
    drawings = [{"svg": rendering.compact_svg(svg), "rows": len(indices),
                 "boxes": {str(box): rows for box, rows in boxes.items()}}
                for indices, (svg, boxes) in zip(parts, drawings_of_parts(result, parts, modules))]
    return {"tree": tree, "drawings": drawings}


def page(result, svg: str, box_of: dict[int, int], folds: dict | None = None) -> str:
    """The page: the diagram, the panel, the data as JSON, its style and script, all inline."""
    from cnnlab import rendering
    from cnnlab.viz.report import document

    content = page_data(result, box_of)
    content["structure"] = folds or {"tree": [], "drawings": []}
    data = json.dumps(content, separators=(",", ":")).replace("</", "<\\/")
    body = BODY.format(title=html.escape(result.title()), svg=rendering.compact_svg(svg), data=data)
    return document(result.title(), body, STYLE, FACTS_SCRIPT + SCRIPT)


STYLE = """
* { box-sizing: border-box; }
body { margin: 0; font: 13px/1.4 system-ui, sans-serif; color: #1f1f1f; height: 100vh; display: flex; flex-direction: column; }
header { padding: 8px 14px; border-bottom: 1px solid #ddd; }
header h1 { font-size: 15px; margin: 0 0 4px 0; }
header dl { display: flex; flex-wrap: wrap; gap: 2px 18px; margin: 0; }
header dt { color: #666; } header dd { margin: 0 0 0 4px; }
header .facts div { display: flex; }
main { flex: 1; display: flex; min-height: 0; }
#view { flex: 1; position: relative; overflow: hidden; background: #fafafa; cursor: grab; }
#view.dragging { cursor: grabbing; }
#canvas { transform-origin: 0 0; position: absolute; left: 0; top: 0; }
#zoom { position: absolute; right: 10px; top: 10px; display: flex; gap: 4px; z-index: 2; }
#zoom button { min-width: 30px; height: 26px; }
#structure { position: absolute; inset: 0; overflow: auto; background: #fff; z-index: 3; padding: 8px 14px; cursor: auto; }
#fold-tools { position: sticky; top: 0; background: #fff; padding-bottom: 6px; z-index: 1; }
#folds .fold-head { cursor: pointer; padding: 3px 6px; border: 1px solid #c9d3e0; background: #f3f6fa; border-radius: 6px;
  margin: 3px 0; white-space: nowrap; }
#folds .fold-head:hover { background: #e6eef8; }
#folds .fold-mark { display: inline-block; width: 1.2em; color: #2f6fb0; }
#folds .fold-detail { color: #666; font-size: 12px; }
#folds .fold-body { margin-left: 22px; border-left: 2px solid #dde4ee; padding-left: 8px; }
#folds .segment { margin: 2px 0; }
#folds .segment svg { max-width: 100%; height: auto; }
#folds g.node { cursor: pointer; }
g.node { cursor: pointer; }
g.node.selected path, g.node.selected polygon, g.node.selected ellipse { stroke: #d62728; stroke-width: 3px; }
g.node.found path, g.node.found polygon, g.node.found ellipse { stroke: #ff9900; stroke-width: 2px; }
aside { width: 430px; border-left: 1px solid #ddd; overflow-y: auto; padding: 10px 12px; }
#search { width: 100%; padding: 5px 7px; font-size: 13px; }
#matches { list-style: none; padding: 0; margin: 4px 0 10px 0; max-height: 180px; overflow-y: auto; }
#matches li { padding: 1px 4px; cursor: pointer; font-family: monospace; }
#matches li:hover { background: #eef3fa; }
#panel h2 { font-size: 14px; margin: 6px 0 2px 0; word-break: break-all; }
#panel .op { color: #666; margin-bottom: 6px; }
#panel table { border-collapse: collapse; width: 100%; }
#panel td { border-bottom: 1px solid #eee; padding: 2px 4px; vertical-align: top; }
#panel td:first-child { color: #666; white-space: nowrap; }
#panel pre { background: #f5f5f5; padding: 6px; font-size: 12px; white-space: pre-wrap; }
#panel .slip { color: #b3261e; font-weight: 600; }
#panel .also li { cursor: pointer; color: #2f6fb0; }
#costs summary { cursor: pointer; font-weight: 600; margin: 4px 0; }
#bars h3 { font-size: 12px; margin: 8px 0 2px 0; }
#bars .bar { display: grid; grid-template-columns: 130px 1fr 130px; gap: 6px; align-items: center; cursor: pointer;
  font-size: 11px; padding: 1px 0; }
#bars .bar:hover { background: #eef3fa; }
#bars .bar-name { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; font-family: monospace; }
#bars .bar-track { background: #eee; height: 9px; position: relative; }
#bars .bar-fill { background: #2f6fb0; height: 9px; display: block; }
#bars .bar-value { color: #555; white-space: nowrap; text-align: right; }
#panel .rf { display: flex; gap: 14px; align-items: flex-start; margin: 6px 0; }
#panel .rf figure { margin: 0; text-align: center; font-size: 11px; color: #666; }
#panel .rf-input { position: relative; background: #e8eef6; border: 1px solid #999; overflow: hidden; }
#panel .rf-box { position: absolute; border: 2px solid #d62728; background: rgba(214, 39, 40, 0.15); pointer-events: none; }
#panel .rf-output { position: relative; border: 1px solid #999; cursor: crosshair;
  background-image: linear-gradient(#ccc 1px, transparent 1px), linear-gradient(90deg, #ccc 1px, transparent 1px); }
#panel .rf-cell { position: absolute; background: #d62728; pointer-events: none; }
#panel .rf-text { font-size: 12px; min-height: 3em; }
footer { padding: 4px 14px; border-top: 1px solid #ddd; color: #666; font-size: 12px; }
"""

SCRIPT = r"""
(function () {
  const data = JSON.parse(document.getElementById("data").textContent);
  const view = document.getElementById("view"), canvas = document.getElementById("canvas");
  const svg = canvas.querySelector("svg");
  const nodes = {};  // box number -> <g class="node">
  svg.querySelectorAll("g.node").forEach(function (g) {
    const title = g.querySelector("title");
    const match = title && /^n(\d+)$/.exec(title.textContent.trim());
    if (match) { nodes[+match[1]] = g; g.dataset.box = match[1]; }
  });
  const byBox = {};  // box number -> row indices
  data.rows.forEach(function (row, i) { if (row.box !== null) (byBox[row.box] = byBox[row.box] || []).push(i); });

  // -- pan and zoom: the canvas is moved and scaled, the drawing itself is never redrawn
  let scale = 1, x = 0, y = 0;
  function apply() { canvas.style.transform = "translate(" + x + "px," + y + "px) scale(" + scale + ")"; }
  function size() { return {w: svg.width.baseVal.value || svg.viewBox.baseVal.width,
                             h: svg.height.baseVal.value || svg.viewBox.baseVal.height}; }
  function fit() { const s = size(); scale = Math.min(view.clientWidth / s.w, 1.5); x = (view.clientWidth - s.w * scale) / 2; y = 10; apply(); }
  function zoom(factor, cx, cy) { const next = Math.max(0.05, Math.min(8, scale * factor));
    x = cx - (cx - x) * next / scale; y = cy - (cy - y) * next / scale; scale = next; apply(); }
  view.addEventListener("wheel", function (e) { e.preventDefault(); const r = view.getBoundingClientRect();
    zoom(e.deltaY < 0 ? 1.15 : 1 / 1.15, e.clientX - r.left, e.clientY - r.top); }, {passive: false});
  let drag = null;
  view.addEventListener("mousedown", function (e) { drag = {x: e.clientX - x, y: e.clientY - y, moved: false}; view.classList.add("dragging"); });
  window.addEventListener("mousemove", function (e) { if (!drag) return; drag.moved = true; x = e.clientX - drag.x; y = e.clientY - drag.y; apply(); });
  window.addEventListener("mouseup", function () { view.classList.remove("dragging"); setTimeout(function () { drag = null; }, 0); });
  document.getElementById("zoom-in").onclick = function () { zoom(1.25, view.clientWidth / 2, view.clientHeight / 2); };
  document.getElementById("zoom-out").onclick = function () { zoom(0.8, view.clientWidth / 2, view.clientHeight / 2); };
  document.getElementById("zoom-fit").onclick = fit;
  function centre(g) { const v = view.getBoundingClientRect(), b = g.getBoundingClientRect();
    x += v.left + v.width / 2 - (b.left + b.width / 2); y += v.top + v.height / 2 - (b.top + b.height / 2); apply(); }

  // -- the panel: what Python computed for the row, shown as it is
  const panel = document.getElementById("panel");
  function element(tag, text, cls) { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; }
  function show(index, recentre) {
    const row = data.rows[index];
    panel.replaceChildren();
    panel.dataset.layer = row.name;
    panel.appendChild(element("h2", row.name));
    panel.appendChild(element("div", row.op + " (" + row.kind + ")", "op"));
    const table = element("table");
    function line(label, value, cls) { const tr = element("tr"); tr.appendChild(element("td", label)); const td = element("td", value, cls);
      td.dataset.figure = label; tr.appendChild(td); table.appendChild(tr); }
    line("input", row.inputs.join(" + "));
    row.figures.forEach(function (f) { line(f[0], f[1]); });
    row.seed.forEach(function (s) { line(s[0], s[1] + (s[2] ? " (equal)" : " — differs: " + s[3]), s[2] ? "" : "slip"); });
    panel.appendChild(table);
    if (row.field !== null && data.input) panel.appendChild(fieldView(row));
    if (row.worked.length) { panel.appendChild(element("h3", "worked")); panel.appendChild(element("pre", row.worked.join("\n"))); }
    const others = (byBox[row.box] || []).filter(function (i) { return i !== index; });
    if (others.length) {
      panel.appendChild(element("h3", "in the same box"));
      const list = element("ul", undefined, "also");
      others.forEach(function (i) { const li = element("li", data.rows[i].name + " (" + data.rows[i].op + ")");
        li.onclick = function () { show(i, false); }; list.appendChild(li); });
      panel.appendChild(list);
    }
    svg.querySelectorAll("g.node.selected").forEach(function (g) { g.classList.remove("selected"); });
    const g = nodes[row.box];
    if (g) { g.classList.add("selected"); if (recentre) centre(g); }
  }
  function showStage(index) {
    const stage = data.stages[index];
    panel.replaceChildren();
    panel.dataset.layer = stage.name;
    panel.appendChild(element("h2", stage.name));
    panel.appendChild(element("div", "a stage: " + stage.rows.length + " rows of the summary", "op"));
    const table = element("table");
    stage.figures.forEach(function (f) { const tr = element("tr"); tr.appendChild(element("td", f[0]));
      const td = element("td", f[1]); td.dataset.figure = f[0]; tr.appendChild(td); table.appendChild(tr); });
    panel.appendChild(table);
    const list = element("ul", undefined, "also");
    stage.rows.slice(0, 60).forEach(function (i) { const li = element("li", data.rows[i].name + " (" + data.rows[i].op + ")");
      li.onclick = function () { show(i, true); }; list.appendChild(li); });
    panel.appendChild(list);
    svg.querySelectorAll("g.node.selected, g.node.found").forEach(function (g) { g.classList.remove("selected", "found"); });
    let first = null;
    stage.rows.forEach(function (i) { const g = nodes[data.rows[i].box]; if (g) { g.classList.add("found"); first = first || g; } });
    if (first) centre(first);
  }
  const bars = document.getElementById("bars");
  ["parameters", "FLOPs", "activation memory"].forEach(function (what, k) {
    const block = element("div");
    block.appendChild(element("h3", what + " (" + data.totals[what] + " in all)"));
    data.stages.forEach(function (stage, s) {
      const bar = stage.bars[k];
      const line = element("div", undefined, "bar");
      line.dataset.stage = stage.name; line.dataset.what = what; line.dataset.value = bar[1]; line.dataset.share = bar[2];
      const track = element("span", undefined, "bar-track"), fill = element("span", undefined, "bar-fill");
      fill.style.width = bar[2] + "%"; track.appendChild(fill);
      line.append(element("span", stage.name, "bar-name"), track, element("span", bar[1] + " · " + bar[2] + "%", "bar-value"));
      line.onclick = function () { showStage(s); };
      block.appendChild(line);
    });
    bars.appendChild(block);
  });

  // -- the receptive field of a layer's output, seen: hover a position of its map
  function fieldView(row) {
    const field = data.fields[row.field], rows = field.rows.length, cols = field.cols.length;
    const H = data.input[0], W = data.input[1];
    const side = 180, scale = side / Math.max(H, W), cell = Math.max(2, Math.floor(side / Math.max(rows, cols)));
    const wrap = element("div", undefined, "rf");
    const input = element("div", undefined, "rf-input"); input.style.width = W * scale + "px"; input.style.height = H * scale + "px";
    const box = element("div", undefined, "rf-box"); input.appendChild(box);
    const output = element("div", undefined, "rf-output");
    output.style.width = cols * cell + "px"; output.style.height = rows * cell + "px";
    output.style.backgroundSize = cell + "px " + cell + "px";
    const mark = element("div", undefined, "rf-cell"); mark.style.width = cell + "px"; mark.style.height = cell + "px"; output.appendChild(mark);
    const inFigure = element("figure"); inFigure.append(input, element("figcaption", "input " + H + "x" + W));
    const outFigure = element("figure"); outFigure.append(output, element("figcaption", "output " + rows + "x" + cols + " (hover)"));
    wrap.append(outFigure, inFigure);
    const text = element("div", "receptive field " + field.rf + " pixels, jump " + field.jump + ": hover a position of the output", "rf-text");
    function at(i, j) {
      const r = field.rows[i], c = field.cols[j];
      mark.style.top = i * cell + "px"; mark.style.left = j * cell + "px";
      box.style.top = r[0] * scale + "px"; box.style.left = c[0] * scale + "px";
      box.style.height = (r[1] - r[0] + 1) * scale + "px"; box.style.width = (c[1] - c[0] + 1) * scale + "px";
      const padding = 100 * (1 - (r[2] * c[2]) / (field.rf * field.rf));
      text.textContent = "output (" + i + ", " + j + ") sees input rows " + r[0] + " to " + r[1] + ", columns " + c[0] +
        " to " + c[1] + " (" + field.rf + "x" + field.rf + ")" + (padding > 0 ? "; " + padding.toFixed(1) +
        "% of it is padding, outside the image" : "; all of it inside the image");
      panel.dataset.rfRows = r[0] + "," + r[1]; panel.dataset.rfCols = c[0] + "," + c[1];
      panel.dataset.rfPadding = padding.toFixed(1);
    }
    output.addEventListener("mousemove", function (e) {
      const bounds = output.getBoundingClientRect();
      at(Math.min(rows - 1, Math.max(0, Math.floor((e.clientY - bounds.top) / cell))),
         Math.min(cols - 1, Math.max(0, Math.floor((e.clientX - bounds.left) / cell))));
    });
    at(0, 0);
    const section = element("div");
    section.append(element("h3", "receptive field"), wrap, text);
    return section;
  }

  Object.keys(nodes).forEach(function (box) {
    nodes[box].addEventListener("click", function (e) { if (drag && drag.moved) return; e.stopPropagation();
      const rows = byBox[box] || []; if (rows.length) show(rows[0], false); });
  });

  // -- search: any layer by name, folded ones included
  const search = document.getElementById("search"), matches = document.getElementById("matches");
  search.addEventListener("input", function () {
    const text = search.value.trim().toLowerCase();
    matches.replaceChildren();
    svg.querySelectorAll("g.node.found").forEach(function (g) { g.classList.remove("found"); });
    if (!text) return;
    const found = [];
    data.rows.forEach(function (row, i) { if (row.name.toLowerCase().indexOf(text) >= 0) found.push(i); });
    found.slice(0, 200).forEach(function (i) {
      const li = element("li", data.rows[i].name);
      li.onclick = function () { show(i, true); };
      matches.appendChild(li);
      const g = nodes[data.rows[i].box]; if (g) g.classList.add("found");
    });
    matches.dataset.count = found.length;
    if (found.length > 200) matches.appendChild(element("li", "… " + (found.length - 200) + " more: type more of the name"));
  });
  // -- by stage: each stage and block folds and unfolds in place; nothing above it moves
  const structureView = document.getElementById("structure"), folds = document.getElementById("folds");
  function renderItems(items, container) {
    items.forEach(function (item) {
      if (item.drawing !== undefined) {
        const part = data.structure.drawings[item.drawing];
        const segment = element("div", undefined, "segment");
        segment.innerHTML = part.svg;
        segment.dataset.rows = part.rows;
        segment.querySelectorAll("g.node").forEach(function (g) {
          const title = g.querySelector("title"), match = title && /^n(\d+)$/.exec(title.textContent.trim());
          if (match && part.boxes[match[1]]) g.addEventListener("click", function () { show(part.boxes[match[1]][0], false); });
        });
        container.appendChild(segment);
        return;
      }
      const fold = element("div", undefined, "fold"), head = element("div", undefined, "fold-head");
      const body = element("div", undefined, "fold-body");
      fold.dataset.name = item.name; body.hidden = true; fold.item = item;
      head.append(element("span", "▸", "fold-mark"), element("b", item.name), element("span", " " + item.detail, "fold-detail"));
      head.onclick = function () { toggle(fold); };
      fold.append(head, body);
      container.appendChild(fold);
    });
  }
  function toggle(fold, open) {
    const body = fold.querySelector(":scope > .fold-body"), want = open === undefined ? body.hidden : open;
    if (want && !body.childElementCount) renderItems(fold.item.children, body);
    body.hidden = !want;
    fold.querySelector(":scope > .fold-head .fold-mark").textContent = want ? "▾" : "▸";
    count();
  }
  function count() {
    let rows = 0;
    folds.querySelectorAll(".segment").forEach(function (s) { if (s.checkVisibility()) rows += +s.dataset.rows; });
    document.body.dataset.visibleLayers = rows;
    document.body.dataset.openFolds = Array.prototype.filter.call(folds.querySelectorAll(".fold"),
      function (f) { return !f.querySelector(":scope > .fold-body").hidden; }).length;
  }
  function byStage(on) { structureView.hidden = !on; if (on && !folds.childElementCount) renderItems(data.structure.tree, folds); count(); }
  document.getElementById("by-stage").onclick = function () { byStage(true); };
  document.getElementById("whole").onclick = function () { byStage(false); };
  document.getElementById("expand-all").onclick = function () {
    let closed;
    do { closed = Array.prototype.filter.call(folds.querySelectorAll(".fold"), function (f) {
      return f.querySelector(":scope > .fold-body").hidden; }); closed.forEach(function (f) { toggle(f, true); }); }
    while (closed.length);
  };
  document.getElementById("fold-all").onclick = function () {
    folds.querySelectorAll(".fold").forEach(function (f) { toggle(f, false); });
  };

  window.cnnlabExplorer = {show: function (name) { const i = data.rows.findIndex(function (r) { return r.name === name; });
    if (i >= 0) show(i, true); return i; }, stage: showStage, byStage: byStage,
    unfold: function (name) { const f = folds.querySelector('.fold[data-name="' + name + '"]'); if (f) toggle(f, true); return !!f; }};
  fit();
  const first = data.rows.findIndex(function (r) { return r.kind !== "input"; });
  show(first >= 0 ? first : 0, false);
  document.body.dataset.ready = "1";
})();
"""

BODY = """<header><h1>{title}</h1><dl class="facts" id="facts"></dl></header>
<main>
<div id="view"><div id="zoom"><button id="by-stage" title="the network by stage: unfold a stage, then a block">by stage</button>
<button id="zoom-in" title="zoom in">+</button><button id="zoom-out" title="zoom out">−</button>
<button id="zoom-fit" title="fit the width">fit</button></div><div id="canvas">{svg}</div>
<div id="structure" hidden><div id="fold-tools"><button id="whole">whole drawing</button>
<button id="expand-all">expand all</button><button id="fold-all">fold all</button></div><div id="folds"></div></div></div>
<aside><input id="search" type="search" placeholder="find a layer by name, e.g. layer3.1.conv2" autocomplete="off">
<ul id="matches"></ul>
<details id="costs"><summary>where the cost sits</summary><div id="bars"></div></details>
<div id="panel"></div></aside>
</main>
<footer id="notes"></footer>
<script type="application/json" id="data">{data}</script>"""

FACTS_SCRIPT = r"""
(function () {
  const data = JSON.parse(document.getElementById("data").textContent);
  const facts = document.getElementById("facts");
  data.facts.forEach(function (f) { const d = document.createElement("div"); const t = document.createElement("dt");
    t.textContent = f[0]; const v = document.createElement("dd"); v.textContent = f[1]; d.append(t, v); facts.appendChild(d); });
  const notes = document.getElementById("notes");
  notes.textContent = data.notes.length ? data.notes.join(" · ") : "Every figure is computed by cnnlab.analysis (the same rows as cnnlab summary); click a box, or find a layer by name.";
})();
"""
