"""`cnnlab explore`: one offline page per network; a click on a layer shows the numbers `cnnlab
summary` computes, with their formulas; checked in headless Chromium."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from torch import nn

import cnnlab
from cnnlab.analysis import summary
from cnnlab.analysis.formulas import MB, one_decimal
from cnnlab.cli import main
from cnnlab.viz.explorer import page_data

pytestmark = [pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed (make graphviz)"),
              pytest.mark.xdist_group("explorer")]  # one page built for the module's browser tests


@pytest.fixture(scope="module")
def resnet18_page(tmp_path_factory):
    path = tmp_path_factory.mktemp("explore") / "resnet18.html"
    assert main(["explore", "resnet18", "--out", str(path)]) == 0
    return path


def _data(html: str) -> dict:
    return json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>', html, re.S).group(1))


def test_the_page_holds_every_row_of_the_summary_and_nothing_to_fetch(resnet18_page):
    html = resnet18_page.read_text()
    data = _data(html)
    result = summary("resnet18", peak=True)
    assert [row["name"] for row in data["rows"]] == [row.name for row in result.rows]
    boxes = {int(number) for number in re.findall(r"<title>n(\d+)</title>", html)}
    assert {row["box"] for row in data["rows"]} <= boxes  # every row is drawn by a box of the diagram
    assert not re.search(r'(src|href)="(https?:)?//', html) and "<link" not in html  # scripts and styles inline


def test_a_layers_figures_and_formulas_are_the_summarys(resnet18_page):
    data = {row["name"]: row for row in _data(resnet18_page.read_text())["rows"]}
    result = summary("resnet18", peak=True)
    row = result.row("layer3.1.conv2")
    shown = dict(data["layer3.1.conv2"]["figures"])
    assert shown["parameters"] == f"{row.params:,}" == "589,824"
    assert shown["FLOPs"].startswith(one_decimal(row.flops / 1e6) + " M")
    assert shown["activation memory"].startswith(one_decimal(row.activation_memory / MB) + " MB")
    assert shown["receptive field"] == f"{row.rf} pixels" and shown["jump"] == f"{row.jump} pixels"
    live = result.step_live(row)
    assert shown["training step"].startswith(f"{one_decimal(live / MB)} MB alive while it ran")
    assert data["layer3.1.conv2"]["worked"] == row.explain  # the formulas --explain prints
    assert data["layer3.1.conv2"]["inputs"] == ["256x14x14"]


def test_seed_003s_values_sit_beside_cnnlabs_at_its_settings():
    result = summary("alexnet", batch=128, peak=False)
    from cnnlab.viz.diagram import drawing_of

    _, box_of = drawing_of(result, dict(cnnlab.create_model("alexnet").named_modules()))
    rows = {row["name"]: row for row in page_data(result, box_of)["rows"]}
    seed = {label: (printed, equal, why) for label, printed, equal, why in rows["classifier.fc6"]["seed"]}
    assert seed["seed 003 #params"][:2] == ("37,758K", False) and "9,216 x 4,097" in seed["seed 003 #params"][2]
    assert seed["seed 003 MFLOPs"] == ("9,663.7", True, "")


def test_in_chromium_a_click_shows_the_layer_and_search_finds_any(resnet18_page, open_page):
    requests = []
    opened = open_page(resnet18_page.as_uri(), width=1400, height=900)
    page = opened.page
    page.on("request", lambda request: requests.append(request.url))
    page.wait_for_function("document.body.dataset.ready === '1'")
    data = {row["name"]: row for row in _data(resnet18_page.read_text())["rows"]}
    box = data["conv1"]["box"]
    page.locator(f"g.node:has(title:text-is('n{box}'))").click()
    assert page.inner_text("#panel h2") == "conv1"
    assert page.inner_text("#panel td[data-figure='parameters']") == "9,408"
    assert page.inner_text("#panel td[data-figure='output']") == "64x112x112"
    assert page.locator("g.node.selected title").text_content() == f"n{box}"
    page.fill("#search", "layer3.1.conv2")
    assert page.locator("#matches li").all_inner_texts() == ["layer3.1.conv2"]
    page.locator("#matches li").first.click()
    assert page.inner_text("#panel h2") == "layer3.1.conv2"
    assert page.inner_text("#panel td[data-figure='parameters']") == "589,824"
    page.fill("#search", "bn")
    assert int(page.locator("#matches").get_attribute("data-count")) == sum(1 for name in data if "bn" in name)
    page.click("#zoom-in")
    page.mouse.wheel(0, -200)
    assert requests == [] and opened.errors == []  # nothing fetched, nothing logged


def test_a_module_of_ones_own_and_bad_input(tmp_path, capsys):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
            self.fc = nn.Linear(8 * 8 * 8, 10)

        def forward(self, x):
            return self.fc(self.features(x).flatten(1))

    page = cnnlab.explore(Net(), input_size=(3, 16, 16))
    assert [row["name"] for row in _data(page.html)["rows"]][:3] == ["input", "features.0", "features.1"]
    assert page._repr_html_().startswith('<iframe srcdoc="&lt;!DOCTYPE html&gt;')
    assert main(["explore", "resnet5", "--out", str(tmp_path / "a.html")]) == 2
    assert "did you mean resnet50" in capsys.readouterr().err
    assert main(["explore", "vgg16", "--input", "3x16x16", "--out", str(tmp_path / "b.html")]) == 2
    assert "vgg16 cannot take a 3x16x16 input" in capsys.readouterr().err
    assert main(["explore", "resnet18", "--out", str(tmp_path / "c.txt")]) == 2
    assert "give a name ending in .html" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # no partial page left behind


def test_the_cost_bars_add_up_to_the_summarys_totals_and_show_seed_000s_vgg_point():
    from cnnlab.viz.explorer import cost_stages

    result = summary("vgg16", peak=True)
    from cnnlab.viz.diagram import drawing_of

    _, box_of = drawing_of(result, dict(cnnlab.create_model("vgg16").named_modules()))
    data = page_data(result, box_of)
    stages = cost_stages(result)
    assert [name for name, _ in stages][1:6] == ["conv1_1…pool1", "conv2_1…pool2", "conv3_1…pool3", "conv4_1…pool4",
                                                "conv5_1…pool5"]
    assert sorted(i for _, members in stages for i in members) == list(range(len(result.rows)))  # each row once
    assert sum(result.rows[i].params for _, m in stages for i in m) == result.totals.params
    assert sum(result.rows[i].activation_memory for _, m in stages for i in m) == result.totals.activation_memory
    shares = {stage["name"]: {bar[0]: bar[2] for bar in stage["bars"]} for stage in data["stages"]}
    assert shares["classifier"]["parameters"] > 85  # most parameters in the FC layers (seed 000)
    memory = {name: share["activation memory"] for name, share in shares.items()}
    assert max(memory, key=memory.get) == "conv1_1…pool1"  # most activation memory in the first stage


def test_in_chromium_a_hovered_position_outlines_its_receptive_field(resnet18_page, open_page):
    opened = open_page(resnet18_page.as_uri(), width=1400, height=1000)
    page = opened.page
    page.wait_for_function("document.body.dataset.ready === '1'")
    page.evaluate("window.cnnlabExplorer.show('layer2.0.conv2')")
    row = summary("resnet18").row("layer2.0.conv2")
    rows, cols = row.output_shape[-2:]
    grid = page.locator(".rf-output")
    grid.scroll_into_view_if_needed()
    bounds = grid.bounding_box()
    cell = bounds["width"] / cols
    for i, j in ((3, 5), (0, 0), (rows - 1, cols - 1)):
        page.mouse.move(bounds["x"] + (j + 0.5) * cell, bounds["y"] + (i + 0.5) * cell)
        # as `cnnlab rf` reckons it: centred at start + i x jump, rf pixels wide (pixel k spans [k, k+1))
        first_row = round(row.rf_centre + i * row.jump - row.rf / 2)
        first_col = round(row.rf_centre + j * row.jump - row.rf / 2)
        assert page.locator("#panel").get_attribute("data-rf-rows") == f"{first_row},{first_row + row.rf - 1}"
        assert page.locator("#panel").get_attribute("data-rf-cols") == f"{first_col},{first_col + row.rf - 1}"
        inside_rows = min(first_row + row.rf - 1, 223) - max(first_row, 0) + 1
        inside_cols = min(first_col + row.rf - 1, 223) - max(first_col, 0) + 1
        padding = 100 * (1 - inside_rows * inside_cols / row.rf ** 2)
        assert page.locator("#panel").get_attribute("data-rf-padding") == f"{padding:.1f}"
    assert "% of it is padding" in page.inner_text(".rf-text")  # the last corner reaches past the image
    page.click("#costs summary")
    page.locator("#bars .bar[data-stage='layer3'][data-what='parameters']").click()
    assert page.inner_text("#panel h2") == "layer3"
    layer3 = sum(r.params for r in summary("resnet18").rows if r.name.startswith("layer3."))
    assert page.inner_text("#panel td[data-figure='parameters']") == f"{layer3:,}"
    assert opened.errors == []


def test_in_chromium_stages_and_blocks_unfold_in_place(resnet18_page, open_page):
    opened = open_page(resnet18_page.as_uri(), width=1400, height=1000)
    page = opened.page
    page.wait_for_function("document.body.dataset.ready === '1'")
    result = summary("resnet18")

    def visible() -> int:
        return int(page.evaluate("document.body.dataset.visibleLayers"))

    def head(name: str):
        return page.locator(f'.fold[data-name="{name}"] > .fold-head')

    page.click("#by-stage")
    top = [row.name for row in result.rows if "." not in row.name]  # the layers outside the four stages
    assert visible() == len(top) == 8
    above = head("layer1").bounding_box()["y"]
    head("layer2").click()  # the stage unfolds into its two blocks, each folded
    assert visible() == 8 and page.locator('.fold[data-name="layer2"] .fold').count() == 2  # its two blocks
    stage_at = head("layer2").bounding_box()["y"]
    head("layer2.0").click()  # the block unfolds into its layers; its projection shortcut stays folded
    block = [row.name for row in result.rows if row.name.startswith("layer2.0.") and ".downsample." not in row.name]
    assert visible() == 8 + len(block) == 16
    assert head("layer1").bounding_box()["y"] == above and head("layer2").bounding_box()["y"] == stage_at  # nothing above moved
    page.locator('.fold[data-name="layer2.0"] .segment g.node').first.click()
    assert page.inner_text("#panel h2") == "layer2.0.conv1"
    head("layer2").click()  # folded again, its blocks with it
    assert visible() == 8
    page.click("#expand-all")
    assert visible() == len(result.rows)
    page.click("#fold-all")
    assert visible() == 8 and opened.errors == []
