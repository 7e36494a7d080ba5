"""--init: weights from torchvision .pth files, safetensors and cnnlab checkpoints, by name."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torchvision
from safetensors.torch import save_file

import cnnlab
from cnnlab.deploy import WeightsError, initialize_from


def test_torchvision_pth_into_a_10_class_resnet18(tmp_path):
    reference = torchvision.models.resnet18(weights=None)
    torch.save({"state_dict": {f"module.{k}": v for k, v in reference.state_dict().items()}}, tmp_path / "r18.pth")
    model = cnnlab.create_model("resnet18", num_classes=10)
    report = initialize_from(model, tmp_path / "r18.pth")
    assert dict(report.skipped) == {
        "fc.weight": "shape (1000, 512) in the file, (10, 512) in the model",
        "fc.bias": "shape (1000,) in the file, (10,) in the model",
    }
    assert report.left_at_init == ["fc.weight", "fc.bias"]
    assert "conv1.weight" in report.loaded and len(report.loaded) == len(reference.state_dict()) - 2
    reference.eval(), model.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model.forward_features(x), torch.nn.Sequential(*list(reference.children())[:-2])(x))
    assert "2 skipped" in report.summary()


def test_safetensors_and_checkpoint_sources(tmp_path):
    source = cnnlab.create_model("resnet20")
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(tmp_path / "w.safetensors"))
    target = cnnlab.create_model("resnet20")
    report = initialize_from(target, tmp_path / "w.safetensors")
    assert not report.skipped and not report.left_at_init
    assert all(torch.equal(a, b) for a, b in zip(source.state_dict().values(), target.state_dict().values()))


def test_weights_of_another_architecture_and_unsafe_files(tmp_path):
    torch.save(torchvision.models.squeezenet1_1(weights=None).state_dict(), tmp_path / "squeeze.pth")
    with pytest.raises(WeightsError, match=r"none of the 52 tensors in .*squeeze.pth fit resnet18: .*another architecture"):
        initialize_from(cnnlab.create_model("resnet18"), tmp_path / "squeeze.pth")

    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo pwned > /tmp/cnnlab-init-pwned",))

    torch.save({"conv1.weight": Exploit()}, tmp_path / "evil.pth")
    with pytest.raises(WeightsError, match=r"cannot be read as weights .*never pickled code"):
        initialize_from(cnnlab.create_model("resnet18"), tmp_path / "evil.pth")
    assert not Path("/tmp/cnnlab-init-pwned").exists()
    with pytest.raises(WeightsError, match=r"does not exist"):
        initialize_from(cnnlab.create_model("resnet18"), tmp_path / "nothing.pth")


def test_train_with_init_reports_the_match(tmp_path):
    from cnnlab.train import TrainConfig, fit

    options = {"activation": "relu", "pool": "max", "batch_norm": True}
    first = fit(TrainConfig(model="lenet5_modern", epochs=1, subset=320, batch_size=64, optimizer="adam", lr=2e-3,
                            model_kwargs=options, out=str(tmp_path / "a")), log=lambda _: None)
    lines = []
    fit(TrainConfig(model="lenet5_modern", epochs=1, subset=320, batch_size=64, optimizer="adam", lr=2e-3,
                    model_kwargs=options, out=str(tmp_path / "b"), init=str(first.out)), log=lines.append)
    assert any("tensors loaded, 0 skipped, 0 left at their initialization" in line for line in lines)
