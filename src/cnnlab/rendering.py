"""Rows into HTML and SVG: the one place where cnnlab's results are drawn for Jupyter.

A result object (a summary, a diagram, a model, and after them operators, comparisons, runs)
hands its rows over and calls these small pieces (tables, folds, fact lists, figures) downward;
no object builds HTML of its own. Like xarray's `formatting_html`: folding is `<details>`, with no
script, so a notebook shows the same thing in JupyterLab, classic Notebook, VS Code and an
exported HTML file; one style sheet, scoped to `.cnnlab` and written with the theme's colour
variables so dark themes work; every text passes `html.escape`.

This module stands on the ground floor beside `errors.py`: it imports nothing of cnnlab and knows
tables, folds, grids and SVG, not models, so every floor above may call it.

The JSON view of an object is its `to_dict()`; it is not put in the display bundle, because
JupyterLab ranks its JSON viewer above HTML and would show that instead of the table.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass
from typing import Iterable, Sequence

STYLE = """
.cnnlab { --cn-fg: var(--jp-content-font-color0, var(--vscode-editor-foreground, #1f1f1f));
  --cn-muted: var(--jp-content-font-color2, var(--vscode-descriptionForeground, #666));
  --cn-border: var(--jp-border-color2, var(--vscode-editorWidget-border, #d0d0d0));
  --cn-head: rgba(127, 127, 127, 0.12); --cn-band: rgba(127, 127, 127, 0.05);
  --cn-accent: #2f6fb0; --cn-warn: #b3261e;
  color: var(--cn-fg); font-family: var(--jp-ui-font-family, system-ui, sans-serif); font-size: 13px;
  line-height: 1.4; max-width: 100%; }
.cnnlab .cn-title { font-weight: 600; font-size: 14px; margin: 0 0 2px 0; }
.cnnlab .cn-subtitle { color: var(--cn-muted); margin: 0 0 6px 0; }
.cnnlab dl.cn-facts { display: grid; grid-template-columns: max-content auto; gap: 1px 14px; margin: 4px 0 8px 0; }
.cnnlab dl.cn-facts dt { color: var(--cn-muted); font-weight: normal; white-space: nowrap; margin: 0; padding: 0; }
.cnnlab dl.cn-facts dd { margin: 0; padding: 0; font-variant-numeric: tabular-nums; }
.cnnlab .cn-scroll { overflow-x: auto; max-width: 100%; }
.cnnlab table.cn-table { border-collapse: collapse; table-layout: fixed; margin: 0; font-size: 12px; }
.cnnlab table.cn-table th, .cnnlab table.cn-table td { border-bottom: 1px solid var(--cn-border); padding: 1px 4px;
  text-align: right; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; box-sizing: border-box;
  font-variant-numeric: tabular-nums; }
.cnnlab table.cn-table th { background: var(--cn-head); font-weight: 600; }
.cnnlab table.cn-table th:first-child, .cnnlab table.cn-table td:first-child,
.cnnlab table.cn-table .cn-l { text-align: left; }
.cnnlab table.cn-table tr.cn-dim td { color: var(--cn-muted); }
.cnnlab table.cn-table tr.cn-total td { font-weight: 600; border-top: 2px solid var(--cn-border); }
.cnnlab table.cn-table tr.cn-mark td { color: var(--cn-warn); font-weight: 600; }
.cnnlab table.cn-table tr.cn-aside td { color: var(--cn-accent); font-style: italic; background: var(--cn-band); }
.cnnlab table.cn-table tr td.cn-differs { color: var(--cn-warn); font-weight: 600; font-style: normal; }
.cnnlab details { margin: 0; }
.cnnlab details > summary { cursor: pointer; padding: 2px 4px; border-bottom: 1px solid var(--cn-border);
  background: var(--cn-band); white-space: nowrap; }
.cnnlab details > summary .cn-name { font-weight: 600; }
.cnnlab details > summary .cn-detail { color: var(--cn-muted); margin-left: 8px; }
.cnnlab details details > summary { padding-left: 18px; }
.cnnlab details details details > summary { padding-left: 32px; }
.cnnlab details details details details > summary { padding-left: 46px; }
.cnnlab ul.cn-notes { margin: 6px 0; padding-left: 18px; color: var(--cn-muted); }
.cnnlab pre.cn-pre { font-size: 12px; margin: 4px 0; padding: 6px; background: var(--cn-band); overflow-x: auto; }
.cnnlab table.cn-formulas td { text-align: left; font-family: var(--jp-code-font-family, monospace); }
.cnnlab table.cn-formulas td:first-child { color: var(--cn-muted); }
.cnnlab .cn-figure { overflow: auto; max-width: 100%; }
.cnnlab .cn-figure svg { display: block; height: auto; }
.cnnlab .cn-progress { display: flex; align-items: center; gap: 10px; font-variant-numeric: tabular-nums; }
.cnnlab .cn-progress progress { width: 240px; height: 12px; }
.cnnlab img.cn-image { display: block; margin: 4px 0; }
.cnnlab .cn-row { display: flex; flex-wrap: wrap; align-items: center; gap: 10px; margin: 6px 0; }
.cnnlab .cn-sign { font-size: 20px; color: var(--cn-muted); }
.cnnlab figure.cn-grid { margin: 0; display: inline-block; text-align: center; }
.cnnlab figure.cn-grid table { border-collapse: collapse; margin: 0 auto; }
.cnnlab figure.cn-grid td { border: 1px solid var(--cn-fg); min-width: 2.2em; height: 2.2em; padding: 0 4px;
  text-align: center; font-variant-numeric: tabular-nums; }
.cnnlab figure.cn-grid td.cn-hi { background: rgba(47, 111, 176, 0.35); font-weight: 600; }
.cnnlab figure.cn-grid td.cn-pad { background: rgba(127, 127, 127, 0.15); color: var(--cn-muted); }
.cnnlab figure.cn-grid figcaption { color: var(--cn-muted); font-size: 12px; margin-top: 2px; }
.cnnlab .cn-sum { font-family: var(--jp-code-font-family, monospace); margin: 2px 0 8px 0; }
"""


@dataclass(frozen=True)
class Cell:
    """A table cell with more than its text: a tooltip, or a mark that it differs from the row above."""

    text: str
    title: str = ""
    differs: bool = False


def escape(value) -> str:
    return html.escape(str(value), quote=True)


def frame(*parts: str, title: str = "", subtitle: str = "") -> str:
    """The outer block every display is drawn in, with the style sheet."""
    head = (f'<div class="cn-title">{escape(title)}</div>' if title else "") + \
           (f'<div class="cn-subtitle">{escape(subtitle)}</div>' if subtitle else "")
    return f'<div class="cnnlab"><style>{STYLE}</style>{head}{"".join(parts)}</div>'


def facts(items: Iterable[tuple[str, object]]) -> str:
    """Label-value pairs, one per line (a model's card, a summary's totals)."""
    body = "".join(f"<dt>{escape(label)}</dt><dd>{escape(value)}</dd>" for label, value in items)
    return f'<dl class="cn-facts">{body}</dl>'


@dataclass(frozen=True)
class Columns:
    """Fixed column widths (in ch) shared by the tables of one display, so that tables separated by
    folds line up: one style rule per column, written once (`style()`), not one per table."""

    widths: tuple[float, ...]

    @property
    def name(self) -> str:
        return "cn-w" + format(abs(hash(self.widths)) % 16**8, "08x")

    def style(self) -> str:
        # in em, not ch: a ch is measured in each cell's own font, and a bold header's is wider
        em = [round(w * EM_PER_CH, 2) for w in self.widths]
        rules = "".join(f".cnnlab .{self.name} td:nth-child({i}),.cnnlab .{self.name} th:nth-child({i}){{width:{w}em}}"
                        for i, w in enumerate(em, 1))
        return f"<style>.cnnlab table.{self.name}{{width:{round(sum(em), 2)}em}}{rules}</style>"


EM_PER_CH = 0.62  # the width of a digit in the sans-serif faces notebooks use (DejaVu Sans 0.64, Arial 0.56)


def table(columns: Sequence[str], rows: Sequence[Sequence[str | Cell]], *, row_classes: Sequence[str] = (),
          layout: Columns | None = None, head: bool = True, css: str = "cn-table", scroll: bool = True,
          text_columns: int = 1) -> str:
    """A table; the first column is left-aligned, the others are figures. `row_classes` names a
    style per row ("dim", "total", "mark", "aside"); `layout` fixes the columns so that several
    tables (one per fold) line up; `scroll=False` leaves the sideways scrolling to one `scrolled`
    block around them all; the first `text_columns` columns are text, left-aligned."""
    left = ' class="cn-l"'

    def cells_of(row) -> str:
        return "".join(_cell(value, left if 0 < i < text_columns else "") for i, value in enumerate(row))

    thead = ("<thead><tr>" + "".join(f"<th{left if 0 < i < text_columns else ''}>{escape(c)}</th>"
                                     for i, c in enumerate(columns)) + "</tr></thead>") if head else ""
    body = []
    for i, row in enumerate(rows):
        kind = row_classes[i] if i < len(row_classes) else ""
        attributes = f' class="cn-{kind}"' if kind else ""
        body.append(f"<tr{attributes}>" + cells_of(row) + "</tr>")
    classes = f"{css} {layout.name}" if layout else css
    tag = f'<table class="{classes}">{thead}<tbody>{"".join(body)}</tbody></table>'
    return scrolled(tag) if scroll else tag


def scrolled(body: str) -> str:
    """A block that scrolls sideways when wider than the cell, instead of being cut."""
    return f'<div class="cn-scroll">{body}</div>'


def _cell(value: str | Cell, css: str = "") -> str:
    if isinstance(value, Cell):
        title = f' title="{escape(value.title)}"' if value.title else ""
        css = ' class="cn-differs"' if value.differs else css
        return f"<td{title}{css}>{escape(value.text)}</td>"
    return f"<td{css}>{escape(value)}</td>"


def column_widths(columns: Sequence[str], rows: Iterable[Sequence[str | Cell]], *, first_min: int = 8,
                  first_max: int = 40) -> Columns:
    """Widths in ch that fit every cell of these rows (the first column capped: long names are cut
    with an ellipsis; give them their full text in a tooltip)."""
    widest = [len(c) * 1.1 for c in columns]  # headers are bold
    for row in rows:
        for i, value in enumerate(row):
            widest[i] = max(widest[i], len(value.text if isinstance(value, Cell) else value))
    widest[0] = min(max(widest[0], first_min), first_max)
    return Columns(tuple(round(w + 1.5, 1) for w in widest))


def fold(name: str, detail: str, body: str, *, open: bool = False) -> str:
    """A section that folds: `name` and a one-line `detail` always shown, `body` (HTML) under it."""
    flag = " open" if open else ""
    return (f'<details{flag}><summary><span class="cn-name">{escape(name)}</span>'
            f'<span class="cn-detail">{escape(detail)}</span></summary><div class="cn-body">{body}</div></details>')


def notes(lines: Iterable[str], label: str = "") -> str:
    items = "".join(f"<li>{escape((label + ': ' if label else '') + line)}</li>" for line in lines)
    return f'<ul class="cn-notes">{items}</ul>' if items else ""


def preformatted(text: str) -> str:
    return f'<pre class="cn-pre">{escape(text)}</pre>'


def formulas(lines: Iterable[str]) -> str:
    """Worked lines "name = formula = value" as two columns: what is computed, and how."""
    rows = []
    for line in lines:
        name, sep, rest = line.partition(" = ")
        rows.append([name, rest] if sep else ["", line])
    return table(("", ""), rows, head=False, css="cn-table cn-formulas")


_SVG_SIZE = re.compile(r'\s(width|height)="([\d.]+)(pt|px)?"')


def svg_figure(svg: str, *, max_height_px: int = 720) -> str:
    """An SVG drawn inline: at most its natural width, scaled down to the cell's width, and
    scrolled (never cropped) when taller than `max_height_px`."""
    svg = inline_svg(svg)
    start = svg.find("<svg")
    end = svg.find(">", start)
    tag = svg[start:end]
    sizes = {name: (float(value), unit or "px") for name, value, unit in _SVG_SIZE.findall(tag)}
    width = sizes.get("width")
    natural = f"max-width:{width[0]:g}{width[1]};" if width else ""
    if "viewBox" in tag:  # the drawing scales with its box once the fixed size is gone
        tag = _SVG_SIZE.sub("", tag)
    tag += f' style="width:100%;{natural}"'
    svg = svg[:start] + tag + svg[end:]
    return f'<div class="cn-figure" style="max-height:{max_height_px}px">{svg}</div>'


def inline_svg(svg: str) -> str:
    """The `<svg>` element alone: an XML declaration or DOCTYPE may not stand inside HTML."""
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else svg


def grid(values: Sequence[Sequence[str]], *, caption: str = "", highlight: Iterable[tuple[int, int]] = (),
         shaded: Iterable[tuple[int, int]] = ()) -> str:
    """A matrix drawn as d2l draws it: one square per entry, the `highlight`ed ones (the window,
    the output it makes) filled, the `shaded` ones (padding) greyed; `caption` under it."""
    lit, grey = set(highlight), set(shaded)
    rows = []
    for r, row in enumerate(values):
        cells = []
        for c, value in enumerate(row):
            css = "cn-hi" if (r, c) in lit else "cn-pad" if (r, c) in grey else ""
            cells.append(f'<td class="{css}">{escape(value)}</td>' if css else f"<td>{escape(value)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    label = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return f'<figure class="cn-grid"><table>{"".join(rows)}</table>{label}</figure>'


def side_by_side(*parts: str, between: Sequence[str] = ()) -> str:
    """Pieces in a row (grids, with an operator sign between two: "⋆", "="), wrapping when narrow."""
    items = []
    for index, part in enumerate(parts):
        if index and index - 1 < len(between) and between[index - 1]:
            items.append(f'<span class="cn-sign">{escape(between[index - 1])}</span>')
        items.append(part)
    return f'<div class="cn-row">{"".join(items)}</div>'


def image(png: bytes, alt: str = "", *, max_width_px: int | None = None) -> str:
    """A PNG drawn inline (a data URI: the notebook keeps it), never wider than the cell."""
    data = base64.b64encode(png).decode("ascii")
    limit = f"max-width:min(100%,{max_width_px}px)" if max_width_px else "max-width:100%"
    return f'<img class="cn-image" alt="{escape(alt)}" style="{limit}" src="data:image/png;base64,{data}">'


def progress(done: int, total: int, label: str) -> str:
    """A progress bar (the browser's own <progress>) with a line of text beside it."""
    return (f'<div class="cn-progress"><progress value="{int(done)}" max="{max(int(total), 1)}"></progress>'
            f"<span>{escape(label)}</span></div>")


_COMMENT = re.compile(r"<!--.*?-->", re.S)
_BETWEEN_TAGS = re.compile(r">\s+<")


def compact_svg(svg: str) -> str:
    """An SVG without its comments and the whitespace between tags (Graphviz writes both)."""
    return _BETWEEN_TAGS.sub("><", _COMMENT.sub("", inline_svg(svg)))


def mimebundle(text: str, html_text: str | None = None, svg: str | None = None) -> dict[str, str]:
    """What `_repr_mimebundle_` returns: the text always, HTML and SVG where the object has them."""
    bundle = {"text/plain": text}
    if html_text is not None:
        bundle["text/html"] = html_text
    if svg is not None:
        bundle["image/svg+xml"] = svg
    return bundle
