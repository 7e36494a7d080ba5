"""Inference latency and throughput of one model in several forms, side by side in one run:
eager, BatchNorm folded, channels_last, torch.compile, ONNX Runtime, and half precision (bf16 on
the CPU or a GPU, fp16 on a GPU). On a GPU every PyTorch form runs there and each timing waits for
the device (torch.cuda.synchronize); ONNX Runtime runs on the CPU (the onnxruntime package has
the CPU provider only), as its note says. The forms are timed in turns, a few calls each, round
after round, so the ratios between them survive a machine whose speed drifts during the run."""

from __future__ import annotations

import functools
import statistics
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from cnnlab.deploy.fold import fold_batchnorm

VARIANTS = ("eager", "folded", "channels_last", "compile", "onnxruntime", "bf16", "fp16")
HALF = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class Timing:
    variant: str
    batch: int
    median_ms: float
    p90_ms: float
    p99_ms: float
    images_per_second: float
    note: str = ""


def time_in_turns(runs: dict, warmup: int, iterations: int, sync=lambda: None, block: int = 5) -> dict[str, list[float]]:
    """Each form's timed calls in milliseconds, taken in turns: `block` calls of one form, then of
    the next, round after round. A change in the machine's speed during the run (another process,
    clock scaling) then falls on every form alike, not on whichever form ran last, so the ratios
    hold. Each block starts with one untimed call, which lets the form's threads wake up and the
    previous form's threads go idle."""
    for run in runs.values():
        for _ in range(warmup):
            run()
    sync()
    times: dict[str, list[float]] = {name: [] for name in runs}
    while any(len(taken) < iterations for taken in times.values()):
        for name, run in runs.items():
            count = min(block, iterations - len(times[name]))
            if count:
                run()
                sync()
            for _ in range(count):
                start = time.perf_counter()
                run()
                sync()  # on a GPU, wait for the kernels: the time of the work, not of queueing it
                times[name].append((time.perf_counter() - start) * 1000)
    return times


def _summarize(variant: str, batch: int, times: list[float], note: str = "") -> Timing:
    ordered = sorted(times)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    median = statistics.median(ordered)
    return Timing(variant, batch, median, pick(0.9), pick(0.99), batch * 1000 / median, note)


def benchmark(model: nn.Module, input_size: tuple[int, int, int], batches=(1,), variants=VARIANTS,
              warmup: int = 5, iterations: int = 30, device: str | torch.device = "cpu") -> list[Timing]:
    device = torch.device(device)
    model = model.eval().to(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    results = []
    for batch in batches:
        x = torch.randn(batch, *input_size, device=device)
        forms: dict[str, tuple] = {}
        for variant in variants:
            note = ""
            try:
                if variant == "eager":
                    runner = model
                elif variant == "folded":
                    runner, report = fold_batchnorm(model, x[:1])
                    note = f"{len(report.folded)} BN folded, {len(report.kept)} kept"
                elif variant == "channels_last":
                    runner = fold_batchnorm(model, x[:1])[0].to(memory_format=torch.channels_last)
                    note = "folded + channels_last"
                elif variant == "compile":
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        runner = torch.compile(fold_batchnorm(model, x[:1])[0])
                    note = "folded + torch.compile"
                elif variant == "onnxruntime":
                    runner, note = _onnx_runner(model.cpu(), x.cpu())
                    model.to(device)
                elif variant in HALF:
                    if variant == "fp16" and device.type != "cuda":
                        raise ValueError("fp16 inference is timed on a GPU; on the CPU time bf16")
                    runner = fold_batchnorm(model, x[:1])[0].to(HALF[variant])
                    note = f"folded, {variant} weights and inputs"
                else:
                    raise ValueError(variant)
                forms[variant] = (runner, note)
            except Exception as error:  # noqa: BLE001 - a form that cannot run is reported, not fatal
                results.append(Timing(variant, batch, float("nan"), float("nan"), float("nan"), 0.0,
                                      f"unavailable: {type(error).__name__}: {str(error).splitlines()[0][:80]}"))
        runs = {}
        for variant, (runner, _) in forms.items():
            data = x.contiguous(memory_format=torch.channels_last) if variant == "channels_last" else x
            if variant in HALF:
                data = x.to(HALF[variant])
            runs[variant] = functools.partial(runner, data)
        with torch.inference_mode():
            times = time_in_turns(runs, warmup, iterations, sync)
        results += [_summarize(variant, batch, times[variant], note) for variant, (_, note) in forms.items()]
    return results


def _onnx_runner(model: nn.Module, x: torch.Tensor):
    import onnxruntime

    from cnnlab.deploy.export import export_onnx

    folded, _ = fold_batchnorm(model, x[:1])
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory(prefix="cnnlab-bench-") as folder:  # the session holds the model once loaded
        info = export_onnx(folded, x, Path(folder) / "model.onnx")
        session = onnxruntime.InferenceSession(info["path"], options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    array = x.numpy()
    return (lambda _data: session.run(None, {name: array})), "folded, ONNX Runtime (CPU)"
