"""The rendering module: rows into HTML and SVG, on the ground floor (it imports nothing of cnnlab)."""

from __future__ import annotations

import ast
from pathlib import Path

from cnnlab import rendering


def test_rendering_imports_nothing_of_cnnlab():
    tree = ast.parse(Path(rendering.__file__).read_text())
    imported = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    imported += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    assert imported and not [name for name in imported if name and name.startswith("cnnlab")]


def test_a_table_escapes_its_text_and_marks_what_differs():
    html = rendering.table(["Layer", "#Params"], [["<conv>", rendering.Cell("37,758K *", title='a "slip"', differs=True)]],
                           row_classes=["aside"])
    assert "<td>&lt;conv&gt;</td>" in html
    assert '<td title="a &quot;slip&quot;" class="cn-differs">37,758K *</td>' in html
    assert '<tr class="cn-aside">' in html and "<th>#Params</th>" in html


def test_tables_of_one_display_share_their_column_widths():
    columns = ["Layer", "MFLOPs"]
    layout = rendering.column_widths(columns, [["conv1", "26,986.3"], ["a_very_long_layer_name" * 3, "1.0"]])
    assert layout.widths == (41.5, 9.5)  # the first column capped at 40 characters, the header's bold width counted
    first = rendering.table(columns, [["conv1", "1.0"]], layout=layout, scroll=False)
    second = rendering.table(columns, [["pool1", "2.0"]], layout=layout, head=False, scroll=False)
    for html in (first, second):
        assert html.startswith(f'<table class="cn-table {layout.name}">')
    assert "<thead>" in first and "<thead>" not in second
    # the widths are written once for the display, not once per table
    assert layout.style() == (f"<style>.cnnlab table.{layout.name}{{width:31.62em}}"
                              f".cnnlab .{layout.name} td:nth-child(1),.cnnlab .{layout.name} th:nth-child(1){{width:25.73em}}"
                              f".cnnlab .{layout.name} td:nth-child(2),.cnnlab .{layout.name} th:nth-child(2){{width:5.89em}}</style>")


def test_a_fold_is_details_without_script():
    html = rendering.fold("layer1", "2 × BasicBlock", "<p>inside</p>")
    assert html.startswith("<details><summary>") and "<script" not in html
    assert rendering.fold("x", "", "", open=True).startswith("<details open>")


def test_an_svg_drawn_inline_scales_to_the_cell_and_scrolls_when_tall():
    svg = ('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "x">\n'
           '<svg width="400pt" height="3000pt" viewBox="0.00 0.00 400.00 3000.00" xmlns="http://www.w3.org/2000/svg">'
           "<g/></svg>")
    html = rendering.svg_figure(svg, max_height_px=600)
    assert "<?xml" not in html and "DOCTYPE" not in html
    assert 'width="400pt"' not in html and 'height="3000pt"' not in html and 'viewBox="0.00 0.00 400.00 3000.00"' in html
    assert 'style="width:100%;max-width:400pt;"' in html  # never wider than drawn, narrower with the cell
    assert html.startswith('<div class="cn-figure" style="max-height:600px">')  # the frame scrolls: nothing is cut


def test_formulas_split_at_the_first_equals_sign():
    html = rendering.formulas(["params = (11 x 11 x 3 + 1) x 96 = 34,944", "no sign here"])
    assert "<td>params</td><td>(11 x 11 x 3 + 1) x 96 = 34,944</td>" in html
    assert "<td></td><td>no sign here</td>" in html


def test_a_frame_carries_its_scoped_style_and_title():
    html = rendering.frame("<p>x</p>", title="alexnet <227>")
    assert html.startswith('<div class="cnnlab"><style>') and "alexnet &lt;227&gt;" in html
    assert all(line.startswith((".cnnlab", "  ")) or not line.strip() for line in rendering.STYLE.splitlines())
