"""NASNet-A (Zoph et al. 2018): the searched cells as data, Table 2's counts, timm's twin, ScheduledDropPath."""

from __future__ import annotations

import pytest
import timm
import torch
from torch import nn

import cnnlab
from cnnlab.layers import ScheduledDropPath, kaiming_init_, set_drop_path_progress
from cnnlab.layers.same_padding import AvgPool2dSame, Conv2dSame, same_padding
from cnnlab.models.nasnet import NORMAL_CELL, REDUCTION_CELL, Cell, NASNetA
from tests.models.test_faithfulness import randomize_batchnorm_statistics


def parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def batchnorm_statistics(model: nn.Module) -> int:
    return sum(2 * m.num_features for m in model.modules() if isinstance(m, nn.BatchNorm2d))


@pytest.mark.parametrize("name, params, macs, published", [
    ("nasnet_a_mobile", 5_289_978, 563_638_816, 5_326_716),  # Table 2: 5.3M, 564M mult-adds at 224
    ("nasnet_a_large", 88_753_150, 23_783_414_658, 88_949_818),  # Table 2: 88.9M, 23.8B mult-adds at 331
    ("nasnet_a_cifar", 3_328_234, 525_786_624, 3_365_290),  # Table 1: 3.3M (the trainable count, here)
])
def test_table_2_counts(name, params, macs, published):
    result = cnnlab.summary(name)
    assert result.totals.params == params and result.totals.macs == macs
    assert not result.not_counted
    # The published 5.3M / 88.9M count TensorFlow's variables: BatchNorm's moving mean and variance too
    # (Keras's NASNetLarge reports 88,949,818 and NASNetMobile 5,326,716, these sums).
    with torch.device("meta"):
        model = cnnlab.create_model(name)
    assert parameters(model) + batchnorm_statistics(model) == published


def test_large_loads_timms_nasnetalarge_and_gives_its_outputs():
    torch.manual_seed(0)
    reference = timm.create_model("nasnetalarge", pretrained=False)
    kaiming_init_(reference)
    randomize_batchnorm_statistics(reference)
    x = torch.randn(2, 3, 331, 331)
    for module in reference.modules():  # running statistics of real activations: logits that depend on the image
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = None
            module.reset_running_stats()
    with torch.no_grad():
        reference.train()(x)
    reference.eval()
    model = cnnlab.create_model("nasnet_a_large").eval()
    assert sorted(model.state_dict()) == sorted(reference.state_dict())  # the same 1,810 names
    model.load_state_dict(reference.state_dict(), strict=True)
    with torch.no_grad():
        expected = reference(x)
        assert torch.equal(model(x), expected)
        assert torch.equal(model.forward_features(x), reference.forward_features(x))
    assert (expected[0] - expected[1]).abs().max() > 0.1  # the two images give different logits


def test_the_cells_are_figure_4():
    # the Normal cell keeps the size and concatenates h_prev and its five blocks; the Reduction cell halves
    # the size and concatenates the four blocks no later block reads
    normal = Cell(NORMAL_CELL, ("h_prev", 0, 1, 2, 3, 4), 12, 8, 4, "conv").eval()
    h, h_prev = torch.randn(1, 12, 9, 9), torch.randn(1, 8, 9, 9)
    assert normal(h, h_prev).shape == (1, 24, 9, 9)
    with torch.no_grad():  # block 2: avg 3x3 of h, plus h_prev as it is
        block2 = normal.comb_iter_2_left(normal.conv_1x1(h)) + normal.conv_prev_1x1(h_prev)
        torch.testing.assert_close(normal(h, h_prev)[:, 12:16], block2)
    reduction = Cell(REDUCTION_CELL, (1, 2, 3, 4), 12, 8, 4, "conv").eval()
    assert reduction(h, h_prev).shape == (1, 16, 5, 5)
    assert not hasattr(reduction, "comb_iter_3_left")  # block 3 adds block 1 unchanged
    ops = [op for block in NORMAL_CELL + REDUCTION_CELL for _, op in block]
    assert set(ops) == {"sep3x3", "sep5x5", "sep7x7", "avg3x3", "max3x3", "identity"}


