"""Seed 000/003's worked exercises and cnnlab's agreement with real PyTorch."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import cnnlab
from cnnlab.analysis import formulas, summary
from cnnlab.analysis.memory import saved_for_backward_bytes
from cnnlab.models.googlenet import Inception, NaiveInception


def conv_macs(result) -> int:
    return sum(r.macs for r in result.rows if r.kind == "conv")


def test_naive_inception_is_854M_ops():
    """Seed 000: 28x28x256 input; 1x1 128, 3x3 192, 5x5 96 convs and a 3x3 pool: "Total: 854M ops"."""
    naive = summary(NaiveInception(256, 128, 192, 96), input_size=(256, 28, 28), batch=1)
    assert conv_macs(naive) == 28 * 28 * (128 * 256 + 192 * 9 * 256 + 96 * 25 * 256) == 854_196_224
    assert round(conv_macs(naive) / 1e6) == 854
    assert naive.totals.output_shape == (128 + 192 + 96 + 256, 28, 28)  # depth can only grow


def test_inception_with_bottlenecks_is_271M_ops_not_the_slides_358M():
    """Seed 000 adds 64-filter 1x1 bottlenecks and lists six terms; they sum to 271.4M, not the
    358M printed. 358M is that sum with the 3x3 conv's 86.7M counted twice."""
    reduced = summary(Inception(256, 128, 64, 192, 64, 96, 64), input_size=(256, 28, 28), batch=1)
    terms = [28 * 28 * 64 * 256, 28 * 28 * 64 * 256, 28 * 28 * 128 * 256,
             28 * 28 * 192 * 9 * 64, 28 * 28 * 96 * 25 * 64, 28 * 28 * 64 * 256]
    assert conv_macs(reduced) == sum(terms) == 271_351_808
    assert round((sum(terms) + 28 * 28 * 192 * 9 * 64) / 1e6) == 358
    naive = summary(NaiveInception(256, 128, 192, 96), input_size=(256, 28, 28), batch=1)
    assert conv_macs(reduced) < conv_macs(naive) / 3


def test_inception_3a_branches_seed_003():
    """5x5 branch: 240 MFLOPs without its 1x1 reduce, ~25M with; 3x3 branch: 350M -> 202M."""
    result = summary("googlenet", batch=1)
    reduce5, conv5 = result.row("inception3a.branch3.0.conv"), result.row("inception3a.branch3.1.conv")
    reduce3, conv3 = result.row("inception3a.branch2.0.conv"), result.row("inception3a.branch2.1.conv")
    assert 2 * 28 * 28 * 32 * 192 * 25 == 240_844_800  # the 5x5 on all 192 maps
    assert reduce5.flops + conv5.flops == 2 * 28 * 28 * 16 * 192 + 2 * 28 * 28 * 32 * 16 * 25 == 24_887_296
    assert 2 * 28 * 28 * 128 * 192 * 9 == 346_816_512
    assert reduce3.flops + conv3.flops == 2 * 28 * 28 * 96 * 192 + 2 * 28 * 28 * 128 * 96 * 9 == 202_309_632


@pytest.mark.parametrize("channels, width, height", [(16, 8, 8), (64, 28, 28), (256, 14, 14), (3, 224, 224)])
def test_one_5x5_versus_two_stacked_3x3(channels, width, height):
    table = formulas.stacked_vs_single_conv(channels, width, height)
    c = channels
    assert table["single_params"] == 25 * c * c + c
    assert table["stacked_params"] == 18 * c * c + 2 * c
    assert table["single_flops"] == 50 * c * c * width * height
    assert table["stacked_flops"] == 36 * c * c * width * height
    assert (table["single_relus"], table["stacked_relus"]) == (1, 2)
    assert table["stacked_activations"] == 2 * c * width * height
    # and cnnlab's walk of the two nets agrees
    single = summary(nn.Sequential(nn.Conv2d(c, c, 5, padding=2), nn.ReLU()), input_size=(c, height, width))
    stacked = summary(nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.ReLU(), nn.Conv2d(c, c, 3, padding=1), nn.ReLU()),
                      input_size=(c, height, width))
    assert (single.totals.params, single.totals.flops) == (table["single_params"], table["single_flops"])
    assert (stacked.totals.params, stacked.totals.flops) == (table["stacked_params"], table["stacked_flops"])
    assert single.rows[-1].rf == stacked.rows[-1].rf == 5


