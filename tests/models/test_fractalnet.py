"""FractalNet (Larsson et al. 2017): the expansion rule, drop-path, and the column test."""

from __future__ import annotations

import random

import pytest
import torch

import cnnlab
from cnnlab.models.fractalnet import FractalBlock, FractalNet, join


def authors_count(widths, columns: int, in_chans: int, classes: int) -> int:
    """The parameters of the net the authors' generator writes (gustavla/fractalnet, generation/
    fractalnet.py and globals.crox), counted from its description alone: in each block the C columns'
    first convs widen (3x3 weights and a bias each), the other 2^C - 1 - C keep the width; BatchNorm
    has no scale or shift; one fc layer."""
    total, previous = 0, in_chans
    for width in widths:
        total += columns * (9 * previous * width + width) + (2**columns - 1 - columns) * (9 * width * width + width)
        previous = width
    return total + previous * classes + classes


def test_counts_and_depth_are_the_authors_codes():
    model = cnnlab.create_model("fractalnet20")
    block = model.blocks[0]
    assert [len(column) for column in block.columns] == [1, 2, 4]  # columns 2^0 .. 2^(C-1) convs deep
    assert sum(len(b.columns[-1]) for b in model.blocks) == 20  # the deepest path: B x 2^(C-1)
    widths = (64, 128, 256, 512, 512)
    assert sum(p.numel() for p in model.parameters()) == authors_count(widths, 3, 3, 10) == 33_714_314
    deep = cnnlab.create_model("fractalnet40")
    assert sum(len(b.columns[-1]) for b in deep.blocks) == 40
    assert sum(p.numel() for p in deep.parameters()) == authors_count(widths, 4, 3, 10) == 76_084_554
    # Table 1 prints 38.6M and 22.9M: no width schedule of the five blocks reaches 22.9M with C = 4
    # as it is read (models/fractalnet.py): halving every width gives 19.0M, (64, 128, 256, 256, 256) 27.7M
    assert round(authors_count((32, 64, 128, 256, 256), 4, 3, 10) / 1e5) / 10 == 19.0
    assert round(authors_count((64, 128, 256, 256, 256), 4, 3, 10) / 1e5) / 10 == 27.7


def test_a_conv_of_a_column_is_the_authors_conv_dropout_batchnorm_relu():
    """globals.crox's `conv` macro: Convolution (with bias), Dropout, BatchNorm (no Scale), ReLU."""
    unit = cnnlab.create_model("fractalnet20", dropout=True).blocks[1].columns[2][3]
    conv, dropout, norm, relu = unit
    assert isinstance(conv, torch.nn.Conv2d) and conv.bias is not None
    assert isinstance(dropout, torch.nn.Dropout) and dropout.p == 0.1  # block 2 of Section 4's 0, .1, .2, .3, .4
    assert isinstance(norm, torch.nn.BatchNorm2d) and not norm.affine
    assert isinstance(relu, torch.nn.ReLU)


def test_a_block_pools_each_column_then_joins():
    torch.manual_seed(0)
    block = FractalBlock(3, 4, columns=2).eval()
    z = torch.randn(2, 3, 8, 8)
    shallow, deep = block.columns
    pool = torch.nn.functional.max_pool2d
    columns = [shallow[0](z), deep[1](deep[0](z))]
    assert torch.allclose(block(z), (pool(columns[0], 2) + pool(columns[1], 2)) / 2, atol=1e-6)
    assert not torch.allclose(block(z), pool((columns[0] + columns[1]) / 2, 2), atol=1e-3)  # not the same function


def test_a_three_column_block_is_figure_1():
    """f_3(z) = join(f_2(f_2(z)), conv(z)), the joins that fall at one depth merged into one mean."""
    torch.manual_seed(0)
    block = FractalBlock(3, 4, columns=3).eval()
    z = torch.randn(2, 3, 8, 8)
    shallow, middle, deep = block.columns
    a1 = deep[0](z)
    j2 = (middle[0](z) + deep[1](a1)) / 2  # depth 2: the middle column and the deepest join
    a3 = deep[2](j2)
    pool = block.pool  # depth 4, the block's end: each column pooled, then all three join
    expected = (pool(shallow[0](z)) + pool(middle[1](j2)) + pool(deep[3](a3))) / 3
    assert torch.allclose(block(z), expected, atol=1e-6)


def test_join_is_the_mean_and_local_drop_path_keeps_at_least_one():
    a, b, c = torch.zeros(2), torch.ones(2), torch.full((2,), 5.0)
    assert torch.equal(join([a, b, c]), torch.full((2,), 2.0))
    random.seed(0)
    for _ in range(20):
        out = join([a, b, c], drop=0.999)  # nearly everything dropped: one input survives, whole
        assert any(torch.equal(out, t) for t in (a, b, c))