def test_the_stem_and_stages_reduce_as_figure_2():
    model = cnnlab.create_model("nasnet_a_mobile")
    assert [f["num_chs"] for f in model.feature_info] == [32, 44, 264, 528, 1056]
    assert [f["reduction"] for f in model.feature_info] == [2, 4, 8, 16, 32]
    assert model.cell_names == (["cell_stem_0", "cell_stem_1"] + [f"cell_{i}" for i in range(4)] + ["reduction_cell_0"]
                                + [f"cell_{i}" for i in range(4, 8)] + ["reduction_cell_1"] + [f"cell_{i}" for i in range(8, 12)])
    # the cell after a reduction reads the reduction's own h_prev, through the factorized reduction
    assert model.cell_4.prev_input == "factorized" and model.cell_5.prev_input == "conv"
    assert model.keeps_h_prev == {"reduction_cell_0", "reduction_cell_1"}
    cifar = cnnlab.create_model("nasnet_a_cifar")  # a 3x3 conv stem; after a reduction, h_prev is the cell before it
    assert cifar.cell_names[:7] == [f"cell_{i}" for i in range(6)] + ["reduction_cell_0"] and not cifar.keeps_h_prev
    assert cifar.cell_0.prev_input == "conv" and cifar.cell_6.prev_input == "factorized"
    assert [f["reduction"] for f in cifar.feature_info] == [1, 1, 2, 4] and cifar.num_features == 768


def test_same_padding_puts_the_odd_pixel_after():
    assert same_padding(42, 5, 2) == (1, 2)  # ceil(42/2) = 21 outputs need 3 pixels
    assert same_padding(83, 5, 2) == (2, 2) and same_padding(7, 1, 2) == (0, 0)
    conv = Conv2dSame(1, 1, 3, stride=2, bias=False)
    nn.init.ones_(conv.weight)
    out = conv(torch.ones(1, 1, 4, 4))
    assert out.shape == (1, 1, 2, 2) and out.flatten().tolist() == [9.0, 6.0, 6.0, 4.0]  # zeros only after
    pooled = AvgPool2dSame(3, 2)(torch.ones(1, 1, 4, 4))
    torch.testing.assert_close(pooled.flatten(), torch.tensor([1.0, 6 / 9, 6 / 9, 4 / 9]))  # padding counts, as in timm's port


def test_scheduled_drop_path_grows_with_training_and_depth():
    torch.manual_seed(0)
    drop = ScheduledDropPath(0.5).train()
    x = torch.ones(4000, 1, 1, 1)
    assert torch.equal(drop(x), x)  # the start of training: nothing dropped
    set_drop_path_progress(drop, 1.0)
    out = drop(x)
    assert set(out.unique().tolist()) == {0.0, 2.0}  # dropped, or kept and scaled by 1/keep
    assert abs((out == 0).float().mean().item() - 0.5) < 0.03
    set_drop_path_progress(drop, 0.5)
    assert abs((drop(x) == 0).float().mean().item() - 0.25) < 0.03
    assert torch.equal(drop.eval()(x), x)
    model = cnnlab.create_model("nasnet_a_mobile", drop_path_rate=0.3)
    rates = [getattr(model, name).drop_path.drop_prob for name in model.cell_names]
    assert rates[-1] == pytest.approx(0.3) and rates[0] == pytest.approx(0.3 / 16)
    assert rates == sorted(rates)
    assert not any(isinstance(m, ScheduledDropPath) for m in cnnlab.create_model("nasnet_a_mobile").modules())


def test_training_moves_the_drop_path_schedule(tmp_path):
    from cnnlab.train import TrainConfig, fit

    seen = []
    original = ScheduledDropPath.forward

    def spy(self, x):
        if self.training:
            seen.append(round(self.progress.item(), 3))
        return original(self, x)

    ScheduledDropPath.forward = spy
    try:
        fit(TrainConfig(model="nasnet_a_mobile", epochs=2, batch_size=16, subset=16, val_size=16, input_size=32,
                        model_kwargs={"drop_path_rate": 0.2}, out=str(tmp_path / "run"), amp="none"), log=lambda _: None)
    finally:
        ScheduledDropPath.forward = original
    assert sorted(set(seen)) == [0.0, 0.5]  # epoch 1 of 2 at progress 0, epoch 2 at 0.5


def test_bad_configurations_and_inputs():
    with pytest.raises(cnnlab.ModelConfigError, match="positive multiple of 24"):
        NASNetA(4, 1000, 32)
    with pytest.raises(cnnlab.ModelConfigError, match="at least one Normal cell per stage"):
        NASNetA(0, 1056, 32)
    with pytest.raises(cnnlab.ModelConfigError, match=r"drop_path_rate must be in \[0, 1\)"):
        cnnlab.create_model("nasnet_a_mobile", drop_path_rate=1.0)
    model = cnnlab.create_model("nasnet_a_mobile").eval()
    with pytest.raises(cnnlab.InputShapeError, match=r"input 2x2 is too small for nasnet_a_mobile: the smallest input it accepts is 3x3"):
        model(torch.randn(1, 3, 2, 2))
