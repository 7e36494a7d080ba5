"""Where the architecture is torchvision's, its checkpoints load into ours by name and give the
same outputs."""

from __future__ import annotations

import pytest
import torch
import torchvision

import cnnlab

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
            module.weight.data.copy_(torch.rand(module.weight.shape, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(module.bias.shape, generator=generator) * 0.1)


@pytest.mark.parametrize("twin", TORCHVISION_TWINS, ids=lambda twin: f"{twin[0]}-{twin[3] if len(twin) > 3 else ''}")
def test_torchvision_state_dict_loads_strictly_and_outputs_match(twin):
    ours, theirs, size, our_options, their_options = (*twin, {}, {})[:5]
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
