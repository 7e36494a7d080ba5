"""Export: ONNX checked and run by ONNX Runtime, ExportedProgram, TorchScript; clear failures."""

from __future__ import annotations

import tempfile

import numpy as np
import onnxruntime
import pytest
import torch

import cnnlab
from cnnlab.cli import main
from cnnlab.deploy import ExportError, benchmark, export_onnx, export_program, export_torchscript, fold_batchnorm
from tests.models.test_faithfulness import randomize_batchnorm_statistics


def dense_net_bc_2_layers_a_block() -> torch.nn.Module:
    """densenet_bc_100_12's layers (BN-ReLU-1x1-BN-ReLU-3x3, concatenation, compression 0.5), 2 per block."""
    from cnnlab.models.densenet import DenseNet

    return DenseNet(12, (2, 2, 2), 24, num_classes=10, cifar_stem=True)


def nasnet_a_mobile_2_cells_a_stage() -> torch.nn.Module:
    """nasnet_a_mobile's stem, Normal and Reduction cells (a Normal cell after a Reduction cell and after a
    Normal cell), 2 Normal cells per stage instead of 4."""
    from cnnlab.models.nasnet import NASNET_CONFIGS, NASNetA

    return NASNetA(**{**NASNET_CONFIGS["mobile"], "cells_per_stage": 2})


# Every way the zoo joins layers (a sum, a concatenation, a channel shuffle, the searched cells, a
# fractal's mean of columns); the deep ones at fewer repeats of the same blocks, as exporting takes
# time per node: the full densenet_bc_100_12 and nasnet_a_mobile took 11 s and 15 s here.
@pytest.mark.parametrize("build, side", [
    (lambda: cnnlab.create_model("resnet20"), 32), (dense_net_bc_2_layers_a_block, 32),
    (lambda: cnnlab.create_model("lenet5"), 32), (lambda: cnnlab.create_model("shufflenet_v1_g8_x0_5"), 64),
    (nasnet_a_mobile_2_cells_a_stage, 64), (lambda: cnnlab.create_model("fractalnet34"), 64)],
    ids=["resnet20", "densenet_bc_2_layers", "lenet5", "shufflenet_v1_g8_x0_5", "nasnet_a_mobile_2_cells", "fractalnet34"])
def test_folded_onnx_matches_pytorch_at_any_batch(tmp_path, build, side):
    model = build().eval()
    randomize_batchnorm_statistics(model)
    x = torch.randn(1, model.in_chans, side, side)
    folded, _ = fold_batchnorm(model, x)
    info = export_onnx(folded, x, tmp_path / "model.onnx", dynamic_batch=True)
    assert info["max_relative_difference"] < 1e-4
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    batch = torch.randn(5, model.in_chans, side, side)
    with torch.no_grad():
        expected = model(batch).numpy()  # the original, unfolded model
    actual = session.run(None, {"x": batch.numpy()})[0]
    assert np.abs(actual - expected).max() < 1e-4 * max(1.0, np.abs(expected).max())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]  # one self-contained file, no leftovers


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_exported_program_and_torchscript_reload(tmp_path):
    model = cnnlab.create_model("resnet20").eval()
    x = torch.randn(2, 3, 32, 32)
    export_program(model, x, tmp_path / "m.pt2")
    export_torchscript(model, x, tmp_path / "m.pt")
    with torch.no_grad():
        expected = model(x)
        torch.testing.assert_close(torch.export.load(str(tmp_path / "m.pt2")).module()(x), expected)
        torch.testing.assert_close(torch.jit.load(str(tmp_path / "m.pt"))(x), expected)


def test_export_errors_leave_nothing_behind(tmp_path):
    model = cnnlab.create_model("lenet5_modern").eval()
    x = torch.randn(1, 1, 28, 28)
    with pytest.raises(ExportError, match=r"opset 9 cannot be written .* choose one of 18-23"):
        export_onnx(model, x, tmp_path / "m.onnx", opset=9)
    with pytest.raises(ExportError, match=r"the folder .*missing does not exist"):
        export_onnx(model, x, tmp_path / "missing" / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_export_cli_from_a_checkpoint(tmp_path, capsys):
    from cnnlab.train import TrainConfig, fit

    fit(TrainConfig(model="lenet5_modern", epochs=1, subset=320, batch_size=64, optimizer="adam", lr=2e-3,
                    model_kwargs={"activation": "relu", "pool": "max", "batch_norm": True}, out=str(tmp_path / "run")),
        log=lambda _: None)
    code = main(["export", str(tmp_path / "run"), "--fold-bn", "--onnx", str(tmp_path / "lenet.onnx"), "--dynamic-batch"])
    out = capsys.readouterr().out
    assert code == 0 and "4 BatchNorm layers folded" in out and "onnx.checker passed" in out
    code = main(["export", str(tmp_path / "run")])
    assert code == 2 and "say what to write" in capsys.readouterr().err
    code = main(["export", "nonsense-model", "--onnx", str(tmp_path / "x.onnx")])
    assert code == 2 and "unknown model 'nonsense-model' (run `cnnlab models`" in capsys.readouterr().err


def test_bench_reports_every_form(capsys, tmp_path, monkeypatch):
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    results = benchmark(cnnlab.create_model("lenet5_modern", batch_norm=True), (1, 28, 28), batches=(1, 4),
                        variants=("eager", "folded", "channels_last", "onnxruntime"), warmup=1, iterations=3)
    assert [(r.variant, r.batch) for r in results] == [
        (v, b) for b in (1, 4) for v in ("eager", "folded", "channels_last", "onnxruntime")]
    assert all(r.images_per_second > 0 and r.p99_ms >= r.median_ms for r in results)
    assert not any((tmp_path / "tmp").iterdir())  # the ONNX files ONNX Runtime loaded are gone
    code = main(["bench", "lenet5_modern", "--batch", "1", "--variants", "eager,folded", "--iterations", "3"])
    assert code == 0 and "vs eager" in capsys.readouterr().out
    code = main(["bench", "lenet5_modern", "--variants", "tensorrt"])
    assert code == 2 and "unknown variant(s) tensorrt" in capsys.readouterr().err


def test_bench_forms_take_turns():
    from cnnlab.deploy.bench import time_in_turns

    calls = []
    times = time_in_turns({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, warmup=1, iterations=7,
                           block=5)
    assert {name: len(taken) for name, taken in times.items()} == {"a": 7, "b": 7}
    # warm-up, then blocks of one untimed and up to 5 timed calls, alternating
    assert "".join(calls) == "ab" + "a" * 6 + "b" * 6 + "a" * 3 + "b" * 3


def test_bench_half_precision_forms(capsys):
    half = benchmark(cnnlab.create_model("lenet5_modern", batch_norm=True), (1, 28, 28), batches=(2,),
                     variants=("bf16", "fp16"), warmup=1, iterations=3)
    by_form = {r.variant: r for r in half}
    assert by_form["bf16"].images_per_second > 0 and by_form["bf16"].note == "folded, bf16 weights and inputs"
    if not torch.cuda.is_available():  # fp16 is timed on a GPU only, and says so
        assert by_form["fp16"].note == "unavailable: ValueError: fp16 inference is timed on a GPU; on the CPU time bf16"
        assert main(["bench", "lenet5_modern", "--device", "cuda"]) == 2
        assert "--device cuda was asked for but PyTorch sees no GPU here" in capsys.readouterr().err
