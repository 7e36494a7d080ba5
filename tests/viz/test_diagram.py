"""`cnnlab draw`: diagrams read from the analysis trace, checked in the SVG text Graphviz writes."""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET

import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.cli import main
from cnnlab.viz.diagram import draw, module_figure

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed (make graphviz)")


def _labels(graph) -> list[str]:
    return re.findall(r'label="([^"]*)"', graph.source) + re.findall(r"label=([^\s\"\]]+)", graph.source)


def test_resnet50_folds_repeated_bottlenecks_and_shows_shortcuts():
    graph = draw("resnet50")
    source = graph.source
    # stage 2 (layer2): the projection block drawn on its own, then its three twins drawn once
    assert "Bottleneck ×3  (layer2.1 … 3)" in source
    assert "Bottleneck ×5  (layer3.1 … 5)" in source
    assert "7x7 conv, 64, /2" in source and "1x1 conv, 128, /2" in source
    # each residual add reads two boxes: the block's last conv and the shortcut (identity or projection)
    adds = re.findall(r"(n\d+) \[label=\"\+", source)
    assert adds
    for add in adds:
        assert len(re.findall(rf"-> {add} ", source)) == 2
    assert re.search(r'label=" 256x56x56"', source) and re.search(r'label=" 2048x7x7"', source)


def test_depth_one_is_one_box_per_stage_with_its_totals():
    graph = draw("resnet50", depth=1, annotate=["params"])
    assert "layer2: Bottleneck ×4" in graph.source
    assert "1,219,584 params" in graph.source  # layer2's parameters, from the summary's folded row
    assert "cluster" not in graph.source


def test_depth_zero_unfolds_every_block():
    graph = draw("resnet50", depth=0)
    assert "×" not in graph.source
    assert len(re.findall(r"Bottleneck  \(layer", graph.source)) == 16


def test_googlenet_branches_meet_at_a_concat():
    source = draw("googlenet").source
    concat = re.search(r"(n\d+) \[label=concat", source).group(1)
    assert len(re.findall(rf"-> {concat} ", source)) == 4  # four branches
    assert "Inception  (inception3a)" in source
    # 4e and 5a share their widths but a max pool stands between them: not one run
    assert "×" not in source


def test_densenet_folds_dense_layers_and_shows_the_growing_concatenation():
    source = draw("densenet121").source
    for count in (6, 12, 24, 16):
        assert f"DenseLayer ×{count}" in source
    assert 'label=" 256x56x56"' in source  # block 1's concatenation: 64 + 6 x 32 channels


def test_vgg16_and_a_user_module():
    source = draw("vgg16").source
    assert source.count("3x3 conv, 512") == 6 and source.count("2x2 max pool, /2") == 5

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(3, 8, 1)
            self.up = nn.ConvTranspose2d(16, 4, 2, stride=2)

        def forward(self, x):
            return {"out": self.up(torch.cat([torch.relu(self.a(x)), self.b(x)], 1))}

    source = cnnlab.draw(Net(), input_size=(3, 16, 16)).source
    assert "concat" in source and "3x3 conv, 8" in source and "1x1 conv, 8" in source
    assert "output\n4x32x32" in source or "output\\n4x32x32" in source


@needs_dot
def test_svg_file_has_its_text_inside_its_boxes(tmp_path):
    out = tmp_path / "resnet50.svg"
    draw("resnet50", out=out)
    root = ET.parse(out).getroot()
    ns = {"svg": "http://www.w3.org/2000/svg"}
    checked = 0
    for node in root.iterfind(".//svg:g[@class='node']", ns):
        shape = node.find("svg:path", ns) if node.find("svg:path", ns) is not None else node.find("svg:polygon", ns)
        if shape is None:
            continue
        numbers = [float(v) for v in re.findall(r"-?\d+\.?\d*", shape.get("d") or shape.get("points"))]
        xs, ys = numbers[0::2], numbers[1::2]
        for text in node.iterfind("svg:text", ns):
            x, y = float(text.get("x")), float(text.get("y"))
            assert min(xs) <= x <= max(xs) and min(ys) <= y <= max(ys), text.text
            checked += 1
    assert checked > 50


