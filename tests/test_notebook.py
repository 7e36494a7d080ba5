"""cnnlab in Jupyter: a notebook as a student writes one, executed in a real kernel (nbclient, the
`notebook` extra), each output's MIME types asserted; then its HTML opened in Chromium and folded."""

from __future__ import annotations

import pytest

nbformat = pytest.importorskip("nbformat", reason="needs the notebook extra (pip install -e '.[notebook]')")
nbclient = pytest.importorskip("nbclient", reason="needs the notebook extra (pip install -e '.[notebook]')")
pytest.importorskip("ipykernel", reason="needs the notebook extra (pip install -e '.[notebook]')")

# its module fixture (one kernel) is made once: the tests that share it run in one xdist worker
pytestmark = pytest.mark.xdist_group("notebook")

CELLS = {
    "imports": "import cnnlab\nimport torch\nfrom torch import nn",
    "zoo summary": "cnnlab.summary('alexnet', batch=128)",
    "folded summary": "cnnlab.summary('resnet18')",
    "own module": ("class Tiny(nn.Module):\n"
                   "    def __init__(self):\n"
                   "        super().__init__()\n"
                   "        self.features = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))\n"
                   "        self.fc = nn.Linear(16 * 16 * 16, 10)\n"
                   "    def forward(self, x):\n"
                   "        return self.fc(self.features(x).flatten(1))\n\n"
                   "cnnlab.summary(Tiny(), input_size=(3, 32, 32))"),
    "explain": "cnnlab.summary('alexnet', batch=128).explain('conv1')",
    "draw": "cnnlab.draw('resnet18')",
    "model": "cnnlab.create_model('resnet18')",
    "op": "cnnlab.op.conv([[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[0, 1], [2, 3]])",
    "step": "cnnlab.op.conv([[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[0, 1], [2, 3]]).step(1, 0)",
    "compare": "cnnlab.compare(['resnet18', 'vgg11', 'alexnet'], batch=8, sort='-peak')",
    "explore": "cnnlab.explore('resnet18')",
    "fit": ("class Digits(nn.Module):\n"
            "    def __init__(self):\n"
            "        super().__init__()\n"
            "        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))\n"
            "        self.fc = nn.Linear(8 * 14 * 14, 10)\n"
            "    def forward(self, x):\n"
            "        return self.fc(self.features(x).flatten(1))\n\n"
            "run = cnnlab.fit(Digits(), data='mnist-embedded', epochs=2, subset=640, batch_size=64, optimizer='adam', "
            "lr=2e-3, out='runs/digits')"),
    "run": "run",
}


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in CELLS.values()]
    folder = tmp_path_factory.mktemp("notebook")
    nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(folder)}}).execute()
    return dict(zip(CELLS, notebook.cells))


def _only_result(cell) -> dict:
    """The cell's one output: its value, shown once (nothing printed beside it, no error)."""
    assert [output["output_type"] for output in cell.outputs] == ["execute_result"], cell.outputs
    return cell.outputs[0]["data"]


def test_each_result_shows_richly_once(executed):
    assert executed["imports"].outputs == []
    for name in ("zoo summary", "folded summary", "own module", "explain", "model", "op", "step", "compare", "explore"):
        assert set(_only_result(executed[name])) == {"text/plain", "text/html"}, name
    assert set(_only_result(executed["draw"])) == {"text/plain", "text/html", "image/svg+xml"}
    zoo = _only_result(executed["zoo summary"])
    assert zoo["text/plain"].startswith("alexnet: input 3x227x227, minibatch 128, float32, momentum")
    assert "seed 003: conv1" in zoo["text/html"]
    assert "features</span><span class=\"cn-detail\">Sequential · 3 layers · output 16x16x16 · 448 params" in \
        _only_result(executed["own module"])["text/html"]
    assert "<td>params</td><td>(11 x 11 x 3 + 1) x 96 = 34,944</td>" in _only_result(executed["explain"])["text/html"]
    assert "Sequential: 2 × BasicBlock" in _only_result(executed["model"])["text/html"]
    assert _only_result(executed["model"])["text/plain"].startswith("ResNet(")  # PyTorch's repr, as in a terminal
    worked = _only_result(executed["op"])
    assert "[1,0] 3x0 + 4x1 + 6x2 + 7x3 = 37" in worked["text/plain"] and worked["text/html"].count('<figure class="cn-grid">') == 12
    assert _only_result(executed["step"])["text/plain"] == "[1,0] 3x0 + 4x1 + 6x2 + 7x3 = 37"
    compared = _only_result(executed["compare"])
    assert compared["text/plain"].startswith("<Comparison of vgg11, alexnet, resnet18:")  # largest step peak first
    assert "<th>Step peak (MB)</th>" in compared["text/html"]
    explorer = _only_result(executed["explore"])  # the page inline, its script running in a sandboxed iframe
    assert explorer["text/html"].startswith('<iframe srcdoc="&lt;!DOCTYPE html&gt;') and 'sandbox="allow-scripts"' in \
        explorer["text/html"]


