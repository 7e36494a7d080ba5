"""BatchNorm folded into the layer before it: same outputs in eval mode, for every family."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.deploy import fold_batchnorm
from tests.models.test_faithfulness import randomize_batchnorm_statistics

# (model, input side, BatchNorms that cannot fold and why)
FAMILIES = [
    ("lenet5_modern", 28, {"batch_norm": True}),
    ("vgg11_bn", 32, {}),
    ("googlenet_tv", 64, {}),
    ("inception_v3", 80, {}),
    ("resnet18", 64, {}),
    ("resnet50d", 64, {}),
    ("resnext50_32x4d", 64, {}),
    ("resnet20", 32, {}),
    ("wrn28_10", 32, {}),
    ("densenet_bc_100_12", 32, {}),
    ("shufflenet_v2_x1_0", 64, {}),
    ("shufflenet_v1_g3_x1_0", 64, {}),
    ("fractalnet20", 32, {}),
    ("fractalnet34", 64, {}),
    ("nasnet_a_mobile", 64, {}),
]


@pytest.mark.parametrize("name, side, options", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_folded_model_matches_the_original(name, side, options):
    torch.manual_seed(0)
    model = cnnlab.create_model(name, **options).eval()
    randomize_batchnorm_statistics(model)
    x = torch.randn(2, model.in_chans, side, side)
    folded, report = fold_batchnorm(model, x[:1])
    with torch.no_grad():
        expected, actual = model(x), folded(x)
    # 1e-4 at unit scale; random-weight nets can have huge logits (Inception v3's reach 1e9), where
    # float32 itself resolves only ~1e-7 of the value, so the bound scales with the output.
    assert (actual - expected).abs().max().item() < 1e-4 * max(1.0, expected.abs().max().item())
    remaining = sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in folded.modules())
    assert remaining == len(report.kept)
    assert len(report.folded) + len(report.kept) == sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    if name.startswith(("densenet", "wrn", "nasnet")):
        # BN after a concatenation (DenseNet, NASNet's factorized reduction) or reading a residual sum
        # (pre-activation WRN): nothing to fold into.
        assert report.kept and all("conv" in into for _, into in report.folded)
        expected = "residual sum" if name.startswith("wrn") else "concatenation"
        assert all(expected in why for _, why in report.kept), report.summary()
    else:
        assert not report.kept, report.summary()


def test_folding_gives_the_conv_a_bias_and_leaves_the_original_alone():
    model = cnnlab.create_model("resnet18").eval()
    randomize_batchnorm_statistics(model)
    before = model.conv1.weight.clone()
    folded, report = fold_batchnorm(model, torch.randn(1, 3, 64, 64))
    assert ("bn1", "conv1") in report.folded
    assert folded.conv1.bias is not None and model.conv1.bias is None
    assert torch.equal(model.conv1.weight, before)
    assert isinstance(folded.bn1, nn.Identity)
    scale = model.bn1.weight / torch.sqrt(model.bn1.running_var + model.bn1.eps)
    torch.testing.assert_close(folded.conv1.weight, before * scale.view(-1, 1, 1, 1))
    torch.testing.assert_close(folded.conv1.bias, model.bn1.bias - model.bn1.running_mean * scale)


def test_densenet_report_names_the_concatenation():
    model = cnnlab.create_model("densenet_bc_100_12").eval()
    _, report = fold_batchnorm(model, torch.randn(1, 3, 32, 32))
    reasons = dict(report.kept)
    assert "concatenation" in reasons["features.denseblock1.denselayer2.norm1"]
    assert "features.denseblock1.denselayer1.norm2" in dict(report.folded)  # after its 1x1 conv: folds
    assert "kept" in report.summary()
