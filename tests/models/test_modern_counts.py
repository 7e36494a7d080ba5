"""Exact trainable parameter counts of zoo II (1000 classes unless said), built on `meta`."""

from __future__ import annotations

import pytest

from cnnlab.models.googlenet import GOOGLENET_MODULES
from tests.conftest import meta_model, trainable_parameters


def conv(k: int, c_in: int, c_out: int, bias: bool = True) -> int:
    return (k * k * c_in + int(bias)) * c_out


def fc(c_in: int, c_out: int) -> int:
    return c_in * c_out + c_out


@pytest.mark.parametrize(
    "name, kwargs, expected",
    [
        ("googlenet_tv", {}, 6_624_904),
        ("googlenet_tv", {"aux_logits": True}, 13_004_888),
        ("inception_v3", {"aux_logits": True}, 27_161_264),
        ("inception_v3", {}, 23_834_568),
        ("resnet18", {}, 11_689_512),
        ("resnet34", {}, 21_797_672),
        ("resnet50", {}, 25_557_032),
        ("resnet101", {}, 44_549_160),
        ("resnet152", {}, 60_192_808),
        ("resnet50b", {}, 25_557_032),
        ("resnet20", {}, 269_722),
        ("resnet56", {}, 853_018),
        ("resnet110", {}, 1_727_962),
        ("resnet20", {"shortcut": "B"}, 272_474),
        ("densenet121", {}, 7_978_856),
        ("densenet161", {}, 28_681_000),
        ("densenet169", {}, 14_149_480),
        ("densenet201", {}, 20_013_928),
        ("densenet264", {}, 33_337_704),
        ("resnext50_32x4d", {}, 25_028_904),
        ("wide_resnet50_2", {}, 68_883_240),
        ("squeezenet1_0", {}, 1_248_424),
        ("squeezenet1_1", {}, 1_235_496),
        ("shufflenet_v2_x1_0", {}, 2_278_604),
    ],
)
def test_published_parameter_counts(name, kwargs, expected):
    assert trainable_parameters(meta_model(name, **kwargs)) == expected


def inception_params(in_channels: int, widths: tuple[int, ...], five: int = 5) -> int:
    ch1x1, red3, ch3, red5, ch5, proj = widths
    return (
        conv(1, in_channels, ch1x1) + conv(1, in_channels, red3) + conv(3, red3, ch3)
        + conv(1, in_channels, red5) + conv(five, red5, ch5) + conv(1, in_channels, proj)
    )


def test_googlenet_paper_count_by_hand():
    # Stem: 7x7/2 conv 64, 1x1 conv 64, 3x3 conv 192 (all with biases, no BN); nine inception
    # modules with Table 1's widths; fc 1024 -> 1000.
    total, channels = conv(7, 3, 64) + conv(1, 64, 64) + conv(3, 64, 192), 192
    for _, widths in GOOGLENET_MODULES:
        if widths:
            total += inception_params(channels, widths)
            channels = widths[0] + widths[2] + widths[4] + widths[5]
    total += fc(1024, 1000)
    assert total == 6_998_552
    assert trainable_parameters(meta_model("googlenet")) == total
    # Each auxiliary head: 1x1 conv 128, fc 2048 -> 1024, fc 1024 -> 1000.
    aux = lambda c: conv(1, c, 128) + fc(2048, 1024) + fc(1024, 1000)  # noqa: E731
    assert trainable_parameters(meta_model("googlenet", aux_logits=True)) == total + aux(512) + aux(528)


def test_plain_nets_are_resnets_without_projections():
    projections = sum(conv(1, c, 2 * c, bias=False) + 2 * 2 * c for c in (64, 128, 256))  # 1x1 conv + BN
    assert trainable_parameters(meta_model("plain18")) == 11_689_512 - projections
    assert trainable_parameters(meta_model("plain34")) == 21_797_672 - projections
    assert trainable_parameters(meta_model("plain56")) == 853_018  # option A shortcuts have no parameters


def test_resnet_c_and_d_stems_by_hand():
    # ResNet-C swaps the 7x7x3x64 conv for 3x3 convs 3->32, 32->32, 32->64 (+ two BNs of 32).
    stem_c = conv(3, 3, 32, False) + conv(3, 32, 32, False) + conv(3, 32, 64, False) + 2 * (2 * 32)
    stem_b = conv(7, 3, 64, False)
    assert trainable_parameters(meta_model("resnet50c")) == 25_557_032 - stem_b + stem_c
    # ResNet-D's average pools have no parameters.
    assert trainable_parameters(meta_model("resnet50d")) == trainable_parameters(meta_model("resnet50c"))


def test_densenet_bc_100_12_by_hand():
    growth, layers, channels = 12, 16, 24
    total = conv(3, 3, 24, bias=False)
    for block in range(3):
        for _ in range(layers):  # BN(c), 1x1 c -> 4k, BN(4k), 3x3 4k -> k
            total += 2 * channels + conv(1, channels, 4 * growth, False) + 2 * 4 * growth + conv(3, 4 * growth, growth, False)
            channels += growth
        if block < 2:  # transition: BN(c), 1x1 c -> c/2
            total += 2 * channels + conv(1, channels, channels // 2, False)
            channels //= 2
    total += 2 * channels + fc(channels, 10)
    assert total == 769_162
    assert trainable_parameters(meta_model("densenet_bc_100_12")) == total


def test_wrn28_10_by_hand():
    total, inplanes = conv(3, 3, 16, False), 16
    for planes in (160, 320, 640):
        for block in range(4):
            total += 2 * inplanes + conv(3, inplanes, planes, False) + 2 * planes + conv(3, planes, planes, False)
            if inplanes != planes:
                total += conv(1, inplanes, planes, False)
            inplanes = planes
    total += 2 * 640 + fc(640, 10)
    assert total == 36_479_194
    assert trainable_parameters(meta_model("wrn28_10")) == total
