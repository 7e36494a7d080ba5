"""Nothing silently uncounted: every weighted layer is counted with a formula (checked against
torch's FlopCounterMode or by hand) or named as not counted; several inputs and dict outputs work;
receptive fields of dilated functional convs and of whole-image rows are right."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import cnnlab


def counted(module: nn.Module, *inputs: torch.Tensor) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(*inputs)
    return counter.get_total_flops()


class Wrap(nn.Module):
    """One layer as a user's module, returning its first output."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, *inputs):
        output = self.layer(*inputs)
        return output[0] if isinstance(output, tuple) else output


def layer_flops(layer: nn.Module, shape: tuple[int, ...], batch: int = 2) -> int:
    result = cnnlab.summary(Wrap(layer), input_size=shape, batch=batch)
    assert not result.not_counted and not result.notes, (result.not_counted, result.notes)
    return sum(row.flops for row in result.rows)


@pytest.mark.parametrize("layer, shape", [
    (nn.ConvTranspose2d(16, 8, 3, stride=2), (16, 8, 8)),
    (nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1, groups=4), (16, 8, 8)),
    (nn.ConvTranspose1d(6, 4, 5), (6, 20)),
    (nn.Conv1d(16, 8, 3), (16, 20)),
    (nn.Conv3d(4, 8, 3, padding=1), (4, 6, 6, 6)),
    (nn.Conv2d(4, 8, 3, dilation=2), (4, 12, 12)),
    (nn.Linear(16, 4), (8, 16, 16)),
    (nn.GRU(10, 20, batch_first=True, bidirectional=True), (5, 10)),
    (nn.RNN(10, 20, num_layers=2, batch_first=True), (5, 10)),
])
def test_weighted_layers_equal_torch_flop_counter(layer, shape):
    assert layer_flops(layer, shape) == counted(layer, torch.randn(2, *shape))


def test_a_linear_layer_counts_every_leading_position():
    """nn.Linear(16, 4) on an (8, 16, 16) sample runs at 8 x 16 positions: 16,384 FLOPs, not 128."""
    assert layer_flops(nn.Linear(16, 4), (8, 16, 16), batch=1) == 8 * 16 * 2 * 16 * 4 == 16_384


def test_an_lstm_is_counted_by_its_four_gates():
    # torch's counter sees no matmul in the fused CPU LSTM (it reports 0), so by hand: per layer,
    # step and sample, 2 x 4 gates x hidden x (input + hidden); layer 2's input is layer 1's hidden.
    lstm = nn.LSTM(10, 20, num_layers=2, batch_first=True)
    steps, batch = 5, 3
    by_hand = batch * steps * 2 * 4 * 20 * (10 + 20) + batch * steps * 2 * 4 * 20 * (20 + 20)
    assert layer_flops(lstm, (steps, 10), batch=batch) == by_hand == 168_000


