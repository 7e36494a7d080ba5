"""`cnnlab export` and `cnnlab bench`: deployable files, and what they cost at inference."""

from __future__ import annotations

import argparse

import torch

from cnnlab.cli.options import console
from cnnlab.errors import CnnlabError
from cnnlab.models.from_checkpoint import model_from_source


def add_commands(commands: argparse._SubParsersAction) -> None:
    export = commands.add_parser(
        "export", help="fold BatchNorm and export to ONNX / ExportedProgram / TorchScript",
        description="Export a checkpoint (or a zoo model with its initial weights) for inference. --fold-bn folds every "
                    "BatchNorm that follows a conv or linear layer into it and says which stayed and why. ONNX files "
                    "are checked with onnx.checker and run by ONNX Runtime against PyTorch.",
    )
    export.add_argument("source", metavar="CHECKPOINT|MODEL", help="a run folder, a checkpoint .json/.safetensors, or a zoo model name")
    export.add_argument("--fold-bn", action="store_true", help="fold BatchNorm into the preceding conv/linear layers")
    export.add_argument("--onnx", default=None, metavar="OUT.onnx")
    export.add_argument("--opset", type=int, default=18)
    export.add_argument("--dynamic-batch", action="store_true", help="let the ONNX file take any batch size")
    export.add_argument("--exported-program", default=None, metavar="OUT.pt2", help="torch.export's ExportedProgram")
    export.add_argument("--torchscript", default=None, metavar="OUT.pt", help="a traced TorchScript module")
    export.add_argument("--batch", type=int, default=1, help="batch size of the example input (default 1)")
    export.set_defaults(run=run_export)

    bench = commands.add_parser(
        "bench", help="inference latency: eager, BN-folded, channels_last, compile, ONNX Runtime",
        description="Median, p90 and p99 latency and throughput of a model in several forms, measured side by side "
                    "(the forms take turns, 5 calls each, so a drift in the machine's speed falls on all alike).",
    )
    bench.add_argument("source", metavar="MODEL|CHECKPOINT")
    bench.add_argument("--batch", default="1,32", help="comma-separated batch sizes (default 1,32)")
    bench.add_argument("--threads", type=int, default=None, help="torch (and ONNX Runtime) threads")
    bench.add_argument("--variants", default=None,
                       help="forms to time (default eager,folded,channels_last,compile,onnxruntime, and fp16,bf16 on a GPU)")
    bench.add_argument("--iterations", type=int, default=30)
    bench.add_argument("--warmup", type=int, default=5)
    bench.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    bench.set_defaults(run=run_bench)


def run_export(args: argparse.Namespace) -> int:
    from cnnlab.deploy import export_onnx, export_program, export_torchscript, fold_batchnorm

    if not (args.onnx or args.exported_program or args.torchscript):
        raise CnnlabError("say what to write: --onnx OUT.onnx, --exported-program OUT.pt2 and/or --torchscript OUT.pt")
    out = console()
    model, size, description = model_from_source(args.source)
    example = torch.randn(args.batch, *size)
    if args.fold_bn:
        folded, report = fold_batchnorm(model, example[:1])
        with torch.no_grad():
            difference = (folded(example) - model(example)).abs().max().item()
        out.print(f"{description}: {report.summary()}; outputs differ by {difference:.1e} at most", highlight=False)
        model = folded
    if args.onnx:
        info = export_onnx(model, example, args.onnx, opset=args.opset, dynamic_batch=args.dynamic_batch)
        out.print(f"wrote {info['path']} (ONNX opset {info['opset']}, {info['bytes'] / 2**20:.1f} MB"
                  f"{', any batch size' if args.dynamic_batch else ''}); onnx.checker passed; ONNX Runtime matches PyTorch "
                  f"to {info['max_relative_difference']:.1e}", highlight=False)
    if args.exported_program:
        info = export_program(model, example, args.exported_program)
        out.print(f"wrote {info['path']} (ExportedProgram, {info['bytes'] / 2**20:.1f} MB; torch.export.load reads it)", highlight=False)
    if args.torchscript:
        info = export_torchscript(model, example, args.torchscript)
        out.print(f"wrote {info['path']} (TorchScript, {info['bytes'] / 2**20:.1f} MB)", highlight=False)
    return 0


def run_bench(args: argparse.Namespace) -> int:
    from cnnlab.deploy import benchmark
    from cnnlab.deploy.bench import VARIANTS

    try:
        batches = tuple(int(b) for b in args.batch.split(","))
    except ValueError:
        raise CnnlabError(f"--batch takes comma-separated sizes like 1,32, not {args.batch!r}") from None
    from cnnlab.train.distributed import pick_device

    device = pick_device(args.device)
    default = "eager,folded,channels_last,compile,onnxruntime" + (",fp16,bf16" if device.type == "cuda" else "")
    variants = tuple(v.strip() for v in (args.variants or default).split(","))
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise CnnlabError(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    model, size, description = model_from_source(args.source)
    results = benchmark(model, size, batches, variants, args.warmup, args.iterations, device=device)
    from rich.table import Table

    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    table = Table(title=f"{description}: {'x'.join(map(str, size))}, {where}")
    for column in ("form", "batch", "median (ms)", "p90 (ms)", "p99 (ms)", "images/s", "vs eager", "note"):
        table.add_column(column, justify="left" if column in ("form", "note") else "right")
    eager = {r.batch: r.median_ms for r in results if r.variant == "eager"}
    for r in results:
        speedup = f"{eager[r.batch] / r.median_ms:.2f}x" if r.batch in eager and r.images_per_second else ""
        table.add_row(r.variant, str(r.batch), f"{r.median_ms:.2f}", f"{r.p90_ms:.2f}", f"{r.p99_ms:.2f}",
                      f"{r.images_per_second:,.1f}", speedup, r.note)
    console().print(table)
    return 0
