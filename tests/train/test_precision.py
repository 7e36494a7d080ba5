"""bf16 by default where the hardware has it: detection, the settings a run records, parity with
float32, and validation sized to --subset."""

from __future__ import annotations

import json

import pytest
import torch

from cnnlab.data.sources import FASHION_MNIST_DIR
from cnnlab.errors import CnnlabError
from cnnlab.train import TrainConfig, fit
from cnnlab.train import precision as precision_module
from cnnlab.train.data import validation_indices
from cnnlab.checkpoint import RunMeta
from cnnlab.train.precision import for_inference, native_bf16, resolve

CPU = torch.device("cpu")
TINY = dict(model="lenet5_modern", data="mnist-embedded", epochs=2, batch_size=64, subset=640, optimizer="adam", lr=2e-3,
            model_kwargs={"activation": "relu", "pool": "max", "batch_norm": True}, augment="none", seed=1)


def cpu_with(monkeypatch, **capabilities) -> None:
    """Pretend the CPU has these instruction sets, and let the hardware decide (no CNNLAB_AMP)."""
    monkeypatch.setattr(precision_module, "_cpu_capabilities", lambda: capabilities)
    monkeypatch.delenv(precision_module.AMP_ENVIRONMENT, raising=False)


# What `--amp auto` resolves to on this machine (bf16 on the project's CPUs, float32 under make test-fp32).
AUTO = resolve("auto", CPU).name


def test_auto_picks_bf16_on_a_cpu_with_amx_or_avx512_bf16(monkeypatch):
    cpu_with(monkeypatch, amx_bf16=True, avx512_bf16=True)
    chosen = resolve("auto", CPU)
    assert chosen.amp == "bf16" and chosen.name == "bf16" and "AMX-BF16" in chosen.note
    cpu_with(monkeypatch, amx_bf16=False, avx512_bf16=True)
    assert resolve("auto", CPU).amp == "bf16" and "AVX512-BF16" in resolve("auto", CPU).note
    assert resolve(None, CPU).amp == "bf16"  # unset means auto


def test_auto_stays_float32_without_native_bf16_and_bf16_says_it_will_be_slower(monkeypatch):
    cpu_with(monkeypatch, amx_bf16=False, avx512_bf16=False)
    chosen = resolve("auto", CPU)
    assert chosen.amp is None and chosen.name == "float32" and "no native bf16" in chosen.note
    forced = resolve("bf16", CPU)
    assert forced.amp == "bf16" and "emulated" in forced.note and "slower than float32" in forced.note


def test_none_fp16_and_unknown_precisions(monkeypatch):
    cpu_with(monkeypatch, amx_bf16=True)
    assert resolve("none", CPU).amp is None
    with pytest.raises(CnnlabError, match="--amp fp16 needs a GPU"):
        resolve("fp16", CPU)
    with pytest.raises(CnnlabError, match="--amp takes auto, none, bf16, fp16, got 'half'"):
        resolve("half", CPU)
    assert native_bf16(torch.device("meta")) is None


def test_cnnlab_amp_in_the_environment_decides_auto_and_the_note_says_so(monkeypatch):
    cpu_with(monkeypatch, amx_bf16=False, avx512_bf16=True)
    monkeypatch.setenv("CNNLAB_AMP", "none")
    chosen = resolve("auto", CPU)
    assert chosen.amp is None and chosen.note == ("float32 (auto: CNNLAB_AMP=none in the environment; "
                                                  "native bf16 on this CPU: AVX512-BF16)")
    assert native_bf16(CPU) == "AVX512-BF16"  # the hardware is still reported as it is
    assert resolve("bf16", CPU).amp == "bf16"  # an explicit --amp wins over the environment
    cpu_with(monkeypatch, amx_bf16=False, avx512_bf16=False)
    monkeypatch.setenv("CNNLAB_AMP", "bf16")
    assert resolve("auto", CPU).amp == "bf16" and "this CPU has no native bf16" in resolve("auto", CPU).note
    monkeypatch.setenv("CNNLAB_AMP", "half")
    with pytest.raises(CnnlabError, match="CNNLAB_AMP='half' in the environment: it takes none or bf16"):
        resolve("auto", CPU)


def test_evaluation_uses_the_runs_precision_unless_told():
    assert for_inference(None, "bf16", CPU).amp == "bf16"
    assert for_inference(None, RunMeta("lenet5", 10, 1).precision, CPU).amp is None  # runs from before precisions were recorded
    assert for_inference("none", "bf16", CPU).amp is None
    assert for_inference(None, "fp16", CPU).amp is None  # fp16 autocast wants a GPU


def test_validation_is_a_share_of_the_subset_capped_by_val_size():
    held = torch.arange(6000)
    assert len(validation_indices(held, 0.1, None, None)) == 6000  # the whole held-out 10%
    assert validation_indices(held, 0.1, 6000, None).tolist() == list(range(600))  # 10% of the 6,000 trained on
    assert len(validation_indices(held, 0.1, 100_000, None)) == 6000  # never more than was held out
    assert len(validation_indices(held, 0.1, None, 1000)) == 1000
    assert len(validation_indices(held, 0.2, 6000, 500)) == 500


