"""Each weight initialized once while a model is built (models/init_once.py): the tensors end as the
builder's own code leaves them, the draws a family replaces are skipped."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.models import get_entry
from cnnlab.models.init_once import InitOnce


@pytest.mark.parametrize("name", ["lenet5_modern", "alexnet", "nin", "shufflenet_v1_g3_x0_5"])
def test_a_family_that_initializes_nothing_again_draws_the_same_numbers(name):
    """These keep PyTorch's own layer initialization: the same seed gives bitwise the same weights
    as their builder called without InitOnce."""
    torch.manual_seed(3)
    built = cnnlab.create_model(name).state_dict()
    torch.manual_seed(3)
    plain = get_entry(name).builder().state_dict()
    assert built.keys() == plain.keys()
    assert all(torch.equal(built[k], plain[k]) for k in built)


def test_vgg_ends_with_its_own_initialization_only():
    """torchvision's VGG initialization: kaiming_normal_(fan_out) convolutions, normal(0, 0.01)
    linear layers, zero biases; the Linear's own kaiming_uniform_ draw is never made."""
    drawn = []
    real = torch.Tensor.uniform_

    def counting_uniform(self, *args, **kwargs):
        drawn.append(tuple(self.shape))
        return real(self, *args, **kwargs)

    torch.Tensor.uniform_ = counting_uniform
    try:
        model = cnnlab.create_model("vgg11_bn", num_classes=10)
    finally:
        torch.Tensor.uniform_ = real
    assert drawn == []  # every default uniform_ draw was replaced before it was made
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            fan_out = module.out_channels * module.kernel_size[0] * module.kernel_size[1]
            assert module.weight.std().item() == pytest.approx(math.sqrt(2 / fan_out), rel=0.1)
            assert not module.bias.any()
        elif isinstance(module, nn.Linear):
            assert module.weight.std().item() == pytest.approx(0.01, rel=0.1) and not module.bias.any()
        elif isinstance(module, nn.BatchNorm2d):
            assert (module.weight == 1).all() and not module.bias.any()
            assert not module.running_mean.any() and (module.running_var == 1).all()


class UsesItsWeightsWhileBuilt(nn.Module):
    """A builder that reads, copies and partly overwrites weights while draws are held for them."""

    def __init__(self, replace: bool = False) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Linear(6, 5), nn.Linear(6, 5), nn.Conv2d(2, 4, 3)
        with torch.no_grad():
            self.b.weight.copy_(self.a.weight)  # a copy reads a's held draw
            self.c.weight[0].fill_(0.5)  # a partial fill of a view: the draw for the rest is made first
        self.register_buffer("a_sum_when_built", self.a.weight.sum())  # a read of a held draw
        self.d = nn.Parameter(torch.empty(50))
        nn.init.trunc_normal_(self.d, std=0.02)  # uniform_, then erfinv_, mul_, add_, clamp_ on it
        if replace:
            nn.init.zeros_(self.c.bias)
            nn.init.normal_(self.d, std=3.0)


def test_reads_copies_and_partial_fills_see_the_draws_in_the_order_asked():
    torch.manual_seed(0)
    with InitOnce():
        built = UsesItsWeightsWhileBuilt()
    torch.manual_seed(0)
    plain = UsesItsWeightsWhileBuilt()
    for key, value in plain.state_dict().items():
        assert torch.equal(built.state_dict()[key], value), key  # nothing replaced: the same stream
    assert torch.equal(built.b.weight, built.a.weight) and (built.c.weight[0] == 0.5).all()
    assert built.a_sum_when_built.item() == built.a.weight.sum().item()


def test_a_replaced_draw_is_never_made_and_the_replacement_stands():
    with InitOnce():
        built = UsesItsWeightsWhileBuilt(replace=True)
    assert not built.c.bias.any() and built.d.std().item() == pytest.approx(3.0, rel=0.4)
    assert built.c.weight[1:].std() > 0 and (built.c.weight[0] == 0.5).all()
    assert torch.equal(built.b.weight, built.a.weight)


def test_a_build_that_fails_leaves_nothing_held():
    with pytest.raises(ValueError), InitOnce() as mode:
        nn.Linear(3, 3)
        raise ValueError("the builder's own error")
    assert mode.held == {}
