"""Weights by name: the reference library's file for the twin model, found in its local cache."""

from __future__ import annotations

import pytest
import torch
import torchvision
from safetensors.torch import save_file

import cnnlab
from cnnlab.cli import main
from cnnlab.weights import pretrained_file


def _torchvision_cache(tmp_path, monkeypatch, name: str, state: dict) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    url = torchvision.models.get_model_weights(name).IMAGENET1K_V1.url
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.save(state, folder / url.rsplit("/", 1)[-1])


def test_torchvision_weights_from_its_cache(tmp_path, monkeypatch):
    torch.manual_seed(0)
    reference = torchvision.models.resnet50().eval()  # the twin of our resnet50b, random weights
    _torchvision_cache(tmp_path, monkeypatch, "resnet50", reference.state_dict())
    model = cnnlab.create_model("resnet50b", pretrained="torchvision").eval()
    x = torch.randn(2, 3, 64, 64)
    assert torch.equal(model(x), reference(x))
    report = model.init_report
    assert not report.skipped and not report.left_at_init and "resnet50-" in report.source


def test_torchvision_densenet_files_with_their_old_key_names(tmp_path, monkeypatch):
    torch.manual_seed(0)
    reference = torchvision.models.densenet121().eval()
    # torchvision's published file spells "norm1" as "norm.1" (torchvision renames on load; so do we)
    old = {key.replace("norm1", "norm.1").replace("conv2", "conv.2"): value for key, value in reference.state_dict().items()}
    _torchvision_cache(tmp_path, monkeypatch, "densenet121", old)
    model = cnnlab.create_model("densenet121", pretrained="torchvision").eval()
    x = torch.randn(1, 3, 64, 64)
    assert torch.equal(model(x), reference(x)) and not model.init_report.skipped


def test_timm_weights_from_the_hugging_face_cache(tmp_path, monkeypatch):
    torch.manual_seed(0)
    reference = torchvision.models.resnet18()  # timm's resnet18.tv_in1k has torchvision's names and values
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    snapshot = tmp_path / "hf" / "models--timm--resnet18.tv_in1k" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(snapshot / "model.safetensors"))
    model = cnnlab.create_model("resnet18", pretrained="timm", num_classes=10)
    report = model.init_report
    assert sorted(report.skipped) == [("fc.bias", "shape (1000,) in the file, (10,) in the model"),
                                      ("fc.weight", "shape (1000, 512) in the file, (10, 512) in the model")]
    assert sorted(report.left_at_init) == ["fc.bias", "fc.weight"]
    assert torch.equal(model.conv1.weight, reference.conv1.weight)


def test_missing_files_and_models_without_a_twin_say_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf"))
    with pytest.raises(cnnlab.CnnlabError, match=r"fetch https://download.pytorch.org/models/resnet18-f37072fd.pth "
                                                 r"on a connected machine and put it in .*empty/hub/checkpoints"):
        pretrained_file("resnet18", "torchvision")
    with pytest.raises(cnnlab.CnnlabError, match=r"https://huggingface.co/timm/resnet18.tv_in1k/resolve/main/model.safetensors"):
        pretrained_file("resnet18", "timm")
    with pytest.raises(cnnlab.CnnlabError, match="lenet5 has no twin in torchvision"):
        cnnlab.create_model("lenet5", pretrained="torchvision")
    with pytest.raises(cnnlab.CnnlabError, match="give 'torchvision', 'timm' or a path"):
        pretrained_file("resnet18", "caffe")


def test_train_init_torchvision(tmp_path, monkeypatch, capsys):
    torch.manual_seed(0)
    _torchvision_cache(tmp_path, monkeypatch, "squeezenet1_1", torchvision.models.squeezenet1_1().state_dict())
    code = main(["train", "squeezenet1_1", "--data", "mnist-embedded", "--subset", "40", "--epochs", "1", "--input-size", "64",
                 "--init", "torchvision", "--out", str(tmp_path / "run"), "--device", "cpu"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "--init torchvision (" in out.out and "skipped classifier.1.weight" in out.out


def test_timms_nasnetalarge_weights_from_the_hugging_face_cache(tmp_path, monkeypatch):
    import timm

    torch.manual_seed(0)
    reference = timm.create_model("nasnetalarge", pretrained=False).eval()  # timm's names, random weights
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    snapshot = tmp_path / "hf" / "models--timm--nasnetalarge.tf_in1k" / "snapshots" / "c0ffee"
    snapshot.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(snapshot / "model.safetensors"))
    model = cnnlab.create_model("nasnet_a_large", pretrained="timm").eval()
    assert not model.init_report.skipped and not model.init_report.left_at_init
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))