def test_global_drop_path_runs_one_column_for_the_whole_net(monkeypatch):
    torch.manual_seed(0)
    model = cnnlab.create_model("fractalnet20", global_drop=1.0).train()
    x = torch.randn(4, 3, 32, 32)
    monkeypatch.setattr(random, "randrange", lambda n: 1)
    chosen = model(x)
    assert torch.allclose(chosen, model.forward_column(x, 1), atol=1e-5)
    assert not torch.allclose(chosen, model.forward_column(x, 2), atol=1e-3)


def test_the_deepest_column_alone_at_test_time():
    torch.manual_seed(0)
    model = cnnlab.create_model("fractalnet20").eval()
    x = torch.randn(2, 3, 32, 32)
    deepest = model.forward_column(x, model.deepest_column())
    assert deepest.shape == (2, 10) and not torch.allclose(deepest, model(x))
    assert model.column is None  # the full net again afterwards
    with pytest.raises(cnnlab.ModelConfigError, match="columns 0 to 2, not 3"):
        model.forward_column(x, 3)


def test_bad_configurations():
    with pytest.raises(cnnlab.ModelConfigError, match=r"at least one column \(C >= 1\), got C = 0"):
        FractalNet(columns=0)
    with pytest.raises(cnnlab.ModelConfigError, match="local_drop must be in"):
        cnnlab.create_model("fractalnet20", local_drop=1.5)


def test_summary_and_classifier():
    result = cnnlab.summary("fractalnet20")
    assert result.totals.params == 33_714_314 and result.totals.output_shape == (10,)
    # a join stacks its inputs batch-first, so the table counts them per image: two 64x32x32 maps
    stack, mean = (next(row for row in result.rows if row.name == f"blocks.0.{op}") for op in ("stack", "mean"))
    assert (stack.activations, stack.height_width, stack.channels) == (2 * 64 * 32 * 32, "32", "2x64")
    assert (mean.activations, mean.elementwise_ops) == (64 * 32 * 32, 2 * 64 * 32 * 32)  # one add or divide per input
    model = cnnlab.create_model("fractalnet20", num_classes=100)
    model.reset_classifier(7)
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 7)


def test_fractalnet34_is_resnet34s_first_and_last_layers_around_four_blocks():
    """Section 4.2: B = 4, C = 4, widths 64-128-256-512, ResNet-34's first and last layers."""
    model = cnnlab.create_model("fractalnet34")
    resnet = cnnlab.create_model("resnet34")
    assert model.stem.conv.weight.shape == resnet.conv1.weight.shape == (64, 3, 7, 7)
    assert model.stem.conv.stride == (2, 2) and model.fc.in_features == resnet.fc.in_features == 512
    assert [len(column) for column in model.blocks[0].columns] == [1, 2, 4, 8]
    assert 1 + sum(len(b.columns[-1]) for b in model.blocks) + 1 == 34
    # stem 9,408 + 128 (its BN's scale and shift, as ResNet-34's); blocks 553,920, 1,918,848, 7,671,552
    # and 30,678,528 (15 convs with biases each: the four columns' first convs widen, the other 11 keep
    # the width; BatchNorm without scale and shift); fc 513,000. The paper prints no count to compare
    # with (Table 2 gives errors only).
    assert sum(p.numel() for p in model.parameters()) == 41_345_384
    assert sum(p.numel() for p in model.blocks.parameters()) == authors_count((64, 128, 256, 512), 4, 64, 0)
    result = cnnlab.summary("fractalnet34")
    assert result.totals.macs == 25_089_314_816 and result.totals.output_shape == (1000,)
    assert [(info["module"], info["reduction"]) for info in model.feature_info] == [
        ("stem", 2), ("blocks.0", 4), ("blocks.1", 8), ("blocks.2", 16), ("blocks.3", 32)]
    assert model.forward_features(torch.randn(1, 3, 224, 224)).shape == (1, 512, 7, 7)  # ResNet-34's last map


def test_fractalnet34_options_and_bad_stem():
    from cnnlab.models import get_entry

    assert get_entry("fractalnet34").recipe["lr"] == 0.001  # Section 4.1: 0.001, batch 32, 70 epochs
    with pytest.raises(cnnlab.ModelConfigError, match="stem must be 'cifar'"):
        FractalNet(stem="tiny")
    with pytest.raises(cnnlab.ModelConfigError, match="five blocks"):
        FractalNet((64, 128), dropout=True)
    model = cnnlab.create_model("fractalnet34", num_classes=5, global_drop=1.0).eval()
    x = torch.randn(1, 3, 64, 64)
    assert model.forward_column(x, model.deepest_column()).shape == (1, 5)
