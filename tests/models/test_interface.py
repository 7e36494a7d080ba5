"""One interface over every model: create_model, list_models, forward_features/forward_head,
reset_classifier, feature_info, and clear errors."""

from __future__ import annotations

import pytest
import torch

import cnnlab
from cnnlab.models import accepted_input_sizes
from cnnlab.errors import InputShapeError, ModelConfigError, UnknownModelError

CLASSIC = [
    "lenet5", "lenet5_modern", "alexnet", "alexnet_grouped", "alexnet_owt", "zfnet", "zfnet_large",
    "vgg11", "vgg11_lrn", "vgg13", "vgg16_c", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn", "nin",
]


def test_every_classic_model_is_registered():
    assert set(CLASSIC) <= set(cnnlab.list_models())


def test_every_model_is_a_def_you_can_find_by_name():
    """No builder is written into a module's globals by a loop: searching for `def resnet18` finds it."""
    import inspect

    from cnnlab.models import get_entry

    for name in cnnlab.list_models():
        builder = get_entry(name).builder
        source = inspect.getsource(inspect.getmodule(builder))
        assert builder.__name__ == name and f"\ndef {name}(" in source, name


def test_list_models_filters_with_a_pattern():
    assert cnnlab.list_models("vgg1?") == ["vgg11", "vgg13", "vgg16", "vgg19"]
    assert cnnlab.list_models("alexnet*") == ["alexnet", "alexnet_grouped", "alexnet_owt"]
    assert cnnlab.list_models("nothing*") == []


def test_unknown_model_suggests_the_closest_names():
    with pytest.raises(UnknownModelError) as error:
        cnnlab.create_model("vgg1")
    assert str(error.value).startswith("unknown model 'vgg1'; did you mean vgg11")
    with pytest.raises(UnknownModelError, match="did you mean alexnet"):
        cnnlab.create_model("alexnt")
    with pytest.raises(UnknownModelError, match=r"^unknown model 'resnet5'; did you mean resnet50, resnet56, "):
        cnnlab.create_model("resnet5")


def test_bad_variant_option_names_the_choices():
    with pytest.raises(ModelConfigError, match="choose one of relu, scaled_tanh, sigmoid, tanh"):
        cnnlab.create_model("lenet5_modern", activation="gelu")


def smallest_model(name: str) -> tuple[torch.nn.Module, int]:
    """The model (1 channel, 10 classes) and the smallest sensible input side: >= 32 for a net that
    takes any size; a flattened classifier (LeNet, AlexNet, ZFNet, VGG) built for the smallest input
    its layers take, found on the meta device (VGG at 32x32: the same layers, 1/49 of the arithmetic
    of 224x224 and a first FC layer of 2M weights instead of 103M)."""
    with torch.device("meta"):
        meta = cnnlab.create_model(name, in_chans=1, num_classes=10)
    smallest, largest = accepted_input_sizes(meta)
    if largest is None:
        return cnnlab.create_model(name, in_chans=1, num_classes=10), max(smallest, 32)
    side = next(side for side in range(8, meta.default_input_size[-1] + 1) if _builds_for(name, side))
    return cnnlab.create_model(name, in_chans=1, num_classes=10, input_size=side), side


def _builds_for(name: str, side: int) -> bool:
    try:
        with torch.device("meta"):
            cnnlab.create_model(name, in_chans=1, num_classes=10, input_size=side)
    except InputShapeError:
        return False
    return True


ALL_MODELS = cnnlab.list_models()


@pytest.mark.parametrize("name", ALL_MODELS)
def test_one_channel_ten_classes_forward_backward_and_interface(name):
    model, size = smallest_model(name)
    x = torch.randn(2, 1, size, size)
    logits = model(x)
    assert logits.shape == (2, 10)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)

    model.eval()
    with torch.no_grad():
        features = model.forward_features(x)
        torch.testing.assert_close(model.forward_head(features), model(x))
        assert model.forward_head(features, pre_logits=True).shape == (2, model.num_features)
    assert features.shape[1] == model.feature_info[-1]["num_chs"]

    model.reset_classifier(5)
    assert model.num_classes == 5
    with torch.no_grad():
        assert model(x).shape == (2, 5)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_feature_info_gives_each_stages_channels_and_reduction(name):
    """Growing the input by 64 pixels grows a stage of reduction R by exactly 64 / R pixels."""
    with torch.device("meta"):
        model = cnnlab.create_model(name)
    modules = dict(model.named_modules())

    def stage_shapes(size: int) -> dict[str, torch.Size]:
        seen = {}
        hooks = [
            modules[info["module"]].register_forward_hook(
                lambda _m, _i, out, key=info["module"]: seen.__setitem__(key, out.shape)
            )
            for info in model.feature_info
        ]
        model.forward_features(torch.empty(1, model.in_chans, size, size, device="meta"))
        for hook in hooks:
            hook.remove()
        return seen

    designed = model.default_input_size[-1]
    small, large = stage_shapes(designed), stage_shapes(designed + 64)
    assert model.feature_info
    for info in model.feature_info:
        key = info["module"]
        assert small[key][1] == info["num_chs"], info
        assert large[key][2] - small[key][2] == 64 // info["reduction"], info


def test_input_too_small_names_the_smallest_size_that_works():
    model = cnnlab.create_model("vgg16")
    with pytest.raises(InputShapeError, match=r"input 16x16 is too small for vgg16: the smallest input it accepts is 32x32"):
        model(torch.randn(1, 3, 16, 16))


def test_input_for_a_flatten_classifier_names_the_sizes_it_takes():
    model = cnnlab.create_model("alexnet")
    with pytest.raises(InputShapeError, match=r"input 16x16 does not fit alexnet: it takes square inputs from 227x227 to"):
        model(torch.randn(1, 3, 16, 16))
    lenet = cnnlab.create_model("lenet5")
    with pytest.raises(InputShapeError, match=r"it takes square inputs from 32x32 to 35x35"):
        lenet(torch.randn(1, 1, 28, 28))


def test_wrong_channel_count_and_rank_are_explained():
    model = cnnlab.create_model("lenet5_modern")
    with pytest.raises(InputShapeError, match=r"built for 1 input channel\(s\) but got 3; build it with in_chans=3"):
        model(torch.randn(1, 3, 28, 28))
    with pytest.raises(InputShapeError, match=r"add a batch dimension"):
        model(torch.randn(1, 28, 28))


def test_model_knows_its_name_and_default_input():
    model = cnnlab.create_model("zfnet", num_classes=7)
    assert model.model_name == "zfnet"
    assert model.default_input_size == (3, 224, 224)
    assert model.num_classes == 7
