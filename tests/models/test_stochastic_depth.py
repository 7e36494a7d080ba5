"""Stochastic depth as Huang et al. drop it: one draw per block and mini-batch (a dropped block is its
shortcut for every image), survival probabilities by the linear rule, the branch scaled by its
survival probability at test time; timm's per-image mode kept as an option."""

from __future__ import annotations

import pytest
import torch

import cnnlab
from cnnlab.layers import DropPath
from cnnlab.layers.residual import BasicBlock


def test_the_papers_resnet110_drops_whole_blocks_by_the_linear_rule():
    model = cnnlab.create_model("resnet110", drop_path_rate=0.5)  # Huang et al.: p_L = 0.5 on CIFAR
    paths = [module for module in model.modules() if isinstance(module, DropPath)]
    assert len(paths) == 54 and all(path.mode == "batch" for path in paths)
    assert [path.drop_prob for path in paths] == pytest.approx([0.5 * l / 54 for l in range(1, 55)])
    assert sum(p.numel() for p in model.parameters()) == 1_727_962  # stochastic depth adds no parameter
    torch.manual_seed(0)
    x = torch.ones(3, 2, 1, 1)
    for index in (0, 26, 53):  # blocks 1, 27 and 54 of 54
        path = paths[index].train()
        draws = 4000
        dropped = 0
        for _ in range(draws):
            out = path(x)
            assert torch.equal(out, x) or torch.equal(out, torch.zeros_like(x))  # all images alike, unscaled
            dropped += int(out.sum() == 0)
        p = path.drop_prob
        assert abs(dropped / draws - p) < 4 * (p * (1 - p) / draws) ** 0.5 + 1e-9, (index, dropped / draws, p)


def test_a_dropped_block_is_its_shortcut_for_every_image(monkeypatch):
    torch.manual_seed(0)
    block = BasicBlock(4, 4, drop_path=0.5).train()
    x = torch.randn(5, 4, 6, 6)
    monkeypatch.setattr(torch, "rand", lambda *args, **kwargs: torch.tensor(0.99))  # above the survival 0.5
    assert torch.equal(block(x), torch.relu(x))  # ReLU(0 + x) for each of the five images
    monkeypatch.setattr(torch, "rand", lambda *args, **kwargs: torch.tensor(0.01))
    kept = block(x)
    block.drop_path.drop_prob = 0.0
    assert torch.allclose(kept, block(x))  # kept: the branch as it is, not scaled while training


def test_at_test_time_the_branch_is_scaled_by_its_survival_probability():
    x = torch.randn(2, 3, 4, 4)
    assert torch.allclose(DropPath(0.3, "batch").eval()(x), 0.7 * x)  # Eq. 5: ReLU(p f(x) + id(x))
    assert torch.equal(DropPath(0.3, "sample").eval()(x), x)  # timm's: scaled by 1/p while training instead


def test_per_image_dropping_is_an_option():
    torch.manual_seed(0)
    model = cnnlab.create_model("resnet20", drop_path_rate=0.9, drop_path_mode="sample")
    path = next(module for module in model.modules() if isinstance(module, DropPath))
    assert path.mode == "sample"
    out = path.train()(torch.ones(64, 1, 1, 1))
    assert 0 < int((out == 0).sum()) < 64  # some images dropped, others kept
    with pytest.raises(cnnlab.ModelConfigError, match=r"drop_path_mode must be 'batch' .* or 'sample'"):
        cnnlab.create_model("resnet20", drop_path_rate=0.1, drop_path_mode="layer")
    with pytest.raises(cnnlab.ModelConfigError, match="drop_path_mode must be"):
        cnnlab.create_model("resnet50", drop_path_mode="row")
    with pytest.raises(cnnlab.ModelConfigError, match="drop_path_mode must be"):
        cnnlab.create_model("wrn28_10", drop_path_mode="x")
