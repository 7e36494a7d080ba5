"""Will it fit? The peak of one training step, predicted and measured, beside the other estimates.

    python benchmarks/memory_peak.py [--models lenet5_modern resnet20 ...] [--out FILE.json] [--device cpu|cuda]

For each model, batch size and precision (float32, bf16 autocast), one run on this machine:
- predicted: cnnlab's simulated training step (fake tensors, forward + backward + optimizer step);
- measured: the same step run for real (random weights, SGD with momentum): on the CPU, the PyTorch
  profiler's account of every allocation (running total above the tensors alive before the step:
  weights, momentum buffers, the batch); on a GPU, torch.cuda.max_memory_allocated;
- torchinfo's "Estimated Total Size" (input + "forward/backward pass size" + parameters), the figure
  users read as the memory a model needs, and the seeds' convention (2 x every layer output + 3 x
  parameters for momentum SGD), both for float32 (neither knows autocast).
The ratio columns are estimate / measured.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import time

import torch

from cnnlab.analysis import summary
from cnnlab.analysis.formulas import MB
from cnnlab.analysis.memory import TrainingStep, measure_peak
from cnnlab.models import create_model

# (model, batch sizes): the seeds' networks and a CIFAR ResNet, at batches this 24 GiB CPU can run
CASES = {
    "lenet5_modern": (32, 128, 512),
    "resnet20": (32, 128, 256),
    "alexnet": (4, 16, 32),
    "vgg16": (2, 4, 8),
    "googlenet": (4, 8, 16),
    "resnet18": (4, 16, 32),
    "resnet50": (2, 8, 16),
    "densenet121": (2, 8, 16),
}


def torchinfo_total(model, input_size, batch) -> float | None:
    try:
        import torchinfo
    except ImportError:
        return None
    with contextlib.redirect_stdout(io.StringIO()):
        stats = torchinfo.summary(model, input_size=(batch, *input_size), verbose=0, device="cpu")
    return (stats.total_input + stats.total_output_bytes + stats.total_param_bytes) / MB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(CASES))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    rows = []
    for name in args.models:
        torch.manual_seed(0)
        model = create_model(name)
        size = model.default_input_size
        for amp in ("none", "bf16"):
            step = TrainingStep(model, size, "momentum", amp)
            for batch in CASES[name]:
                start = time.perf_counter()
                predicted = step.peak(batch, locate=False).peak / MB
                simulated_s = time.perf_counter() - start
                measured = measure_peak(model, size, batch, "momentum", amp, device=args.device) / MB
                seeds = summary(name, batch=batch).totals.training_memory / MB
                info = torchinfo_total(model, size, batch) if amp == "none" else None
                row = {"model": name, "batch": batch, "amp": amp, "measured_mb": measured, "predicted_mb": predicted,
                       "error": predicted / measured - 1, "simulate_s": simulated_s,
                       "seeds_mb": seeds if amp == "none" else None, "torchinfo_mb": info}
                rows.append(row)
                print(f"{name:14s} b{batch:<4d} {amp:5s} measured {measured:10,.1f} MB  predicted {predicted:10,.1f} "
                      f"({100 * row['error']:+.1f}%)" + (f"  seeds {seeds / measured:.2f}x" if amp == "none" else "")
                      + (f"  torchinfo {info / measured:.2f}x" if info else ""), flush=True)
    worst = max(abs(r["error"]) for r in rows)
    print(f"worst prediction error: {100 * worst:.1f}% over {len(rows)} cases")
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(rows, handle, indent=2)


if __name__ == "__main__":
    main()
