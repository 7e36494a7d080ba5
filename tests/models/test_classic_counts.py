"""Exact trainable parameter counts of the classic zoo, against the papers and hand arithmetic."""

from __future__ import annotations

import pytest

from tests.conftest import meta_model, trainable_parameters


def conv(k: int, c_in: int, c_out: int, groups: int = 1) -> int:
    return (k * k * c_in // groups + 1) * c_out


def fc(c_in: int, c_out: int) -> int:
    return c_in * c_out + c_out


@pytest.mark.parametrize(
    "name, expected",
    [
        ("lenet5", 60_000),
        ("lenet5_modern", 61_706),
        ("alexnet", 62_378_344),
        ("alexnet_grouped", 60_965_224),
        ("alexnet_owt", 61_100_840),
        ("vgg11", 132_863_336),
        ("vgg11_lrn", 132_863_336),
        ("vgg13", 133_047_848),
        ("vgg16", 138_357_544),
        ("vgg19", 143_667_240),
        ("vgg11_bn", 132_868_840),
        ("vgg16_bn", 138_365_992),
    ],
)
def test_published_parameter_counts(name, expected):
    assert trainable_parameters(meta_model(name)) == expected


def test_lenet5_layer_counts_are_the_papers():
    """LeCun et al. 1998: C1 156, S2 12, C3 1,516, S4 32, C5 48,120, F6 10,164 trainable."""
    model = meta_model("lenet5")
    counts = {
        name: trainable_parameters(module)
        for name, module in [*model.features.named_children(), ("f6", model.pre_logits.f6)]
    }
    assert {k: v for k, v in counts.items() if v} == {
        "c1": 156, "s2": 12, "c3": 1_516, "s4": 32, "c5": 48_120, "f6": 10_164,
    }
    # The RBF output's 84 x 10 = 840 weights are fixed codes: a buffer, not a parameter.
    assert trainable_parameters(model.output) == 0
    assert model.output.codes.shape == (10, 84)


def test_lenet5_modern_is_seed_002s_lenet():
    # conv1 (5x5x1+1)x6, conv2 (5x5x6+1)x16, fc 400-120-84-10
    assert trainable_parameters(meta_model("lenet5_modern")) == (
        conv(5, 1, 6) + conv(5, 6, 16) + fc(400, 120) + fc(120, 84) + fc(84, 10)
    )


def test_alexnet_grouped_halves_conv2_conv4_conv5():
    single = conv(5, 96, 256) + conv(3, 384, 384) + conv(3, 384, 256)
    grouped = conv(5, 96, 256, groups=2) + conv(3, 384, 384, groups=2) + conv(3, 384, 256, groups=2)
    assert 62_378_344 - (single - grouped) == 60_965_224
    assert trainable_parameters(meta_model("alexnet_grouped")) == 62_378_344 - (single - grouped)


def test_zfnet_counts_by_hand():
    # Zeiler & Fergus Fig. 3: 7x7x3 conv1 (96), 5x5x96 conv2 (256), 3x3 convs 384-384-256,
    # pool3 leaves 6x6x256 = 9,216 inputs to fc6, then 4096-4096-1000.
    by_hand = (
        conv(7, 3, 96)           # 14,208
        + conv(5, 96, 256)       # 614,656
        + conv(3, 256, 384)      # 885,120
        + conv(3, 384, 384)      # 1,327,488
        + conv(3, 384, 256)      # 884,992
        + fc(6 * 6 * 256, 4096)  # 37,752,832
        + fc(4096, 4096)         # 16,781,312
        + fc(4096, 1000)         # 4,097,000
    )
    assert by_hand == 62_357_608
    assert trainable_parameters(meta_model("zfnet")) == by_hand


def test_zfnet_large_counts_by_hand():
    # Seed 000: conv3-5 with 512, 1024, 512 filters; fc6 then sees 6x6x512 = 18,432 inputs.
    by_hand = (
        conv(7, 3, 96) + conv(5, 96, 256)
        + conv(3, 256, 512)       # 1,180,160
        + conv(3, 512, 1024)      # 4,719,616
        + conv(3, 1024, 512)      # 4,719,104
        + fc(6 * 6 * 512, 4096)   # 75,501,568
        + fc(4096, 4096) + fc(4096, 1000)
    )
    assert by_hand == 107_627_624
    assert trainable_parameters(meta_model("zfnet_large")) == by_hand


def test_vgg16_c_counts_by_hand():
    # Configuration C = D with the third conv of stages 3, 4 and 5 a 1x1 conv.
    stages = conv(3, 3, 64) + conv(3, 64, 64) + conv(3, 64, 128) + conv(3, 128, 128)
    stages += conv(3, 128, 256) + conv(3, 256, 256) + conv(1, 256, 256)
    stages += conv(3, 256, 512) + conv(3, 512, 512) + conv(1, 512, 512)
    stages += conv(3, 512, 512) + conv(3, 512, 512) + conv(1, 512, 512)
    head = fc(7 * 7 * 512, 4096) + fc(4096, 4096) + fc(4096, 1000)
    assert stages + head == 133_638_952
    assert trainable_parameters(meta_model("vgg16_c")) == stages + head
    # D differs from C exactly by the 3x3 vs 1x1 kernels of those three convs.
    d_minus_c = (conv(3, 256, 256) - conv(1, 256, 256)) + 2 * (conv(3, 512, 512) - conv(1, 512, 512))
    assert trainable_parameters(meta_model("vgg16")) - trainable_parameters(meta_model("vgg16_c")) == d_minus_c


def test_vgg_bn_adds_gamma_and_beta_per_conv_channel():
    widths_a = [64, 128, 256, 256, 512, 512, 512, 512]
    assert trainable_parameters(meta_model("vgg11_bn")) - trainable_parameters(meta_model("vgg11")) == 2 * sum(widths_a)


def test_nin_counts_by_hand():
    def nin_block(k, c_in, c_out):
        return conv(k, c_in, c_out) + 2 * conv(1, c_out, c_out)

    by_hand = nin_block(11, 3, 96) + nin_block(5, 96, 256) + nin_block(3, 256, 384) + nin_block(3, 384, 1000)
    assert by_hand == 7_439_608
    assert trainable_parameters(meta_model("nin")) == by_hand
    # No fully-connected layer anywhere: every weight belongs to a convolution.
    import torch

    assert not any(isinstance(m, torch.nn.Linear) for m in meta_model("nin").modules())


def test_counts_follow_num_classes_and_in_chans():
    # Only the first conv and the last layer change.
    base = trainable_parameters(meta_model("alexnet"))
    small = trainable_parameters(meta_model("alexnet", num_classes=10, in_chans=1))
    assert base - small == (11 * 11 * 2) * 96 + fc(4096, 1000) - fc(4096, 10)
