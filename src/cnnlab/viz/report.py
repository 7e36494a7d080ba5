"""One self-contained HTML page: tables (sortable by any column), the layer table as a tree
(stage, block, layer) that folds and unfolds, images embedded as data URIs, settings; no network
access is needed to view it. A small script sorts the tables and, on load, records what rendered
(`data-images-loaded`, `data-table-rows`, `data-layer-rows`, `data-visible-rows` on <body>) so a
headless browser can check the page; `window.cnnlabTree.expand(name)` / `.collapse(name)` /
`.filter(text)` drive the tree from a script, and `page.html#expand=layer1,layer2&filter=conv`
opens it unfolded or filtered."""

from __future__ import annotations

import base64
import html
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from cnnlab.errors import CnnlabError


@dataclass
class Page:
    title: str
    parts: list[str] = field(default_factory=list)

    def heading(self, text: str) -> None:
        self.parts.append(f"<h2>{html.escape(text)}</h2>")

    def paragraph(self, text: str) -> None:
        self.parts.append(f"<p>{html.escape(text)}</p>")

    def table(self, columns: list[str], rows: list[list], numeric: set[str] | None = None, caption: str = "") -> None:
        """A sortable table; `numeric` columns sort by the number in data-value."""
        numeric = numeric or set()
        head = "".join(f'<th data-numeric="{"1" if c in numeric else "0"}">{html.escape(c)}</th>' for c in columns)
        body = []
        for row in rows:
            cells = []
            for column, value in zip(columns, row):
                if column in numeric and isinstance(value, (int, float)):
                    shown = f"{value:,}" if isinstance(value, int) else f"{value:,.4g}"
                    cells.append(f'<td class="n" data-value="{value}">{shown}</td>')
                else:
                    cells.append(f"<td>{html.escape(str(value))}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        self.parts.append(f'<table class="sortable"><caption>{html.escape(caption)}</caption><thead><tr>{head}</tr></thead>'
                          f'<tbody>{"".join(body)}</tbody></table>')

    def image(self, png: bytes, caption: str, kind: str = "png", css: str = "") -> None:
        data = base64.b64encode(png).decode()
        mime = "image/svg+xml" if kind == "svg" else "image/png"
        self.parts.append(f'<figure class="{css}"><img alt="{html.escape(caption)}" src="data:{mime};base64,{data}">'
                          f"<figcaption>{html.escape(caption)}</figcaption></figure>")

    def layer_tree(self, result, caption: str = "") -> None:
        """The summary's rows as a tree: a row per module that holds several layers (a stage, a
        block), with its totals, above its layers; folded at first down to the top level."""
        nodes = _tree_nodes(result)
        columns = ["layer", "kind", "output", "params", "FLOPs", "activation memory (B)", "receptive field"]
        head = "".join(f'<th data-column="{i}" data-numeric="{"1" if i >= 3 else "0"}">{html.escape(c)}</th>'
                       for i, c in enumerate(columns))
        body = []
        for node in nodes:
            toggle = '<span class="toggle">▸</span>' if node["group"] else '<span class="leaf"></span>'
            cells = [f'<td style="padding-left:{0.3 + 1.2 * node["depth"]}em">{toggle}{html.escape(node["name"])}</td>',
                     f"<td>{html.escape(node['kind'])}</td>", f"<td>{html.escape(node['output'])}</td>"]
            cells += [f'<td class="n" data-value="{node[key]}">{node[key]:,}</td>'
                      for key in ("params", "flops", "memory", "rf")]
            attributes = (f'data-id="{html.escape(node["id"])}" data-parent="{html.escape(node["parent"])}" '
                          f'data-depth="{node["depth"]}"' + (' class="group"' if node["group"] else ' class="layer"'))
            body.append(f"<tr {attributes}>{''.join(cells)}</tr>")
        self.parts.append(
            '<p><input id="layer-filter" type="search" placeholder="filter layers, e.g. conv or layer3" size="40"> '
            '<button id="expand-all">expand all</button> <button id="collapse-all">collapse all</button></p>'
            f'<table class="tree" id="layers"><caption>{html.escape(caption)}</caption><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')

    def embedded_page(self, document_html: str, caption: str, height: int = 760) -> None:
        """Another whole page (the explorer) inside this one, in an iframe whose document is inline:
        the file stays one file, and the page keeps its own style and script."""
        self.parts.append(f'<details class="embedded"><summary>{html.escape(caption)}</summary>'
                          f'<iframe srcdoc="{html.escape(document_html, quote=True)}" style="width:100%;height:{height}px;'
                          f'border:1px solid #ccc" title="{html.escape(caption)}"></iframe></details>')

    def settings(self, values: dict) -> None:
        rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(json.dumps(v) if not isinstance(v, str) else v)}</td></tr>"
                       for k, v in values.items())
        self.parts.append(f'<table class="settings">{rows}</table>')

    def render(self) -> str:
        return document(self.title, f"<h1>{html.escape(self.title)}</h1>\n" + "".join(self.parts), REPORT_STYLE,
                        REPORT_SCRIPT)