def test_three_stacked_3x3_convs_see_7x7():
    net = nn.Sequential(*[nn.Conv2d(8, 8, 3, padding=1) for _ in range(3)])
    result = summary(net, input_size=(8, 32, 32))
    assert [r.rf for r in result.rows[1:]] == [3, 5, 7]
    assert [r.jump for r in result.rows[1:]] == [1, 1, 1]


def test_receptive_field_with_strides_and_branches():
    # AlexNet: conv1 11 (jump 4), pool1 11 + 2*4 = 19 (jump 8), conv2 19 + 4*8 = 51, ...
    result = summary("alexnet")
    assert [(result.row(n).rf, result.row(n).jump) for n in ("conv1", "pool1", "conv2", "pool2", "conv5", "pool3")] == [
        (11, 4), (19, 8), (51, 8), (67, 16), (163, 16), (195, 32),
    ]
    # Where branches meet (inception's concat), the largest field: the 5x5 branch's.
    googlenet = summary("googlenet")
    before = googlenet.row("maxpool2").rf
    branch5 = googlenet.row("inception3a.branch3.1.conv").rf
    assert branch5 == before + 4 * 8
    assert googlenet.row("inception3a.cat").rf == branch5


class UserNet(nn.Module):
    """Not from the zoo: functional ReLU, a residual add, a concat and a view in forward."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(16 * 4 * 4, 5)

    def forward(self, x):
        y = torch.relu(self.conv1(x))
        y = torch.nn.functional.max_pool2d(y + self.conv2(y), 2)
        y = torch.cat([y, y * 2], 1)
        return self.fc(y.view(y.shape[0], -1))


def test_any_user_module_with_functional_ops():
    result = summary(UserNet(), input_size=(3, 8, 8), batch=4)
    kinds = [(r.name, r.kind) for r in result.rows]
    assert kinds == [
        ("input", "input"), ("conv1", "conv"), ("relu", "activation"), ("conv2", "conv"), ("add", "add"),
        ("max_pool2d", "pool"), ("mul", "add"), ("cat", "concat"), ("view", "view"), ("fc", "linear"),
    ]
    assert result.row("add").elementwise_ops == 4 * 8 * 8 * 8
    assert result.row("max_pool2d").flops == 4 * 8 * 4 * 4 * 4
    assert result.row("view").activation_memory == 0
    assert result.totals.params == sum(p.numel() for p in UserNet().parameters())
    assert result.totals.output_shape == (5,)


class StackedMean(torch.nn.Module):
    """Two convs averaged through torch.stack, with the stacked dimension first or after the batch."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        self.a, self.b = torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Conv2d(3, 8, 1)

    def forward(self, x):
        return torch.stack([self.a(x), self.b(x)], self.dim).mean(self.dim)


@pytest.mark.parametrize("batch", [1, 2, 4])
def test_a_stack_before_the_batch_is_still_counted_per_image(batch):
    for dim in (0, 1):
        result = summary(StackedMean(dim), input_size=(3, 8, 8), batch=batch)
        stack, mean = result.row("stack"), result.row("mean")
        assert stack.output_shape == (2, 8, 8, 8) and stack.activations == 2 * 8 * 8 * 8
        assert stack.activation_memory == 2 * batch * (2 * 8 * 8 * 8) * 4  # value and gradient, float32
        assert mean.output_shape == (8, 8, 8) and mean.elementwise_ops == batch * 2 * 8 * 8 * 8
        assert (stack.channels, stack.height_width) == ("2x8", "8")


def test_a_3d_convs_output_keeps_its_channel_count():
    row = summary(torch.nn.Conv3d(3, 8, 3, padding=1), input_size=(3, 4, 16, 16)).rows[-1]
    assert (row.output_shape, row.channels, row.height_width) == ((8, 4, 16, 16), 8, "16")


ALL_MODELS = cnnlab.list_models()