def test_attention_equals_torch_flop_counter():
    attention = nn.MultiheadAttention(16, 4, batch_first=True)
    x = torch.randn(2, 5, 16)
    result = cnnlab.summary(Wrap(attention), input_size=[(5, 16), (5, 16), (5, 16)], batch=2)
    assert sum(row.flops for row in result.rows) == counted(attention, x, x, x) == 23_680
    # sequence first, a query of another width than the keys
    cross = nn.MultiheadAttention(16, 4, kdim=8, vdim=8)

    class Cross(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attention = cross

        def forward(self, query, key):
            return self.attention(query, key, key)[0]

    result = cnnlab.summary(Cross(), input_size=[(5, 16), (5, 8)], batch=3)
    assert sum(row.flops for row in result.rows) == counted(Cross(), torch.randn(3, 5, 16), torch.randn(3, 5, 8)) == 25_920


def test_functional_matmul_softmax_and_interpolate():
    class Attention(nn.Module):
        def forward(self, q, k):
            weights = (q @ k.transpose(-1, -2)).softmax(-1)
            return F.interpolate(weights.unsqueeze(1), scale_factor=2, mode="nearest")

    result = cnnlab.summary(Attention(), input_size=[(6, 8), (6, 8)], batch=3)
    matmul = next(row for row in result.rows if row.kind == "matmul")
    assert matmul.flops == counted(Attention(), torch.randn(3, 6, 8), torch.randn(3, 6, 8)) == 3 * 6 * 6 * 8 * 2
    assert [row.elementwise_ops for row in result.rows if row.kind in ("activation", "resize")] == [3 * 36 * 3, 3 * 144]
    assert result.not_counted == []


def test_embedding_costs_no_flops_and_its_parameters_are_not_blamed_on_idle_modules():
    class Tokens(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding = nn.Embedding(100, 8)

        def forward(self, x):
            return self.embedding(x.long())

    result = cnnlab.summary(Tokens(), input_size=(5,))
    row = result.row("embedding")
    assert (row.kind, row.params, row.flops) == ("embedding", 800, 0) and not result.notes


def test_a_layer_without_a_formula_is_named_not_blamed_on_modules_that_did_not_run():
    class Scan(nn.Module):  # a running sum: no formula covers cumsum, so the layer's parameters are unaccounted for
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.ones(8))

        def forward(self, x):
            return torch.cumsum(x * self.weight, -1)

    class Custom(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scan = Scan()
            self.unused = nn.Linear(8, 8)

        def forward(self, x):
            return self.scan(x)

    result = cnnlab.summary(Custom(), input_size=(8,))
    assert result.not_counted == ["scan (Scan)"]
    assert result.notes == [
        "72 parameters belong to modules the forward pass did not run (unused; e.g. auxiliary heads in eval mode)",
        "8 parameters belong to modules that ran but that no formula covers (scan (Scan)): their work is in no column",
    ]
    assert json.loads(result.to_json())["not_counted"] == ["scan (Scan)"]
    assert "not counted (no formula; their work is in no column): scan (Scan)" in result.headline()


def test_a_functional_op_without_a_formula_is_listed():
    class Cumulative(nn.Module):
        def forward(self, x):
            return torch.cumsum(x, dim=1)

    assert cnnlab.summary(Cumulative(), input_size=(4, 4)).not_counted == ["cumsum (cumsum)"]


def test_dict_outputs_and_several_inputs():
    class TwoHeads(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3)
            self.up = nn.ConvTranspose2d(8, 4, 2, stride=2)
            self.fc = nn.Linear(10, 8)

        def forward(self, image, vector):
            maps = self.conv(image) + self.fc(vector)[:, :, None, None]
            return {"segmentation": self.up(maps), "maps": maps}

    result = cnnlab.summary(TwoHeads(), input_size=[(3, 10, 10), (10,)], batch=4)
    assert [row.name for row in result.rows[:2]] == ["image", "vector"]  # forward's argument names
    assert result.totals.output_shape == (4, 16, 16)
    assert result.row("up").flops == 4 * 8 * 8 * 8 * 2 * 2 * 4 * 2 == 16_384 * 4
    reference = counted(TwoHeads(), torch.randn(4, 3, 10, 10), torch.randn(4, 10))
    assert sum(row.flops for row in result.rows if row.kind in ("conv", "linear")) == reference
    assert result.totals.activation_memory >= 4 * (300 + 10) * 4  # both inputs, once each


def test_functional_dilated_conv_has_the_module_forms_receptive_field():
    class Dilated(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.randn(4, 3, 3, 3))

        def forward(self, x):
            return F.conv2d(x, self.weight, dilation=2)

    functional = cnnlab.summary(Dilated(), input_size=(3, 16, 16)).rows[-1]
    module = cnnlab.summary(nn.Sequential(nn.Conv2d(3, 4, 3, dilation=2)), input_size=(3, 16, 16)).rows[-1]
    assert functional.rf == module.rf == 5 and functional.output_shape == (4, 12, 12)


def test_global_pooling_and_fc_rows_see_the_whole_image():
    result = cnnlab.summary("resnet18")
    for name in ("avgpool", "flatten", "fc"):
        assert result.row(name).whole_image and result.row(name).rf_text == "whole"
    last_conv = result.row("layer4.1.conv2")
    assert not last_conv.whole_image and last_conv.rf_text == str(last_conv.rf)
    assert "whole" in result.to_markdown()
