"""Export a model for inference: ONNX (checked by onnx.checker and run by ONNX Runtime against
PyTorch), torch.export's ExportedProgram, or TorchScript. Every file is written to a temporary
name and renamed into place, so a failed export leaves nothing behind."""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from cnnlab.errors import CnnlabError

ONNX_OPSETS = range(18, 24)  # what torch's (dynamo) ONNX exporter writes


class ExportError(CnnlabError):
    """An export that cannot be written or does not reproduce the model."""


def _target(path: str | Path) -> tuple[Path, Path]:
    path = Path(path)
    if not path.parent.exists():
        raise ExportError(f"the folder {path.parent} does not exist; create it or export elsewhere")
    # The temporary keeps the suffix: torch.export.save insists on .pt2.
    return path, path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")


def export_onnx(model: nn.Module, example: torch.Tensor, path: str | Path, opset: int = 18,
                dynamic_batch: bool = False, tolerance: float = 1e-4) -> dict:
    """Write `model` as ONNX, check it, run it with ONNX Runtime and compare with PyTorch."""
    import onnx
    import onnxruntime

    if opset not in ONNX_OPSETS:
        raise ExportError(f"ONNX opset {opset} cannot be written by the installed exporter (torch {torch.__version__}); "
                          f"choose one of {ONNX_OPSETS.start}-{ONNX_OPSETS.stop - 1}")
    path, temporary = _target(path)
    model = model.eval()
    shapes = {"x": {0: torch.export.Dim("batch", min=1, max=4096)}} if dynamic_batch else None
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            # external_data=False: one self-contained file (weights inside), valid under any name.
            torch.onnx.export(model, (example,), str(temporary), dynamo=True, opset_version=opset,
                              dynamic_shapes=shapes, input_names=["x"], output_names=["logits"], external_data=False)
        onnx.checker.check_model(str(temporary))
        session = onnxruntime.InferenceSession(str(temporary), providers=["CPUExecutionProvider"])
        checks = [example] + ([torch.cat([example, example])] if dynamic_batch else [])
        worst = 0.0
        for x in checks:
            with torch.no_grad():
                expected = model(x).numpy()
            actual = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
            worst = max(worst, float(abs(actual - expected).max() / max(1.0, abs(expected).max())))
        if worst > tolerance:
            raise ExportError(f"ONNX Runtime's outputs differ from PyTorch's by {worst:.2e} (relative); the export is wrong")
        os.replace(temporary, path)
    except ExportError:
        temporary.unlink(missing_ok=True)
        raise
    except Exception as error:  # noqa: BLE001 - the exporter raises many types; the message says which
        temporary.unlink(missing_ok=True)
        raise ExportError(f"ONNX export failed: {type(error).__name__}: {str(error).strip().splitlines()[0][:300]}") from None
    return {"path": str(path), "opset": opset, "dynamic_batch": dynamic_batch, "max_relative_difference": worst,
            "bytes": path.stat().st_size}


def export_program(model: nn.Module, example: torch.Tensor, path: str | Path) -> dict:
    """torch.export's ExportedProgram (.pt2), reloadable with torch.export.load."""
    path, temporary = _target(path)
    try:
        program = torch.export.export(model.eval(), (example,))
        torch.export.save(program, str(temporary))
        os.replace(temporary, path)
    except Exception as error:  # noqa: BLE001
        temporary.unlink(missing_ok=True)
        raise ExportError(f"torch.export failed: {type(error).__name__}: {str(error).strip().splitlines()[0][:300]}") from None
    return {"path": str(path), "bytes": path.stat().st_size}


def export_torchscript(model: nn.Module, example: torch.Tensor, path: str | Path) -> dict:
    """A traced TorchScript module (.pt), for runtimes that still load TorchScript."""
    path, temporary = _target(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(model.eval(), example)
            traced.save(str(temporary))
        os.replace(temporary, path)
    except Exception as error:  # noqa: BLE001
        temporary.unlink(missing_ok=True)
        raise ExportError(f"TorchScript tracing failed: {type(error).__name__}: {str(error).strip().splitlines()[0][:300]}") from None
    return {"path": str(path), "bytes": path.stat().st_size}
