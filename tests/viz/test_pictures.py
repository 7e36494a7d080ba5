"""Plots read from the analysis tables, the complexity chart, filters and feature maps, the HTML
report checked in a real headless Chromium."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image

from cnnlab.analysis import summary
from cnnlab.cli import main
from cnnlab.train import TrainConfig, fit
from cnnlab.viz.plots import share_by_kind

# its module-scoped fixture is made once: the tests that share it run in one xdist worker
pytestmark = pytest.mark.xdist_group("report run")


def image_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        return image.size


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "lenet"
    fit(TrainConfig(model="lenet5_modern", epochs=1, subset=500, optimizer="adam", lr=3e-3,
                    model_kwargs={"activation": "relu", "pool": "max", "batch_norm": True}, out=str(out)), log=lambda _: None)
    return out


def test_layer_plots_show_the_seeds_trends(tmp_path, capsys):
    vgg = summary("vgg16")
    linear = sum(r.params for r in vgg.rows if r.kind == "linear")
    assert linear == 102_764_544 + 16_781_312 + 4_097_000
    assert share_by_kind(vgg, "params")["linear"] == pytest.approx(linear / 138_357_544)  # 89%: parameters sit in the FCs
    assert share_by_kind(vgg, "flops")["conv"] > 0.99  # FLOPs sit in the convs
    for what in ("params", "flops", "memory", "rf"):
        assert main(["plot", "vgg16", "--what", what, "--out", str(tmp_path / f"{what}.png")]) == 0
        width, height = image_size(tmp_path / f"{what}.png")
        assert width > 400 and height > 300
    printed = capsys.readouterr().out
    assert "vgg16: parameters, 89% in linear layers, 11% in conv layers" in printed
    assert "receptive field grows to 404 pixels" in printed
    assert main(["plot", "resnet18", "--what", "flops", "--depth", "1", "--out", str(tmp_path / "r.svg")]) == 0
    assert (tmp_path / "r.svg").read_text().lstrip().startswith("<?xml")
    assert main(["plot", "vgg16", "--out", str(tmp_path / "nowhere" / "x.png")]) == 2
    assert "the folder" in capsys.readouterr().err


def test_complexity_chart_cites_its_accuracies(tmp_path, capsys):
    code = main(["compare", "alexnet_owt", "vgg16", "resnet50b", "lenet5", "--plot", str(tmp_path / "chart.png")])
    out = capsys.readouterr().out
    assert code == 0 and "left out (no published ImageNet accuracy): lenet5" in out
    assert image_size(tmp_path / "chart.png")[0] > 600
    from cnnlab.viz.accuracy import PUBLISHED_TOP1

    assert PUBLISHED_TOP1["resnet50b"] == (76.130, "torchvision docs, IMAGENET1K_V1 acc@1, single centre crop")
    assert round(PUBLISHED_TOP1["resnet152"][0], 2) == 78.57 and "10-crop" in PUBLISHED_TOP1["resnet152"][1]
    assert all(source for _, source in PUBLISHED_TOP1.values())
    # seed 004's "Comparing Complexity" slide: every one of its seven nets has a published figure
    seven = ["alexnet", "vgg16", "googlenet", "resnet50", "resnet152", "densenet121", "squeezenet1_0"]
    assert main(["compare", *seven, "--no-peak", "--plot", str(tmp_path / "seven.png")]) == 0
    assert "left out" not in capsys.readouterr().out
    assert main(["compare", "lenet5", "--plot", str(tmp_path / "none.png")]) == 2
    assert "none of these models has a published ImageNet accuracy" in capsys.readouterr().err


def test_filters_and_feature_maps(run, tmp_path, capsys):
    assert main(["filters", str(run), "--out", str(tmp_path / "f.png")]) == 0
    assert "features.conv1" in capsys.readouterr().out
    assert image_size(tmp_path / "f.png")[0] > 50
    Image.new("L", (28, 28), 128).save(tmp_path / "digit.png")
    assert main(["features", str(run), str(tmp_path / "digit.png"), "--layer", "conv2", "--out", str(tmp_path / "m.png")]) == 0
    assert "16x10x10 at conv2" in capsys.readouterr().out
    assert main(["filters", str(run), "--layer", "conv9", "--out", str(tmp_path / "g.png")]) == 2
    assert "the convolutions are: features.conv1, features.conv2" in capsys.readouterr().err
    assert main(["features", str(run), str(tmp_path / "digit.png"), "--layer", "fc3", "--out", str(tmp_path / "n.png")]) == 2
    assert "does not output feature maps" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["model", "run"])
def test_report_renders_in_headless_chromium(run, tmp_path, kind, open_page):
    page = tmp_path / "report.html"
    assert main(["report", "resnet18" if kind == "model" else str(run), "--html", str(page)]) == 0
    text = page.read_text()
    # self-contained: nothing to fetch (an SVG's xmlns names a namespace, it is not fetched)
    assert not re.search(r'(src|href)=(&quot;|")?(https?:)?//', text) and "<link" not in text
    assert "cnnlab explore" in text  # the explorer of its model, embedded
    opened = open_page(page.as_uri())
    loaded = re.fullmatch(r"(\d+)/(\d+)", opened.body_data("imagesLoaded"))
    # the diagram and 4 per-layer plots; a run adds its curves, confusion matrix, per-class bars (and mistakes)
    assert loaded and loaded[1] == loaded[2] and int(loaded[2]) in ((5,) if kind == "model" else (8, 9))
    assert "the network, as `cnnlab draw` draws it" in opened.page.content()
    layers = len(summary("resnet18" if kind == "model" else "lenet5_modern", batch=1,
                         **({} if kind == "model" else {"activation": "relu", "pool": "max", "batch_norm": True})).rows)
    assert opened.body_data("layerRows") == str(layers)  # every layer is in the tree
    assert not opened.errors, opened.errors
    shot = tmp_path / "shot.png"
    opened.page.screenshot(path=str(shot))
    assert image_size(shot) == (1200, 1600)
    with Image.open(shot) as image:  # something was drawn: not a blank page
        assert sum(count > 0 for count in image.convert("L").histogram()) > 10


def test_report_tree_folds_and_unfolds_by_stage(tmp_path, open_page):
    page = tmp_path / "report.html"
    assert main(["report", "resnet50", "--html", str(page)]) == 0

    def visible(fragment: str) -> int:  # a link opens the page unfolded or filtered
        opened = open_page(page.as_uri() + fragment)
        assert not opened.errors, opened.errors
        return int(opened.body_data("visibleRows"))

    # folded: input, conv1, bn1, relu, maxpool, layer1-4, avgpool, flatten, fc
    assert visible("") == 12
    assert visible("#expand=layer2") == 12 + 4  # stage 2's four bottlenecks, each still folded
    assert visible("#expand=layer2,layer2.0") == 16 + 12  # the first block: its layers and its projection shortcut
    assert visible("#filter=downsample") == 4 + 4 + 4 * 3  # each stage, its first block, the projection and its 2 layers
    # a click on a stage's or a block's triangle unfolds it, a second click folds it again
    opened = open_page(page.as_uri(), height=2400)
    folded = opened.page.screenshot()
    for name in ("layer1", "layer1.0", "layer1.1"):
        opened.page.click(f'tr[data-id="{name}"] span.toggle')
    # layer1's 3 blocks; block 0's 12 rows (as layer2.0's above), block 1's 11 (no projection row)
    assert int(opened.body_data("visibleRows")) == 12 + 3 + 12 + 11
    assert opened.page.screenshot() != folded
    opened.page.click('tr[data-id="layer1"] span.toggle')
    assert int(opened.body_data("visibleRows")) == 12 and opened.page.screenshot() == folded
    assert not opened.errors, opened.errors


def test_vgg_layers_carry_the_papers_names():
    names = summary("vgg16").paper_names
    convs = [name for name in names.values() if name.startswith("conv")]
    assert convs[:3] == ["conv1_1", "conv1_2", "conv2_1"] and convs[-1] == "conv5_3" and len(convs) == 13
    assert (names["features.28"], names["classifier.0"], names["classifier.6"]) == ("conv5_3", "fc6", "fc8")
    bn_names = summary("vgg16_bn").paper_names  # BatchNorm shifts the indices, not the names
    assert bn_names["features.40"] == "conv5_3"