def test_a_default_run_records_its_precision_and_a_none_run_float32(tmp_path, monkeypatch):
    lines: list[str] = []
    fit(TrainConfig(**TINY, out=str(tmp_path / "auto")), log=lines.append)
    expected = AUTO
    for name in ("config.json", "best.json", "last.json"):
        assert json.loads((tmp_path / "auto" / name).read_text())["precision"] == expected, name
    compute = next(line for line in lines if line.startswith("compute: "))
    assert compute.startswith(f"compute: {expected}") and "NCHW layout" in compute  # LeNet: channels_last is slower
    assert json.loads((tmp_path / "auto" / "best.json").read_text())["val_images"] == 64
    fit(TrainConfig(**TINY, amp="none", out=str(tmp_path / "none")), log=lambda _: None)
    assert json.loads((tmp_path / "none" / "best.json").read_text())["precision"] == "float32"


@pytest.mark.skipif(native_bf16(CPU) is None, reason="this CPU has no native bf16 (emulated bf16 would be slow)")
def test_a_tiny_bf16_run_trains_as_float32_does_with_float32_master_weights(tmp_path):
    """The same recipe in bf16 and float32: master weights, optimizer state and checkpoints stay
    float32, and both runs learn (90-92% on 150 validation digits here; chance is 10%). How close
    the two runs end is a matter of the CPU's rounding, not asserted: a tight band would test one
    CPU's trajectory."""
    settings = {**TINY, "epochs": 3, "subset": 1500}
    bf16 = fit(TrainConfig(**settings, amp="bf16", out=str(tmp_path / "bf16")), log=lambda _: None)
    fp32 = fit(TrainConfig(**settings, amp="none", out=str(tmp_path / "fp32")), log=lambda _: None)
    assert json.loads((tmp_path / "bf16" / "best.json").read_text())["precision"] == "bf16"
    assert all(p.dtype == torch.float32 for p in torch.load(tmp_path / "bf16" / "last.state.pt", weights_only=True)
               ["optimizer"]["state"][0].values() if isinstance(p, torch.Tensor) and p.is_floating_point())
    assert bf16.best["val_top1"] > 0.6 and fp32.best["val_top1"] > 0.6
    assert bf16.history[-1]["train_loss"] < 1.0 and fp32.history[-1]["train_loss"] < 1.0  # from ln 10 = 2.3 at the start
    from safetensors.torch import load_file

    assert {t.dtype for t in load_file(tmp_path / "bf16" / "best.safetensors").values()} <= {torch.float32, torch.int64}


def test_the_fast_recipe_fills_what_the_user_left_unset(tmp_path):
    lines: list[str] = []
    config = TrainConfig(model="resnet20", data="mnist-embedded", recipe="fast", epochs=1, subset=300, batch_size=64,
                         out=str(tmp_path / "run"))
    fit(config, log=lines.append)
    settings = json.loads((tmp_path / "run" / "config.json").read_text())
    assert settings["schedule"] == "onecycle" and settings["label_smoothing"] == 0.1 and settings["nesterov"] is True
    assert settings["epochs"] == 1 and settings["batch_size"] == 64  # the user's own values win
    assert settings["augment"] == "crop=2" and settings["test_flip"] is False  # digits are not mirrored
    assert json.loads((tmp_path / "run" / "best.json").read_text())["input_size"] == [1, 28, 28]  # no resize to 32
    assert any("recipe fast" in line for line in lines)
    assert any(line.startswith("compute: ") and "channels_last layout" in line for line in lines)


def test_the_fast_recipe_flips_clothes_and_unknown_recipes_are_refused(tmp_path):
    from cnnlab.train.config import recipe_settings

    fashion = recipe_settings(TrainConfig(model="resnet20", data="fashion-mnist", recipe="fast"), "resnet_cifar")
    assert fashion["augment"] == "crop=2,flip" and fashion["test_flip"] is True
    with pytest.raises(CnnlabError, match="unknown recipe 'slow'; choose one of fast"):
        fit(TrainConfig(**TINY, recipe="slow", out=str(tmp_path / "run")), log=lambda _: None)


@pytest.mark.skipif(not FASHION_MNIST_DIR.is_dir(), reason="Debian's dataset-fashion-mnist is not installed (make data)")
def test_watch_test_adds_the_test_top1_of_every_epoch(tmp_path):
    result = fit(TrainConfig(**{**TINY, "data": "fashion-mnist", "epochs": 1, "subset": 320}, watch_test=True,
                             out=str(tmp_path / "run")), log=lambda _: None)
    assert 0.0 < result.history[0]["test_top1"] <= 1.0
