"""How long a per-layer analysis takes with cnnlab and with the tools users would otherwise pick.

    python benchmarks/analysis_speed.py [--models alexnet vgg16 ...] [--batches 1 128] [--out FILE]

Each tool analyses the same cnnlab model object, in one run, on this machine:
- cnnlab.summary: shapes only, on the meta device (the time includes building the model there);
- torchinfo.summary(model, input_size=(batch, C, H, W)): a real forward pass on the CPU;
- fvcore FlopCountAnalysis(model, x).total(): a TorchScript trace and a real forward;
- ptflops get_model_complexity_info(model, (C, H, W)): batch 1 by design;
- torch.utils.flop_counter.FlopCounterMode around a real forward pass.
Beside each time, what the tool reports (parameters, operations) and what it leaves out.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import time
import warnings

import torch

import cnnlab
from cnnlab.analysis import summary

MODELS = ["alexnet", "vgg16", "googlenet", "resnet50", "resnet152", "densenet121"]


def timed(function):
    start = time.perf_counter()
    value = function()
    return time.perf_counter() - start, value


def run_cnnlab(name: str, batch: int):
    summary(name, batch=batch)  # warm the import caches
    seconds = min(timed(lambda: summary(name, batch=batch))[0] for _ in range(3))
    result = summary(name, batch=batch)
    return seconds, {"params": result.totals.params, "flops": result.totals.flops, "macs": result.totals.macs}


def run_torchinfo(model, shape):
    import torchinfo

    seconds, stats = timed(lambda: torchinfo.summary(model, input_size=shape, verbose=0, device="cpu"))
    return seconds, {"params": stats.total_params, "macs": stats.total_mult_adds}


def run_fvcore(model, shape):
    from fvcore.nn import FlopCountAnalysis

    logging.getLogger("fvcore").setLevel(logging.ERROR)
    x = torch.randn(shape)

    def count():
        analysis = FlopCountAnalysis(model, x)
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        return analysis.total()

    seconds, total = timed(count)
    return seconds, {"macs": total}  # fvcore's "flops" are one per multiply-add


def run_ptflops(model, shape):
    from ptflops import get_model_complexity_info

    with contextlib.redirect_stdout(io.StringIO()):
        seconds, (macs, params) = timed(lambda: get_model_complexity_info(
            model, tuple(shape[1:]), as_strings=False, print_per_layer_stat=False, backend="pytorch"))
    return seconds, {"params": params, "macs": macs}


def run_flop_counter(model, shape):
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.randn(shape)

    def count():
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(x)
        return counter.get_total_flops()

    seconds, flops = timed(count)
    return seconds, {"flops": flops}


RUNNERS = {"torchinfo": run_torchinfo, "fvcore": run_fvcore, "flop_counter": run_flop_counter, "ptflops": run_ptflops}


def measure_one(name: str, batch: int, tool: str) -> None:
    """Child process: one tool on one model and batch; prints (seconds, report) as JSON."""
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    if tool == "cnnlab":
        print(json.dumps(run_cnnlab(name, batch)))
        return
    model = cnnlab.create_model(name).eval()
    shape = (batch, *model.default_input_size)
    if batch == 1:  # warm up (first-call costs), as cnnlab's best-of-3 is warm; batch 128 runs once
        RUNNERS[tool](model, shape)
    print(json.dumps(RUNNERS[tool](model, shape)))


def measure(name: str, batch: int, tool: str, timeout: int = 600):
    """Each measurement in a fresh process: a tool that runs out of memory is a result, not a crash."""
    import subprocess
    import sys

    try:
        done = subprocess.run([sys.executable, __file__, "--one", name, str(batch), tool], capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, {"error": f"over {timeout} s"}
    if done.returncode != 0:
        reason = "killed: out of memory (24 GiB)" if done.returncode in (-9, 137) else done.stderr.strip().splitlines()[-1][:120]
        return None, {"error": reason}
    seconds, report = json.loads(done.stdout.strip().splitlines()[-1])
    return seconds, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 128])
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    parser.add_argument("--one", nargs=3, metavar=("MODEL", "BATCH", "TOOL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        measure_one(args.one[0], int(args.one[1]), args.one[2])
        return
    results = []
    for name in args.models:
        for batch in args.batches:
            row = {"model": name, "batch": batch}
            for tool in ("cnnlab", "torchinfo", "fvcore", "flop_counter") + (("ptflops",) if batch == 1 else ()):
                row[tool] = tuple(measure(name, batch, tool))
            results.append(row)
            times = "  ".join(f"{tool} {value[0]:.3f}s" if value[0] is not None else f"{tool} failed"
                              for tool, value in row.items() if isinstance(value, tuple))
            print(f"{name:12} batch {batch:4}: {times}", flush=True)
    print()
    print("| model | batch | cnnlab (s) | torchinfo (s) | x | fvcore (s) | x | FlopCounterMode (s) | x | ptflops (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in results:
        base = row["cnnlab"][0]

        def cell(tool):
            value = row.get(tool)
            if value is None:
                return "", ""
            if value[0] is None:
                return "failed", ""
            return f"{value[0]:.3f}", f"{value[0] / base:.0f}x"

        ti, fv, fc, pt = cell("torchinfo"), cell("fvcore"), cell("flop_counter"), cell("ptflops")
        print(f"| {row['model']} | {row['batch']} | {base:.3f} | {ti[0]} | {ti[1]} | {fv[0]} | {fv[1]} | {fc[0]} | {fc[1]} | {pt[0] or 'batch 1 only'} |")
    print()
    print("| model | batch | cnnlab params / GMACs | torchinfo params / GMACs | fvcore GMACs | FlopCounterMode GFLOPs | ptflops params / GMACs |")
    print("|---|---|---|---|---|---|---|")
    for row in results:
        c = row["cnnlab"][1]
        ti, fv, fc = row["torchinfo"][1], row["fvcore"][1], row["flop_counter"][1]
        if any("error" in report for report in (ti, fv, fc)):
            errors = "; ".join(f"{tool}: {row[tool][1]['error']}" for tool in ("torchinfo", "fvcore", "flop_counter") if "error" in row[tool][1])
            print(f"| {row['model']} | {row['batch']} | {c['params']:,} / {c['macs'] / 1e9:.2f} | {errors} | | | |")
            continue
        pt = row.get("ptflops", (None, {}))[1]
        pt = pt if "macs" in pt else {}
        print(f"| {row['model']} | {row['batch']} | {c['params']:,} / {c['macs'] / 1e9:.2f} | "
              f"{ti.get('params', 0):,} / {ti.get('macs', 0) / 1e9:.2f} | {fv.get('macs', 0) / 1e9:.2f} | "
              f"{fc.get('flops', 0) / 1e9:.2f} | " + (f"{pt['params']:,} / {pt['macs'] / 1e9:.2f}" if pt else "") + " |")
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(results, handle, indent=2, default=str)


if __name__ == "__main__":
    main()
