"""A summary, an explanation, a diagram and a model as a notebook shows them (HTML and SVG) and as
a terminal prints them (text), from the same rows."""

from __future__ import annotations

import re
import shutil

import pytest
from torch import nn

import cnnlab
from cnnlab.analysis import summary

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed (make graphviz)")


def _cells(html: str, first_cell: str) -> list[str]:
    """The cells of the row whose first cell is `first_cell`."""
    match = re.search(r"<tr[^>]*><td[^>]*>" + re.escape(first_cell) + r"</td>(.*?)</tr>", html)
    assert match, first_cell
    return re.findall(r"<td[^>]*>(.*?)</td>", match.group(1))


def test_alexnet_at_batch_128_shows_seed_003_beside_each_row():
    result = summary("alexnet", batch=128)
    html = result._repr_html_()
    # cnnlab's conv1, then the slide's values in the same columns (#activations, #params in K, MFLOPs, MB)
    assert _cells(html, "features.conv1")[6:13] == ["290,400", "34,944", "26,986.3", "13,493.1", "0.0", "283.6", "0.4"]
    seed = _cells(html, "seed 003: conv1")
    assert (seed[6], seed[7], seed[8], seed[11], seed[12]) == ("290,400", "35K", "26,986.3", "283.6", "0.4")
    # fc6's printed #params is the slide's slip: marked, with the reason in its tooltip and under the table
    assert re.search(r'<td title="the slide computes 9,216 x 4,097 \(a bias per input\)[^"]*" class="cn-differs">'
                     r"37,758K \*</td>", html)
    assert "seed 003: fc6 #params: printed 37,758K; the slide computes 9,216 x 4,097" in html
    # the totals: 290,851 MFLOPs printed against cnnlab's column sum
    assert _cells(html, "Totals")[7:9] == ["62,378,344", "290,766.6"]
    totals = _cells(html, "seed 003: Totals")
    assert totals[7] == "62,378K" and "290,851 *" in totals[8]
    assert html.count("seed 003: ") - html.count("seed 003: fc6 #params") - html.count("seed 003: Totals ") == 14
    assert "<script" not in html


def test_other_settings_than_the_slides_show_no_seed_values_but_say_how_to_see_them():
    html = summary("alexnet", batch=1)._repr_html_()
    assert "seed 003: conv1" not in html
    assert "summary(&#x27;alexnet&#x27;, batch=128) shows the slide&#x27;s values beside cnnlab&#x27;s" in html


def test_a_long_table_folds_its_stages_with_their_sums():
    result = summary("resnet152")
    html = result._repr_html_()
    assert len(html) < 300_000  # ResNet-152's 566 rows stay small enough for a notebook
    bundle = result._repr_mimebundle_()
    assert bundle["text/html"] == html  # the text beside it: the table's first and last rows
    assert "... 536 rows ..." in bundle["text/plain"] and "layer1.0.conv1" in bundle["text/plain"]
    assert "│ fc " in bundle["text/plain"] and "layer3.20.conv1" not in bundle["text/plain"]
    assert "<details open>" not in html and html.count("<details>") == 4 + 50 + 4  # stages, bottlenecks, projections
    layer3 = sum(r.params for r in result.rows if r.name.startswith("layer3."))
    assert (f'<span class="cn-name">layer3</span><span class="cn-detail">36 × Bottleneck · {36 * 11 + 2} layers · '
            f"output 1024x14x14 · {layer3:,} params") in html
    # a short table starts open; folded= overrides either way
    assert "<details>" not in summary("resnet18").to_html(folded=False)
    assert "<details open>" not in summary("vgg11").to_html(folded=True)


def test_the_text_is_the_terminals_table_and_the_dataclass_fields_are_not_shown():
    result = summary("lenet5_modern")
    text = repr(result)
    assert text == str(result) == result.to_text()
    assert text.startswith("lenet5_modern: input 1x28x28, minibatch 1, float32, momentum")
    assert "LayerRow(" not in text and "61,706" in text


def test_explain_is_text_that_a_notebook_shows_as_worked_lines():
    explanation = summary("alexnet", batch=128).explain("conv1")
    assert "params = (11 x 11 x 3 + 1) x 96 = 34,944" in explanation  # the text --explain prints
    html = explanation._repr_html_()
    assert "<td>params</td><td>(11 x 11 x 3 + 1) x 96 = 34,944</td>" in html
    assert "formulas: alexnet, minibatch 128, float32, momentum" in html


def test_a_module_of_ones_own_shows_its_table_too():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.block = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
            self.head = nn.Linear(8 * 16 * 16, 10)

        def forward(self, x):
            return self.head(self.block(x).flatten(1))

    html = cnnlab.summary(Net(), input_size=(3, 16, 16))._repr_html_()
    assert _cells(html, "block.0")[6:8] == ["2,048", "224"]
    assert "block</span><span class=\"cn-detail\">Sequential · 2 layers · output 8x16x16 · 224 params" in html
    assert _cells(html, "head")[7] == "20,490"


@needs_dot
def test_a_diagram_shows_inline_as_svg_and_saves(tmp_path):
    diagram = cnnlab.draw("resnet18")
    bundle = diagram._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html", "image/svg+xml"}
    assert bundle["image/svg+xml"].startswith("<svg") and "7x7 conv, 64, /2" in bundle["image/svg+xml"]
    svg_tag = re.search(r"<svg[^>]*>", bundle["text/html"]).group(0)
    assert "viewBox" in svg_tag and not re.search(r'\s(width|height)="', svg_tag)  # scales with the cell
    assert 'class="cn-figure" style="max-height:720px"' in bundle["text/html"]
    assert diagram.source.startswith("digraph resnet18") and diagram.pipe("svg").startswith(b"<?xml")
    assert diagram.save(tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
    cnnlab.draw("alexnet", out=tmp_path / "a.svg")
    assert (tmp_path / "a.svg").read_text().count("<svg") == 1


def test_a_zoo_model_shows_its_card_and_keeps_pytorchs_repr():
    model = cnnlab.create_model("resnet50")
    html = model._repr_html_()
    assert "He et al. 2015" in html and "25,557,032 (25,557,032 trainable)" in html
    assert _cells(html, "layer4") == ['Sequential: 3 × Bottleneck', "2048x7x7", "14,964,736", "58.6%"]
    assert _cells(html, "fc") == ["Linear", "1000", "2,049,000", "8.0%"]
    assert "module tree" in html and "(layer1): Sequential(" in html  # PyTorch's repr, folded below
    assert repr(model).startswith("ResNet(")


def test_a_step_that_cannot_train_at_this_batch_is_a_note_not_a_crash():
    # BatchNorm after a dense layer needs two values per channel to train: at minibatch 1 it cannot
    result = summary("lenet5_modern", peak=True, activation="relu", pool="max", batch_norm=True)
    assert result.training_peak is None
    assert result.notes == ["the training step was not simulated: Expected more than 1 value per channel when training, "
                            "got input size torch.Size([1, 120]) (at minibatch 1)"]
    assert summary("lenet5_modern", batch=2, peak=True, batch_norm=True).training_peak is not None
