"""cnnlab.op and cnnlab.compare from Python: seed 002's worked examples drawn as d2l draws them
(grids, the window highlighted, the sum written out), with cnnlab op's numbers; comparisons as
tables sorted by any column."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import cnnlab
from cnnlab.analysis import summary
from cnnlab.analysis.formulas import MB
from cnnlab.cli import main
from cnnlab.errors import CnnlabError

X = [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
K = [[0, 1], [2, 3]]


def _grids(html: str) -> list[list[list[tuple[str, str]]]]:
    """Each grid as rows of (class, text) cells."""
    grids = []
    for table in re.findall(r'<figure class="cn-grid"><table>(.*?)</table>', html):
        grids.append([re.findall(r'<td(?: class="([^"]*)")?>([^<]*)</td>', row) for row in re.findall(r"<tr>(.*?)</tr>", table)])
    return grids


def _lit(grid) -> list[str]:
    return [text for row in grid for css, text in row if css == "cn-hi"]


def test_seed_002_cross_correlation_drawn_step_by_step(capsys):
    worked = cnnlab.op.conv(X, K)
    assert worked.output.tolist() == [[[19, 25], [37, 43]]]
    # the terminal text is cnnlab op's, from the same code
    assert main(["op", "conv", "--input", "0 1 2; 3 4 5; 6 7 8", "--kernel", "0 1; 2 3"]) == 0
    assert str(worked) == capsys.readouterr().out.rstrip("\n")
    step = worked.step(1, 0)
    assert str(step) == "[1,0] 3x0 + 4x1 + 6x2 + 7x3 = 37"
    input_grid, kernel_grid, output_grid = _grids(step.panel())
    assert _lit(input_grid) == ["3", "4", "6", "7"]  # the window over rows 1-2, columns 0-1
    assert _lit(kernel_grid) == ["0", "1", "2", "3"] and _lit(output_grid) == ["37"]
    html = worked._repr_mimebundle_()["text/html"]
    assert len(_grids(html)) == 3 * 4  # every one of the four positions drawn
    for line in ("0x0 + 1x1 + 3x2 + 4x3 = 19", "1x0 + 2x1 + 4x2 + 5x3 = 25", "4x0 + 5x1 + 7x2 + 8x3 = 43"):
        assert line in html
    assert [str(s) for s in worked.steps()][0] == "[0,0] 0x0 + 1x1 + 3x2 + 4x3 = 19"


def test_padding_is_drawn_shaded_and_strides_move_the_window():
    worked = cnnlab.op.conv(np.array(X), torch.tensor(K), padding=1, stride=(3, 2))
    assert worked.output.tolist() == [[[0, 8], [6, 8]]]
    step = worked.step(1, 0)
    assert str(step) == "[1,0] 0x0 + 6x1 + 0x2 + 0x3 = 6"
    padded = _grids(step.panel())[0]
    assert len(padded) == 5 and all(len(row) == 5 for row in padded)
    assert [css for css, _ in padded[0]] == ["cn-pad"] * 5  # the ring of zeros around the 3x3 input
    assert _lit(padded) == ["0", "6", "0", "0"]  # rows 3-4 of the padded input, columns 0-1


def test_channels_sum_and_pooling_keeps_them_apart():
    two = [X, [[1, 2, 3], [4, 5, 6], [7, 8, 9]]]
    worked = cnnlab.op.conv(two, [K, [[1, 2], [3, 4]]])  # seed 002's multi-input-channel example: 56 72 / 104 120
    assert worked.output.tolist() == [[[56, 72], [104, 120]]]
    grids = _grids(worked.step(0, 0).panel())
    assert len(grids) == 5  # input 0 and its kernel slice, input 1 and its slice, the output
    assert "+" in worked.step(0, 0).panel() and "⋆" in worked.step(0, 0).panel()
    pooled = cnnlab.op.pool(X, size=2, stride=1)
    assert pooled.output.tolist() == [[[4, 5], [7, 8]]]
    assert str(pooled.step(0, 1)) == "[0,1] max(1, 2, 4, 5) = 5"
    assert cnnlab.op.pool(X, size=2, stride=1, mode="avg").output.tolist() == [[[2, 3], [5, 6]]]
    one = cnnlab.op.conv1x1([[[1, 2], [3, 4]], [[5, 6], [7, 8]]], [[1, 0], [1, 1]])
    assert one.output.tolist() == [[[1, 2], [3, 4]], [[6, 8], [10, 12]]]
    assert "as a matrix product:" in str(one) and "as a matrix product:" in one._repr_mimebundle_()["text/html"]


def test_bad_operands_get_one_clear_line():
    with pytest.raises(CnnlabError, match=r"input: give numbers in rows of equal length"):
        cnnlab.op.conv([[0, 1, 2], [3, 4]], K)
    with pytest.raises(CnnlabError, match=r"kernel 1 has 1 channel\(s\) but the input has 2"):
        cnnlab.op.conv([X, X], K)
    with pytest.raises(CnnlabError, match=r"step\(2, 0, channel=0\) is outside the output: 1 channel\(s\) of 2x2"):
        cnnlab.op.conv(X, K).step(2, 0)


def test_compare_sorts_by_any_column_and_its_peaks_are_summarys():
    comparison = cnnlab.compare(["resnet18", "vgg11", "alexnet"], batch=8, sort="-peak")
    peaks = [row["peak_training_mb"] for row in comparison.rows]
    assert peaks == sorted(peaks, reverse=True)
    for row in comparison.rows:  # the one memory answer: the same simulated step as summary's
        assert row["peak_training_mb"] == summary(row["model"], batch=8, peak=True).training_peak.peak / MB
    html = comparison._repr_mimebundle_()["text/html"]
    assert "<th>Step peak (MB)</th>" in html
    first = re.search(r"<tbody><tr><td>([^<]*)</td>", html).group(1)
    assert first == comparison.rows[0]["model"]
    assert [row["model"] for row in comparison.sort("params").rows] == ["resnet18", "alexnet", "vgg11"]
    with pytest.raises(CnnlabError, match=r"cannot sort by 'speed': choose one of"):
        comparison.sort("speed")


def test_compare_draws_the_accuracy_complexity_chart_on_request():
    comparison = cnnlab.compare(["resnet18", "lenet5_modern"], batch=1, peak=False, chart=True)
    assert comparison.chart_png[:4] == b"\x89PNG" and comparison.chart_missing == ["lenet5_modern"]
    assert "no published ImageNet accuracy" in comparison.to_html()


def test_the_command_line_sorts_too(capsys):
    assert main(["compare", "resnet18", "vgg11", "--batch", "2", "--no-peak", "--sort=-params", "--format", "json"]) == 0
    rows = __import__("json").loads(capsys.readouterr().out)
    assert [row["model"] for row in rows] == ["vgg11", "resnet18"]
