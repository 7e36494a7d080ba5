"""Where the architecture is torchvision's, its checkpoints load into ours by name and give the
same outputs."""

from __future__ import annotations

import pytest
import torch
import torchvision

import cnnlab

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


@pytest.mark.parametrize("ours, theirs, size", TORCHVISION_TWINS)
def test_torchvision_state_dict_loads_strictly_and_outputs_match(ours, theirs, size):
    reference = getattr(torchvision.models, theirs)(weights=None).eval()
    randomize_batchnorm_statistics(reference)
    with torch.device("meta"):
        model = cnnlab.create_model(ours)
    # strict=True: every key and shape must match, none missing, none extra.
    model.load_state_dict(reference.state_dict(), strict=True, assign=True)
    model.eval()
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        expected, actual = reference(x), model(x)
    assert actual.shape == (1, 1000)
    assert (actual - expected).abs().max().item() < 1e-5
