"""The classic nets are built as the papers and seeds describe them."""

from __future__ import annotations

import pytest
import torch

import cnnlab
from cnnlab.layers import ScaledTanh, krizhevsky_lrn
from cnnlab.models.lenet import C3_CONNECTIONS


def output_shapes(model: torch.nn.Module, x: torch.Tensor, container: torch.nn.Module) -> dict[str, tuple]:
    shapes = {}
    hooks = [
        child.register_forward_hook(lambda _m, _i, out, name=name: shapes.__setitem__(name, tuple(out.shape[1:])))
        for name, child in container.named_children()
    ]
    with torch.no_grad():
        model(x)
    for hook in hooks:
        hook.remove()
    return shapes


def test_alexnet_shapes_match_seed_003s_table():
    """227x227x3 in; 55x55x96 after conv1, 27x27x96 after pool1, ..., 6x6x256 after pool3."""
    with torch.device("meta"):
        model = cnnlab.create_model("alexnet")
        shapes = output_shapes(model, torch.empty(1, 3, 227, 227), model.features)
    assert shapes["conv1"] == (96, 55, 55)
    assert shapes["pool1"] == (96, 27, 27)
    assert shapes["conv2"] == (256, 27, 27)
    assert shapes["pool2"] == (256, 13, 13)
    assert shapes["conv3"] == (384, 13, 13)
    assert shapes["conv4"] == (384, 13, 13)
    assert shapes["conv5"] == (256, 13, 13)
    assert shapes["pool3"] == (256, 6, 6)
    assert [(m.kernel_size, m.stride) for m in model.features if isinstance(m, torch.nn.MaxPool2d)] == [(3, 2)] * 3
    assert [m.p for m in model.classifier if isinstance(m, torch.nn.Dropout)] == [0.5, 0.5]


def test_zfnet_shapes_match_its_figure_3():
    with torch.device("meta"):
        model = cnnlab.create_model("zfnet")
        shapes = output_shapes(model, torch.empty(1, 3, 224, 224), model.features)
    assert shapes["conv1"] == (96, 110, 110)
    assert shapes["pool1"] == (96, 55, 55)
    assert shapes["conv2"] == (256, 26, 26)
    assert shapes["pool2"] == (256, 13, 13)
    assert shapes["pool3"] == (256, 6, 6)


def test_lenet5_connection_table_is_table_i():
    assert len(C3_CONNECTIONS) == 16
    assert [len(c) for c in C3_CONNECTIONS] == [3] * 6 + [4] * 9 + [6]
    assert sum(len(c) for c in C3_CONNECTIONS) == 60
    for m in range(6):  # contiguous (wrapping) triples and quadruples
        assert set(C3_CONNECTIONS[m]) == {(m + i) % 6 for i in range(3)}
        assert set(C3_CONNECTIONS[6 + m]) == {(m + i) % 6 for i in range(4)}
    assert [set(c) for c in C3_CONNECTIONS[12:15]] == [{0, 1, 3, 4}, {1, 2, 4, 5}, {0, 2, 3, 5}]


def test_lenet5_c3_sees_only_its_connected_maps():
    model = cnnlab.create_model("lenet5")
    c3 = model.features.c3
    dense = c3.dense_weight()
    for out_map, inputs in enumerate(C3_CONNECTIONS):
        for in_map in range(6):
            kernel_is_zero = bool((dense[out_map, in_map] == 0).all())
            assert kernel_is_zero == (in_map not in inputs)


def test_lenet5_output_is_euclidean_rbf_over_fixed_codes():
    model = cnnlab.create_model("lenet5").eval()
    codes = model.output.codes
    assert set(codes.unique().tolist()) == {-1.0, 1.0}
    assert len({tuple(c.tolist()) for c in codes}) == 10  # ten distinct digit bitmaps
    f6 = torch.randn(3, 84)
    expected = -((f6[:, None, :] - codes[None]) ** 2).sum(-1)
    torch.testing.assert_close(model.output(f6), expected)
    # A code itself is nearest to its own class.
    assert model.output(codes).argmax(1).tolist() == list(range(10))


def test_scaled_tanh_is_lecuns():
    f = ScaledTanh()
    assert f(torch.tensor(1.0)).item() == pytest.approx(1.0, abs=1e-4)
    assert f(torch.tensor(0.0)).item() == 0.0
    assert f(torch.tensor(50.0)).item() == pytest.approx(1.7159)


def test_krizhevsky_lrn_matches_the_papers_formula():
    """b = a / (k + alpha * sum over n=5 neighbouring maps of a^2)^beta, k=2, alpha=1e-4, beta=0.75."""
    a = torch.randn(2, 8, 3, 3) * 20
    b = krizhevsky_lrn()(a)
    expected = torch.empty_like(a)
    for i in range(8):
        window = a[:, max(0, i - 2): min(8, i + 3)]
        expected[:, i] = a[:, i] / (2 + 1e-4 * (window**2).sum(1)) ** 0.75
    torch.testing.assert_close(b, expected)


def test_lenet5_modern_defaults_to_d2l_sigmoid_and_average_pooling():
    model = cnnlab.create_model("lenet5_modern")
    kinds = [type(m).__name__ for m in model.features]
    assert kinds == ["Conv2d", "Sigmoid", "AvgPool2d", "Conv2d", "Sigmoid", "AvgPool2d"]
    modern = cnnlab.create_model("lenet5_modern", activation="relu", pool="max", batch_norm=True)
    assert [type(m).__name__ for m in modern.features] == [
        "Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d",
    ]


def test_vgg11_lrn_has_one_lrn_after_the_first_conv():
    model = cnnlab.create_model("vgg11_lrn")
    assert [type(m).__name__ for m in model.features[:3]] == ["Conv2d", "ReLU", "LocalResponseNorm"]
    assert sum(isinstance(m, torch.nn.LocalResponseNorm) for m in model.modules()) == 1


def test_vgg_uses_only_3x3_convs_and_2x2_pools_except_config_c():
    for name in ("vgg11", "vgg13", "vgg16", "vgg19"):
        with torch.device("meta"):
            model = cnnlab.create_model(name)
        convs = [m for m in model.features if isinstance(m, torch.nn.Conv2d)]
        assert {(m.kernel_size, m.stride, m.padding) for m in convs} == {((3, 3), (1, 1), (1, 1))}
        assert len(convs) + 3 == int(name[3:])  # weight layers = convs + 3 FC
    with torch.device("meta"):
        c = cnnlab.create_model("vgg16_c")
    assert sum(m.kernel_size == (1, 1) for m in c.features if isinstance(m, torch.nn.Conv2d)) == 3