@needs_dot
def test_the_command_draws_models_module_figures_and_refuses_bad_input(tmp_path, capsys):
    assert main(["draw", "resnet20", "--out", str(tmp_path / "r.png")]) == 0
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["draw", "--module", "inception", "--out", str(tmp_path / "i.pdf")]) == 0
    assert (tmp_path / "i.pdf").read_bytes()[:4] == b"%PDF"
    assert main(["draw", "--module", "bottleneck", "--out", str(tmp_path / "b.svg")]) == 0
    svg = (tmp_path / "b.svg").read_text()
    assert "1x1 conv, 64" in svg and "1x1 conv, 256" in svg and "256x56x56" in svg
    capsys.readouterr()
    for bad, message in ((["draw", "resnet50", "--depth", "-1"], "--depth must be 0 or more"),
                         (["draw", "resnet50", "--out", str(tmp_path / "x.jpg")], "must end in .svg, .png or .pdf"),
                         (["draw", "resnet5"], "unknown model 'resnet5'"),
                         (["draw", "resnet50", "--annotate", "speed"], "unknown annotation speed"),
                         (["draw"], "say what to draw")):
        assert main(bad) == 2
        assert message in capsys.readouterr().err


def test_every_module_figure_builds_at_the_seeds_sizes():
    for name in ("inception", "naive-inception", "residual", "bottleneck", "dense", "nin", "vgg", "nasnet-normal",
                 "nasnet-reduction"):
        module, size, title = module_figure(name)
        assert draw(module, input_size=size, title=title).source
    module, size, _ = module_figure("inception")
    assert size == (256, 28, 28)
    assert cnnlab.summary(module, input_size=size).totals.macs == 271_351_808


def _node_labels(graph) -> list[str]:
    return ["".join(match) for match in re.findall(r'^\s*\S+ \[label=(?:"([^"]*)"|([^\s\]]+))', graph.source, re.M)]


def test_nasnet_cells_are_drawn_as_figure_4_and_the_net_as_figure_2():
    module, size, title = module_figure("nasnet-normal")
    labels = _node_labels(draw(module, input_size=size, title=title))
    assert labels.count("sep 5x5") == 2 and labels.count("sep 3x3") == 3 and labels.count("3x3 avg pool") == 3
    assert "h" in labels and "h_prev" in labels and labels.count("+") == 5  # two inputs, five blocks
    module, size, title = module_figure("nasnet-reduction")
    labels = _node_labels(draw(module, input_size=size, title=title))
    assert labels.count("sep 7x7, /2") == 2 and labels.count("3x3 max pool, /2") == 2 and labels.count("3x3 avg pool") == 1
    labels = _node_labels(draw("nasnet_a_mobile"))
    assert sum(label.startswith("Normal cell, 44 x 6") for label in labels) == 4
    assert sum(label.startswith("Reduction cell") for label in labels) == 4  # two in the stem, two between stages


def test_fractal_blocks_are_drawn_as_figure_1_with_one_join_box_per_mean():
    labels = _node_labels(draw("fractalnet20"))
    # five blocks of C = 3: joins at depths 2 and 4 of each; the stack and the mean are one "join" box
    assert labels.count("join (mean)") == 10 and "stack" not in labels and "mean" not in labels
    # each column is pooled before its block's last join (the authors' order): 3 pools in each block
    assert labels.count("3x3 conv, 64\nBN, ReLU") == 7 and labels.count("2x2 max pool, /2") == 4 * 3
    assert labels.count("global max pool") == 3  # the fifth block's pools read a 2x2 map: at 32x32 they are global
    labels = _node_labels(draw("fractalnet34"))
    assert labels.count("7x7 conv, 64, /2\nBN, ReLU") == 1 and labels.count("join (mean)") == 4 * 4
    assert labels.count("3x3 conv, 512\nBN, ReLU") == 15 and labels.count("2x2 max pool, /2") == 4 * 4
    assert "global avg pool\nflatten" in labels and "fc, 1000" in labels  # ResNet-34's last layer, on a 7x7 map


@needs_dot
def test_every_zoo_model_is_drawn_within_a_page_width():
    """Letter width, 8.5 in = 612 pt, at the diagram's 10 pt box font."""
    from cnnlab.models import list_models

    for name in list_models():
        svg = draw(name).pipe(format="svg").decode()
        width = float(re.search(r'<svg width="([\d.]+)pt"', svg)[1])
        assert width <= 612, (name, width)
