"""Models sized to their input: a flattened classifier is built for the input it is given, so
seed 002's "AlexNet vs LeNet" column (d2l's AlexNet at 224x224) is reproduced; defaults unchanged."""

from __future__ import annotations

import json

import pytest
import torch

import cnnlab
from cnnlab.cli import main
from cnnlab.errors import InputShapeError
from cnnlab.models import get_entry


def test_seed_002_alexnet_column_at_224():
    """35K, 614K, 3M, 26M, 16M, 46M parameters; 101M, 415M, 445M multiply-adds (the slide's "FLOPs")."""
    result = cnnlab.summary("alexnet", input_size=(3, 224, 224), num_classes=10)
    assert result.row("fc6").params == 6_400 * 4_096 + 4_096  # conv5's pool leaves 5x5x256, as d2l's
    params = {name: result.row(name).params for name in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7")}
    assert params["conv1"] == 34_944 and params["conv2"] == 614_656
    assert params["conv3"] + params["conv4"] + params["conv5"] == 3_097_600
    assert (params["fc6"], params["fc7"]) == (26_218_496, 16_781_312)
    assert result.totals.params == 46_787_978
    macs = {name: result.row(name).macs for name in ("conv1", "conv2", "conv3", "conv4", "conv5")}
    assert macs["conv1"] == 101_616_768 and macs["conv2"] == 415_334_400
    assert macs["conv3"] + macs["conv4"] + macs["conv5"] == 445_906_944


@pytest.mark.parametrize("name, params", [
    ("alexnet", 62_378_344), ("alexnet_grouped", 60_965_224), ("zfnet", 62_357_608), ("zfnet_large", 107_627_624),
    ("vgg16", 138_357_544), ("lenet5_modern", 61_706),
])
def test_default_counts_are_unchanged(name, params):
    assert sum(p.numel() for p in cnnlab.create_model(name).parameters()) == params
    model = cnnlab.create_model(name, input_size=get_entry(name).input_size)  # the paper's size, given
    assert sum(p.numel() for p in model.parameters()) == params


def test_lenet_and_zfnet_at_other_sizes_run():
    lenet = cnnlab.create_model("lenet5_modern", input_size=32)
    assert lenet.pre_logits.fc1.in_features == 16 * 6 * 6 and lenet(torch.randn(2, 1, 32, 32)).shape == (2, 10)
    zfnet = cnnlab.create_model("zfnet", input_size=(3, 96, 128), num_classes=5)
    assert zfnet.default_input_size == (3, 96, 128) and zfnet(torch.randn(1, 3, 96, 128)).shape == (1, 5)
    with pytest.raises(InputShapeError, match="smallest input it accepts is 67x67"):
        cnnlab.create_model("alexnet", input_size=32)


def test_a_mismatched_input_says_how_to_build_for_it():
    with pytest.raises(InputShapeError, match=r"create_model\('alexnet', input_size=\(3, 224, 224\)\)"):
        cnnlab.create_model("alexnet")(torch.randn(1, 3, 224, 224))


def test_the_cli_builds_for_its_input(capsys):
    assert main(["summary", "alexnet", "--input", "3x224x224", "--num-classes", "10", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["params"] == 46_787_978


def test_a_run_at_another_size_saves_and_reloads(tmp_path):
    from cnnlab.train import TrainConfig, fit, load_model

    fit(TrainConfig(model="lenet5_modern", epochs=1, subset=200, batch_size=50, input_size=32, augment="none",
                    optimizer="adam", lr=1e-3, out=str(tmp_path / "run")), log=lambda _: None)
    model, meta = load_model(tmp_path / "run")
    assert meta.input_size == (1, 32, 32) and model.pre_logits.fc1.in_features == 576


def test_an_input_a_fixed_net_cannot_take_is_refused_when_it_is_built():
    """A net that is not built for its input records the input it is given only if it takes it;
    a fixed classifier (the original LeNet-5) is not told to be built for another size."""
    with pytest.raises(InputShapeError, match=r"input 8x8 does not fit lenet5: it takes square inputs from 32x32 to "
                                              r"35x35 \(its flattened classifier fixes the size; designed for 32x32\); "
                                              r"resize the images to 32x32$"):
        cnnlab.create_model("lenet5", input_size=8)
    with pytest.raises(InputShapeError) as refused:
        cnnlab.create_model("lenet5")(torch.randn(1, 1, 28, 28))
    assert "input_size" not in str(refused.value)
    with pytest.raises(InputShapeError, match="input 8x8 is too small for inception_v3: the smallest input it accepts "
                                              "is 75x75"):
        cnnlab.create_model("inception_v3", input_size=8)
    with pytest.raises(InputShapeError, match="the smallest input it accepts is 12x12"):
        cnnlab.create_model("lenet5_modern", input_size=8)
    assert cnnlab.create_model("resnet18", input_size=(3, 8, 8)).default_input_size == (3, 8, 8)  # it takes 8x8
