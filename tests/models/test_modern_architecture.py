"""Zoo II behaves as the papers describe: multiply-adds, auxiliary heads, shortcuts, stochastic
depth, zero-init, memory-efficient DenseNet."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import cnnlab
from cnnlab.layers import DropPath
from cnnlab.models.googlenet import GoogLeNetOutputs, Inception
from cnnlab.models.inception import InceptionOutputs


def multiply_adds(name: str, size: int = 224, **kwargs) -> int:
    with torch.device("meta"):
        model = cnnlab.create_model(name, **kwargs).eval()
        with FlopCounterMode(display=False) as counter:
            model(torch.empty(1, 3, size, size))
    return counter.get_total_flops() // 2


# He et al. 2015, Table 1, "FLOPs" row (multiply-adds per 224x224 image). The printed figures
# truncate some values (3.66 -> 3.6, 3.86 -> 3.8) and round others (7.57 -> 7.6, 11.28 -> 11.3),
# so no one rounding rule reproduces the row; each agrees with the exact count to within one
# unit of its last printed digit.
PAPER_MULTIPLY_ADDS = {"resnet18": 1.8e9, "resnet34": 3.6e9, "resnet50": 3.8e9, "resnet101": 7.6e9, "resnet152": 11.3e9}
TABLE_1_BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}


def table_1_multiply_adds(depth: int) -> int:
    """Multiply-adds of a paper ResNet, from Table 1 alone: conv and fc layers, v1 strides."""
    def conv(size: int, k: int, c_in: int, c_out: int) -> int:
        return size * size * k * k * c_in * c_out

    total = conv(112, 7, 3, 64)  # conv1, 7x7/2
    inplanes = 64
    for stage, (width, blocks) in enumerate(zip((64, 128, 256, 512), TABLE_1_BLOCKS[depth])):
        size = 56 >> stage  # output resolution of the stage: 56, 28, 14, 7
        for block in range(blocks):
            if depth < 50:  # two 3x3 convs; the first of a stage may stride
                total += conv(size, 3, inplanes, width) + conv(size, 3, width, width)
                out = width
            else:  # 1x1 (strided in v1), 3x3, 1x1 x4
                total += conv(size, 1, inplanes, width) + conv(size, 3, width, width) + conv(size, 1, width, 4 * width)
                out = 4 * width
            if block == 0 and inplanes != out:  # option-B projection shortcut
                total += conv(size, 1, inplanes, out)
            inplanes = out
    return total + inplanes * 1000  # fc


@pytest.mark.parametrize("name", PAPER_MULTIPLY_ADDS)
def test_paper_resnets_multiply_adds_match_table_1(name):
    exact = multiply_adds(name)
    assert exact == table_1_multiply_adds(int(name[6:]))
    assert abs(exact - PAPER_MULTIPLY_ADDS[name]) < 0.1e9


def test_resnet18_multiply_adds_worked_by_hand():
    conv1 = 112**2 * 7 * 7 * 3 * 64                                  # 118,013,952
    layer1 = 4 * 56**2 * 9 * 64 * 64                                 # 462,422,016
    later_stage = 57_802_752 + 3 * 115_605_504 + 6_422_528           # first 3x3, three 3x3, projection
    assert conv1 + layer1 + 3 * later_stage + 512 * 1000 == 1_814_073_344
    assert multiply_adds("resnet18") == 1_814_073_344


def test_plain34_has_the_papers_3_6_billion_multiply_adds():
    assert round(multiply_adds("plain34") / 1e9, 1) == 3.6


def test_resnet50b_costs_more_than_resnet50_by_the_moved_stride():
    # In the first block of stages 2-4, ResNet-B runs the 1x1 reduce conv at the input
    # resolution instead of the strided one: 3/4 of its positions are new work, e.g. stage 2:
    # (56^2 - 28^2) x 256 x 128 multiply-adds; each stage adds the same 77,070,336.
    extra = (56**2 - 28**2) * 256 * 128 + (28**2 - 14**2) * 512 * 256 + (14**2 - 7**2) * 1024 * 512
    assert extra == 3 * 77_070_336
    assert multiply_adds("resnet50b") - multiply_adds("resnet50") == extra


def test_googlenet_inception_is_one_module_with_six_widths():
    block = Inception(192, 64, 96, 128, 16, 32, 32)
    assert block.widths == (64, 96, 128, 16, 32, 32)
    assert block.out_channels == 256
    assert block.branch3[1].conv.kernel_size == (5, 5)  # the paper's 5x5 branch
    assert block(torch.randn(1, 192, 28, 28)).shape == (1, 256, 28, 28)
    model = cnnlab.create_model("googlenet")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert sum(isinstance(m, torch.nn.LocalResponseNorm) for m in model.modules()) == 2
    tv = cnnlab.create_model("googlenet_tv")
    assert tv.inception3a.branch3[1].conv.kernel_size == (3, 3)


@pytest.mark.parametrize("name, size, outputs_type, count", [
    ("googlenet", 224, GoogLeNetOutputs, 3),
    ("googlenet_tv", 224, GoogLeNetOutputs, 3),
    ("inception_v3", 299, InceptionOutputs, 2),
])
def test_auxiliary_heads_only_when_asked_for_in_training(name, size, outputs_type, count):
    x = torch.randn(2, 3, size, size)
    model = cnnlab.create_model(name, aux_logits=True, num_classes=7).train()
    outputs = model(x)
    assert isinstance(outputs, outputs_type) and len(outputs) == count
    assert all(o.shape == (2, 7) for o in outputs)
    sum(o.sum() for o in outputs).backward()
    model.eval()
    with torch.no_grad():
        assert model(x).shape == (2, 7)
    plain = cnnlab.create_model(name, aux_logits=False).train()
    assert plain(x[:1].repeat(2, 1, 1, 1)).shape == (2, 1000)


def test_option_a_shortcut_subsamples_and_zero_pads():
    model = cnnlab.create_model("resnet20")
    shortcut = model.layer2[0].downsample
    assert sum(p.numel() for p in shortcut.parameters()) == 0
    x = torch.randn(2, 16, 32, 32)
    out = shortcut(x)
    assert out.shape == (2, 32, 16, 16)
    torch.testing.assert_close(out[:, 8:24], x[:, :, ::2, ::2])
    assert out[:, :8].abs().sum() == 0 and out[:, 24:].abs().sum() == 0


def test_plain_nets_have_no_shortcuts():
    for name in ("plain18", "plain20"):
        model = cnnlab.create_model(name)
        assert all(getattr(m, "downsample", None) is None for m in model.modules())
        assert all(not getattr(m, "residual", True) for m in model.modules() if hasattr(m, "residual"))


RESIDUAL = ["resnet18", "resnet50", "resnet50d", "resnext50_32x4d", "wide_resnet50_2", "resnet20", "wrn28_10"]


@pytest.mark.parametrize("name", RESIDUAL)
def test_drop_path_rate_decays_linearly_over_blocks(name):
    with torch.device("meta"):
        model = cnnlab.create_model(name, drop_path_rate=0.2)
    rates = [m.drop_prob for m in model.modules() if isinstance(m, DropPath)]
    blocks = len(rates)
    assert blocks > 0
    assert rates == pytest.approx([0.2 * (i + 1) / blocks for i in range(blocks)])


def test_per_sample_drop_path_drops_whole_samples_in_training_only():
    drop = DropPath(0.5, mode="sample")  # timm's; the default is Huang et al.'s per mini-batch (test_stochastic_depth)
    x = torch.ones(1000, 3, 2, 2)
    drop.train()
    out = drop(x)
    per_sample = out.flatten(1)
    assert set(per_sample.unique().tolist()) == {0.0, 2.0}  # dropped, or kept and scaled by 1/(1-p)
    assert (per_sample == 0).all(1).float().mean().item() == pytest.approx(0.5, abs=0.06)
    drop.eval()
    assert torch.equal(drop(x), x)


def test_drop_path_is_refused_on_plain_nets():
    with pytest.raises(cnnlab.ModelConfigError, match="needs residual blocks"):
        cnnlab.models.resnet.ResNet("basic", (2, 2, 2, 2), residual=False, drop_path_rate=0.1)


@pytest.mark.parametrize("name", [
    "resnet18", "resnet50", "resnext50_32x4d", "wide_resnet50_2", "resnet20", "wrn28_10", "densenet121", "densenet_bc_100_12",
])
def test_zero_init_residual_makes_each_block_start_as_identity(name):
    torch.manual_seed(0)
    model = cnnlab.create_model(name, zero_init_residual=True, num_classes=3).eval()
    # Every residual branch (or dense layer's new maps) ends in an all-zero weight.
    last_layers = []
    for module in model.modules():
        if hasattr(module, "last_bn"):
            last_layers.append(module.last_bn().weight)
        elif type(module).__name__ in ("PreActBlock", "DenseLayer"):
            last_layers.append(module.conv2.weight)
    assert last_layers and all(w.abs().sum() == 0 for w in last_layers)


def test_memory_efficient_densenet_gives_the_same_outputs_and_gradients():
    torch.manual_seed(0)
    plain = cnnlab.create_model("densenet_bc_100_12").train()
    efficient = cnnlab.create_model("densenet_bc_100_12", memory_efficient=True).train()
    efficient.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 32, 32)
    out_plain, out_efficient = plain(x), efficient(x)
    torch.testing.assert_close(out_efficient, out_plain)
    out_plain.sum().backward()
    out_efficient.sum().backward()
    for (name, a), b in zip(plain.named_parameters(), efficient.parameters()):
        torch.testing.assert_close(b.grad, a.grad, msg=name)


def test_unknown_shortcut_option_is_explained():
    with pytest.raises(cnnlab.ModelConfigError, match="shortcut must be 'A'"):
        cnnlab.create_model("resnet20", shortcut="C")