def test_fit_draws_its_curves_live_and_returns_a_run_that_shows_them(executed):
    outputs = executed["fit"].outputs
    kinds = [output["output_type"] for output in outputs]
    assert "error" not in kinds and "execute_result" not in kinds
    printed = "".join(output.get("text", "") for output in outputs if output["output_type"] == "stream")
    assert printed.startswith("Digits on mnist-embedded: 640 train / 64 val images, 1x28x28, 10 classes") and "settings: adam lr 0.002" in printed
    assert "epoch   1/2" not in printed  # each epoch's line is in the live display, not printed below it
    views = [output for output in outputs if output["output_type"] == "display_data"]
    assert len(views) == 2  # the curves with the last epoch's line, and the progress bar (cleared at the end)
    live = views[0]["data"]["text/html"]
    assert "data:image/png;base64," in live and "epoch   2/2: train loss" in live  # redrawn in place to the end
    assert views[1]["data"]["text/html"] == ""
    shown = _only_result(executed["run"])
    assert shown["text/plain"].startswith("<Run runs/digits: Digits on mnist-embedded, 2 epochs, best val top-1")
    assert "data:image/png;base64," in shown["text/html"] and "best epoch" in shown["text/html"]


def test_the_outputs_render_in_chromium_and_fold(executed, open_page, tmp_path):
    parts = [_only_result(executed[name])["text/html"] for name in CELLS if name not in ("imports", "fit", "explore")]
    page_path = tmp_path / "outputs.html"
    page_path.write_text("<!DOCTYPE html><html><head><meta charset='utf-8'></head><body style='width:1000px'>"
                         + "".join(f"<section>{part}</section>" for part in parts) + "</body></html>")
    opened = open_page(page_path.as_uri())
    page = opened.page
    visible_rows = "s => [...document.querySelectorAll('section')[s].querySelectorAll('tr')]" \
                   ".filter(r => r.checkVisibility()).length"
    folded = page.evaluate(visible_rows, 1)  # resnet18's summary: its stages folded
    page.locator("section >> nth=1").locator("summary", has_text="layer1").first.click()
    unfolded = page.evaluate(visible_rows, 1)
    assert unfolded == folded  # layer1 opened shows its two blocks, still folded
    page.locator("section >> nth=1").locator("summary", has_text="layer1.0").first.click()
    assert page.evaluate(visible_rows, 1) == folded + 8  # BasicBlock layer1.0: conv, bn, relu, conv, bn, drop, add, relu
    figure = page.locator(".cn-figure").first.bounding_box()
    assert figure["width"] <= 1000 and figure["height"] <= 720  # drawn within the cell, scrolled when taller
    assert opened.errors == []
    # the explorer inline: its page runs in the iframe and answers a click
    explorer = tmp_path / "explorer.html"
    explorer.write_text("<!DOCTYPE html><html><body>" + _only_result(executed["explore"])["text/html"] + "</body></html>")
    inline = open_page(explorer.as_uri())
    frame = inline.page.frame_locator("iframe")
    frame.locator("body[data-ready='1']").wait_for()
    frame.locator("#search").fill("layer4.1.conv2")
    frame.locator("#matches li").first.click()
    assert frame.locator("#panel td[data-figure='parameters']").inner_text() == "2,359,296"
    assert inline.errors == []
