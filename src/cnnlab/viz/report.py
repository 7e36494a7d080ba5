"""One self-contained HTML page: tables (sortable by any column), images embedded as data URIs,
settings; no network access is needed to view it. A small script sorts the tables and, on load,
records what rendered (`data-images-loaded`, `data-table-rows` on <body>) so a headless browser can
check the page."""

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

    def image(self, png: bytes, caption: str) -> None:
        data = base64.b64encode(png).decode()
        self.parts.append(f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
                          f"<figcaption>{html.escape(caption)}</figcaption></figure>")

    def settings(self, values: dict) -> None:
        rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(json.dumps(v) if not isinstance(v, str) else v)}</td></tr>"
                       for k, v in values.items())
        self.parts.append(f'<table class="settings">{rows}</table>')

    def render(self) -> str:
        return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(self.title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 13px; }}
th, td {{ border: 1px solid #ccc; padding: 3px 8px; }}
td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
table.sortable th {{ cursor: pointer; background: #f0f0f0; }}
table.sortable th:hover {{ background: #e0e0f0; }}
figure {{ display: inline-block; margin: 0.5em; }} img {{ max-width: 100%; }}
caption, figcaption {{ color: #555; font-size: 12px; }}
</style></head>
<body>
<h1>{html.escape(self.title)}</h1>
{"".join(self.parts)}
<script>
document.querySelectorAll("table.sortable").forEach(function (table) {{
  table.querySelectorAll("th").forEach(function (th, column) {{
    th.addEventListener("click", function () {{
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var numeric = th.dataset.numeric === "1", ascending = th.dataset.order !== "asc";
      rows.sort(function (a, b) {{
        var x = a.cells[column], y = b.cells[column];
        var order = numeric ? parseFloat(x.dataset.value || "0") - parseFloat(y.dataset.value || "0")
                            : x.textContent.localeCompare(y.textContent);
        return ascending ? order : -order;
      }});
      rows.forEach(function (row) {{ body.appendChild(row); }});
      th.dataset.order = ascending ? "asc" : "desc";
    }});
  }});
}});
window.addEventListener("load", function () {{
  var images = document.images, loaded = 0;
  for (var i = 0; i < images.length; i++) {{ if (images[i].complete && images[i].naturalWidth > 0) loaded++; }}
  document.body.dataset.imagesLoaded = loaded + "/" + images.length;
  document.body.dataset.tableRows = document.querySelectorAll("table.sortable tbody tr").length;
}});
</script>
</body></html>
"""


def write_page(page: Page, path: str | Path) -> Path:
    path = Path(path)
    if not path.parent.is_dir():
        raise CnnlabError(f"the folder {path.parent} does not exist; create it or choose another --html path")
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    temporary.write_text(page.render(), encoding="utf-8")
    os.replace(temporary, path)
    return path