def document(title: str, body: str, style: str, script: str) -> str:
    """A whole page: everything inline (style, script, images as data URIs), nothing to fetch. The
    report's pages and the explorer's are both made here."""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<style>{style}</style></head>\n'
            f"<body>\n{body}\n<script>{script}</script>\n</body></html>\n")


REPORT_STYLE = """body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
table.sortable th { cursor: pointer; background: #f0f0f0; }
table.sortable th:hover { background: #e0e0f0; }
figure { display: inline-block; margin: 0.5em; } img { max-width: 100%; }
caption, figcaption { color: #555; font-size: 12px; }
table.tree th { cursor: pointer; background: #f0f0f0; }
table.tree tr.group { background: #f7f9fc; font-weight: 600; }
table.tree tr.hidden { display: none; }
span.toggle { display: inline-block; width: 1.2em; cursor: pointer; color: #1f4e79; }
span.leaf { display: inline-block; width: 1.2em; }
figure.diagram { display: block; max-height: 1000px; overflow: auto; border: 1px solid #ddd; }
figure.diagram img { max-width: none; }
"""

REPORT_SCRIPT = r"""document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, column) {
    th.addEventListener("click", function () {
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var numeric = th.dataset.numeric === "1", ascending = th.dataset.order !== "asc";
      rows.sort(function (a, b) {
        var x = a.cells[column], y = b.cells[column];
        var order = numeric ? parseFloat(x.dataset.value || "0") - parseFloat(y.dataset.value || "0")
                            : x.textContent.localeCompare(y.textContent);
        return ascending ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
      th.dataset.order = ascending ? "asc" : "desc";
    });
  });
});
(function () {
  var table = document.getElementById("layers");
  if (!table) { return; }
  var body = table.tBodies[0], open = {}, filterText = "";
  function rows() { return Array.prototype.slice.call(body.rows); }
  function byId() { var map = {}; rows().forEach(function (r) { map[r.dataset.id] = r; }); return map; }
  function refresh() {
    var map = byId(), shown = {};
    if (filterText) {
      rows().forEach(function (r) {
        if (r.dataset.id.toLowerCase().indexOf(filterText) >= 0 || r.cells[1].textContent.toLowerCase().indexOf(filterText) >= 0) {
          for (var node = r; node; node = map[node.dataset.parent]) { shown[node.dataset.id] = true; }
        }
      });
    }
    rows().forEach(function (r) {
      var visible = true;
      if (filterText) { visible = !!shown[r.dataset.id]; }
      else { for (var p = map[r.dataset.parent]; p; p = map[p.dataset.parent]) { if (!open[p.dataset.id]) { visible = false; break; } } }
      r.classList.toggle("hidden", !visible);
      var toggle = r.querySelector("span.toggle");
      if (toggle) { toggle.textContent = (open[r.dataset.id] || filterText) ? "▾" : "▸"; }
    });
    document.body.dataset.visibleRows = rows().filter(function (r) { return !r.classList.contains("hidden"); }).length;
  }
  function set(name, value) {
    var map = byId();
    if (!map[name] || !map[name].classList.contains("group")) { throw new Error("no stage or block called " + name); }
    open[name] = value; refresh();
  }
  body.addEventListener("click", function (event) {
    if (event.target.classList.contains("toggle")) { var id = event.target.closest("tr").dataset.id; set(id, !open[id]); }
  });
  document.getElementById("layer-filter").addEventListener("input", function (event) {
    filterText = event.target.value.trim().toLowerCase(); refresh();
  });
  document.getElementById("expand-all").addEventListener("click", function () {
    rows().forEach(function (r) { if (r.classList.contains("group")) { open[r.dataset.id] = true; } }); refresh();
  });
  document.getElementById("collapse-all").addEventListener("click", function () { open = {}; refresh(); });
  // sorting keeps the tree: siblings are sorted among themselves, each with its subtree below it
  table.querySelectorAll("th").forEach(function (th) {
    th.addEventListener("click", function () {
      var column = +th.dataset.column, numeric = th.dataset.numeric === "1", ascending = th.dataset.order !== "asc";
      var children = {}, all = rows();
      all.forEach(function (r) { (children[r.dataset.parent] = children[r.dataset.parent] || []).push(r); });
      function key(r) { var c = r.cells[column]; return numeric ? parseFloat(c.dataset.value || "0") : c.textContent; }
      function place(parent) {
        var list = (children[parent] || []).slice();
        list.sort(function (a, b) {
          var order = numeric ? key(a) - key(b) : String(key(a)).localeCompare(String(key(b)));
          return ascending ? order : -order;
        });
        list.forEach(function (r) { body.appendChild(r); place(r.dataset.id); });
      }
      place("");
      th.dataset.order = ascending ? "asc" : "desc";
    });
  });
  window.cnnlabTree = {
    expand: function (name) { set(name, true); },
    collapse: function (name) { set(name, false); },
    filter: function (text) { filterText = (text || "").toLowerCase(); refresh(); },
  };
  // a link can open the page unfolded or filtered: report.html#expand=layer1,layer2 or #filter=conv
  decodeURIComponent(location.hash.slice(1)).split("&").forEach(function (part) {
    var pair = part.split("="), values = (pair[1] || "").split(",").filter(Boolean);
    if (pair[0] === "expand") { values.forEach(function (name) { if (byId()[name]) { open[name] = true; } }); }
    if (pair[0] === "filter") { filterText = (pair[1] || "").toLowerCase(); document.getElementById("layer-filter").value = pair[1] || ""; }
  });
  refresh();
  document.body.dataset.layerRows = table.querySelectorAll("tr.layer").length;
})();
window.addEventListener("load", function () {
  var images = document.images, loaded = 0;
  for (var i = 0; i < images.length; i++) { if (images[i].complete && images[i].naturalWidth > 0) loaded++; }
  document.body.dataset.imagesLoaded = loaded + "/" + images.length;
  document.body.dataset.tableRows = document.querySelectorAll("table.sortable tbody tr").length;
});
"""


def _tree_nodes(result) -> list[dict]:
    """The summary's layer tree (Summary.tree) in reading order, one dict per line of the page."""
    nodes = []
    for top in result.tree():
        for node in top.walk():
            nodes.append({"id": node.name, "name": node.name, "parent": node.parent, "group": node.is_group,
                          "kind": f"{node.layers} layers" if node.is_group else node.row.kind,
                          "output": "x".join(map(str, node.output_shape)), "params": node.params, "flops": node.flops,
                          "memory": node.activation_memory, "rf": node.rf or 0, "depth": node.depth,
                          "layers": node.layers})
    return nodes


def write_page(page: "Page | str", path: str | Path) -> Path:
    """Write a page (a Page, or a whole document's text) whole or not at all."""
    path = Path(path)
    if not path.parent.is_dir():
        raise CnnlabError(f"the folder {path.parent} does not exist; create it or choose another path for the page")
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    temporary.write_text(page if isinstance(page, str) else page.render(), encoding="utf-8")
    os.replace(temporary, path)
    return path