@pytest.mark.parametrize("name", ALL_MODELS)
def test_totals_agree_with_pytorch(name):
    """Params = sum(p.numel()); conv + linear FLOPs = FlopCounterMode's; output = a real forward's."""
    with torch.device("meta"):
        model = cnnlab.create_model(name).eval()
    result = summary(model, batch=2)
    assert result.totals.params == sum(p.numel() for p in model.parameters())
    x = torch.empty(2, *model.default_input_size, device="meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        output = model(x)
    counted = sum(r.flops for r in result.rows if r.kind in ("conv", "linear"))
    if name == "lenet5":
        # C3 connects 60 of 96 (input, output) map pairs: FlopCounterMode sees the dense conv.
        dense_minus_sparse = 2 * 2 * 10 * 10 * (96 - 60) * 25
        assert counter.get_total_flops() - counted == dense_minus_sparse
    else:
        assert counted == counter.get_total_flops()
    assert result.totals.output_shape == tuple(output.shape[1:])


def test_summary_cost_does_not_depend_on_the_batch():
    small, large = summary("resnet50", batch=1), summary("resnet50", batch=4096)
    assert large.totals.flops == 4096 * small.totals.flops
    assert large.totals.parameter_memory == small.totals.parameter_memory


def test_dtype_and_optimizer_change_memory_as_the_seeds_model_says():
    base = summary("alexnet", batch=128)
    half = summary("alexnet", batch=128, dtype="bfloat16", optimizer="adam")
    assert half.totals.activation_memory * 2 == base.totals.activation_memory
    assert half.totals.parameter_memory == 4 * 62_378_344 * 2
    assert summary("alexnet", optimizer="sgd").totals.parameter_memory == 2 * 62_378_344 * 4


def test_largest_batch_that_fits():
    result = summary("resnet50", batch=256, optimizer="adam")
    memory = 16 * 2**30
    largest = result.largest_batch(memory)
    per_image = result.totals.activation_memory / 256
    assert result.totals.parameter_memory + largest * per_image <= memory < result.totals.parameter_memory + (largest + 1) * per_image


def test_folding_keeps_totals_and_shows_blocks():
    full, folded = summary("resnet18", batch=8), summary("resnet18", batch=8, depth=2)
    assert sum(r.flops for r in folded.rows) == sum(r.flops for r in full.rows)
    assert sum(r.activation_memory for r in folded.rows) == sum(r.activation_memory for r in full.rows)
    assert sum(r.params for r in folded.rows) == full.totals.params
    block = folded.row("layer2.0")
    assert (block.kind, block.op, block.output_shape) == ("block", "BasicBlock", (128, 28, 28))
    assert len(folded.rows) < len(full.rows)


def test_bad_inputs_get_one_clear_message():
    # AlexNet is built for the input it is given (its fc6 sized to it), down to the smallest that runs
    with pytest.raises(cnnlab.InputShapeError, match="input 16x16 does not fit alexnet: .* the smallest input it accepts is 67x67"):
        summary("alexnet", input_size="3x16x16")
    with pytest.raises(cnnlab.InputShapeError, match="is not of the form CxHxW"):
        summary("alexnet", input_size="3by227")
    with pytest.raises(cnnlab.InputShapeError, match="built for 3 input channel"):
        summary("alexnet", input_size="1x227x227")
    with pytest.raises(cnnlab.CnnlabError, match="unknown optimizer 'rmsprop'"):
        summary("alexnet", optimizer="rmsprop")
    with pytest.raises(cnnlab.InputShapeError, match="pass input_size"):
        summary(nn.Conv2d(3, 3, 3))


def test_measured_saved_tensors_exactly_for_a_small_net():
    # A conv saves its input for the weight gradient; a (not in-place) ReLU saves its output.
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())
    batch = 4
    saved = saved_for_backward_bytes(net, (3, 10, 10), batch)
    assert saved == batch * (3 * 10 * 10 + 8 * 8 * 8) * 4
    # The seeds' model: the input once, then value + gradient of each layer output.
    modelled = summary(net, input_size=(3, 10, 10), batch=batch).totals.activation_memory
    assert modelled == batch * 4 * (3 * 10 * 10 + 2 * 8 * 8 * 8 + 2 * 8 * 8 * 8)


@pytest.mark.parametrize("name, batch, more_than_modelled", [
    ("lenet5_modern", 16, False), ("alexnet", 2, True), ("resnet18", 2, False),
])
def test_measured_against_the_seeds_model(name, batch, more_than_modelled):
    """AlexNet's LRN keeps several intermediates and max pooling keeps int64 indices, so autograd
    saves more than the seeds' model; LeNet and ResNet save less (in-place ReLUs, outputs shared
    between operations, no gradient buffers). docs/analysis.md has the figures."""
    with torch.device("meta"):
        model = cnnlab.create_model(name)
    measured = saved_for_backward_bytes(model, model.default_input_size, batch)
    modelled = summary(model, batch=batch).totals.activation_memory
    assert measured > 0
    assert (measured > modelled) == more_than_modelled
