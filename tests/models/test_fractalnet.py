"""FractalNet (Larsson et al. 2017): the expansion rule, drop-path, and the column test."""

from __future__ import annotations

import random

import pytest
import torch

import cnnlab
from cnnlab.models.fractalnet import FractalBlock, FractalNet, join


def test_counts_and_depth():
    model = cnnlab.create_model("fractalnet20")
    # the architecture Section 4 describes; pytorchcv's fractalnet_cifar10 has this count too. Table 1
    # prints 38.6M, which the text does not account for (models/fractalnet.py says more).
    assert sum(p.numel() for p in model.parameters()) == 33_724_618
    block = model.blocks[0]
    assert [len(column) for column in block.columns] == [1, 2, 4]  # columns 2^0 .. 2^(C-1) convs deep
    assert sum(len(b.columns[-1]) for b in model.blocks) == 20  # the deepest path: B x 2^(C-1)
    deep = cnnlab.create_model("fractalnet40")
    assert sum(len(b.columns[-1]) for b in deep.blocks) == 40
    assert sum(p.numel() for p in deep.parameters()) == 76_106_634


def test_a_three_column_block_is_figure_1():
    """f_3(z) = join(f_2(f_2(z)), conv(z)), the joins that fall at one depth merged into one mean."""
    torch.manual_seed(0)
    block = FractalBlock(3, 4, columns=3).eval()
    z = torch.randn(2, 3, 8, 8)
    shallow, middle, deep = block.columns
    a1 = deep[0](z)
    j2 = (middle[0](z) + deep[1](a1)) / 2  # depth 2: the middle column and the deepest join
    a3 = deep[2](j2)
    expected = (shallow[0](z) + middle[1](j2) + deep[3](a3)) / 3  # depth 4: all three join
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
    assert result.totals.params == 33_724_618 and result.totals.output_shape == (10,)
    model = cnnlab.create_model("fractalnet20", num_classes=100)
    model.reset_classifier(7)
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 7)
