"""The proof of faithfulness, in one place:

- every zoo model's conv and linear FLOPs equal torch's own FlopCounterMode (one documented
  exception: LeNet-5's sparse C3 table and RBF output, which torch counts as a dense conv and not
  at all);
- where the architecture is torchvision's, its checkpoints load into ours by name and give the
  same outputs;
- the papers' layer orders where a reference implementation differs (ZFNet's pool before norm,
  GoogLeNet's 5x5/3 auxiliary pool).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch.utils.flop_counter import FlopCounterMode

import cnnlab
from cnnlab.models.init_once import InitOnce

WEIGHTED_KINDS = ("conv", "linear", "matmul", "attention", "recurrent", "rbf")


def torch_flops(model: torch.nn.Module, input_size: tuple[int, ...]) -> int:
    """FLOPs torch's FlopCounterMode counts for one image (on the meta device: shapes only)."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.empty(1, *input_size, device="meta"))
    return counter.get_total_flops()


@pytest.mark.parametrize("name", cnnlab.list_models())
def test_conv_and_linear_flops_equal_torch_flop_counter(name):
    with torch.device("meta"):
        model = cnnlab.create_model(name).eval()
    ours = sum(row.flops for row in cnnlab.summary(name).rows if row.kind in WEIGHTED_KINDS)
    theirs = torch_flops(model, model.default_input_size)
    if name == "lenet5":
        # C3 connects each of its 16 maps to 3-6 of S2's 6 maps (60 connections): torch runs it as
        # a dense conv over masked weights (96 connections); the RBF's 3 x 84 x 10 is no matmul.
        dense_minus_connected = (96 - 60) * 5 * 5 * 10 * 10 * 2
        assert theirs == ours + dense_minus_connected - 3 * 84 * 10
    else:
        assert ours == theirs


def test_zfnet_pools_before_it_normalizes_as_in_figure_3():
    model = cnnlab.create_model("zfnet")
    assert list(model.features._modules)[:8] == ["conv1", "relu1", "pool1", "norm1", "conv2", "relu2", "pool2", "norm2"]
    norm1 = cnnlab.summary("zfnet", batch=128).row("norm1")  # at pool1's 55x55, not conv1's 110x110
    assert norm1.output_shape == (96, 55, 55)
    assert round(norm1.activation_memory / 2**20, 1) == 283.6 and round(norm1.elementwise_ops / 1e6, 1) == 371.7
    # AlexNet normalizes first (Krizhevsky et al., Sec. 3.5)
    assert list(cnnlab.create_model("alexnet").features._modules)[:4] == ["conv1", "relu1", "norm1", "pool1"]


def test_googlenet_aux_heads_pool_5x5_stride_3_as_the_paper_and_torchvision_adaptively():
    x = torch.randn(2, 512, 14, 14)
    paper = cnnlab.create_model("googlenet", aux_logits=True).aux1.pool
    assert torch.equal(paper(x), F.avg_pool2d(x, 5, stride=3))  # windows at 0/3/6/9, 5 wide
    torchvision_style = cnnlab.create_model("googlenet_tv", aux_logits=True).aux1.pool
    assert torch.equal(torchvision_style(x), F.adaptive_avg_pool2d(x, 4))  # 4 wide at 0/3/7/10
    assert (paper(x) - torchvision_style(x)).abs().max() > 0.05

# (ours, torchvision's, input side, our builder's options, torchvision's builder's options)
TORCHVISION_TWINS = [
    ("alexnet_owt", "alexnet", 224),
    ("vgg11", "vgg11", 64),
    ("vgg13", "vgg13", 64),
    ("vgg16", "vgg16", 64),
    ("vgg19", "vgg19", 64),
    ("vgg11_bn", "vgg11_bn", 64),
    ("vgg13_bn", "vgg13_bn", 64),
    ("vgg16_bn", "vgg16_bn", 64),
    ("vgg19_bn", "vgg19_bn", 64),
    ("resnet18", "resnet18", 64),
    ("resnet34", "resnet34", 64),
    ("resnet50b", "resnet50", 64),
    ("resnext50_32x4d", "resnext50_32x4d", 64),
    ("wide_resnet50_2", "wide_resnet50_2", 64),
    ("densenet121", "densenet121", 64),
    ("densenet161", "densenet161", 64),
    ("densenet169", "densenet169", 64),
    ("densenet201", "densenet201", 64),
    ("squeezenet1_0", "squeezenet1_0", 64),
    ("squeezenet1_1", "squeezenet1_1", 64),
    ("shufflenet_v2_x1_0", "shufflenet_v2_x1_0", 64),
    ("googlenet_tv", "googlenet", 96, {"aux_logits": True}, {"aux_logits": True, "init_weights": True}),
    ("googlenet_tv", "googlenet", 96, {}, {"aux_logits": False, "init_weights": True}),
    ("inception_v3", "inception_v3", 96, {"aux_logits": True}, {"aux_logits": True, "init_weights": False}),
    ("inception_v3", "inception_v3", 96, {}, {"aux_logits": False, "init_weights": False}),
    # torchvision's deeper ResNets are v1.5: the paper nets with the stride moved to the 3x3.
    ("resnet101", "resnet101", 64, {"stride_in_3x3": True}, {}),
]


def randomize_batchnorm_statistics(model: torch.nn.Module) -> None:
    """Non-trivial running statistics, so an eval-mode comparison exercises them."""
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) + 0.5)
            if module.affine:  # FractalNet's BatchNorm has no scale or shift (the authors' Caffe units)
                module.weight.data.copy_(torch.rand(module.weight.shape, generator=generator) + 0.5)
                module.bias.data.copy_(torch.randn(module.bias.shape, generator=generator) * 0.1)


@pytest.mark.parametrize("twin", TORCHVISION_TWINS, ids=lambda twin: f"{twin[0]}-{twin[3] if len(twin) > 3 else ''}")
def test_torchvision_state_dict_loads_strictly_and_outputs_match(twin):
    ours, theirs, size, our_options, their_options = (*twin, {}, {})[:5]
    with InitOnce():  # torchvision's own initialization, without the draws it replaces (as create_model builds)
        reference = getattr(torchvision.models, theirs)(weights=None, **their_options).eval()
    randomize_batchnorm_statistics(reference)
    with torch.device("meta"):
        model = cnnlab.create_model(ours, **our_options)
    # strict=True: every key and shape must match, none missing, none extra.
    model.load_state_dict(reference.state_dict(), strict=True, assign=True)
    model.eval()
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        expected, actual = reference(x), model(x)
    assert actual.shape == (1, 1000)
    assert (actual - expected).abs().max().item() < 1e-5
