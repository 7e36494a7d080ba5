"""`cnnlab summary`, `layer`, `compare` and `rf`: the seeds' by-hand tables, for any network."""

from __future__ import annotations

import argparse
import json
import sys
import re

import torch
from torch import nn

from cnnlab.analysis import formulas, summary
from cnnlab.analysis.formulas import MB, one_decimal
from cnnlab.analysis.inputs import parse_input_size
from cnnlab.analysis.user_module import names_a_user_module
from cnnlab.cli.options import add_model_options, console, model_kwargs, user_module_and_input
from cnnlab.errors import CnnlabError


def add_commands(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "summary", help="per-layer table: activations, params, FLOPs, memory, receptive field",
        description="One row per layer with seed 003's columns (for a whole minibatch), plus MACs, element-wise "
                    "ops and the receptive field; computed on the meta device, so any batch is instant.",
    )
    add_model_options(parser, user_modules=True)
    add_cost_options(parser)
    parser.add_argument("--depth", type=int, default=None, help="fold modules deeper than N levels into one row each")
    parser.add_argument("--explain", nargs="?", const="", default=None, metavar="LAYER",
                        help="print each formula with the numbers put in (all layers, or just LAYER)")
    parser.add_argument("--format", choices=("table", "json", "csv", "md"), default="table")
    parser.add_argument("--measured", action="store_true",
                        help="also run one real training step at --batch and report its measured peak beside the "
                             "simulated one (PyTorch profiler on the CPU, max_memory_allocated on a GPU)")
    parser.add_argument("--device", default="cpu", help="where --measured runs the step: cpu (default) or cuda")
    parser.set_defaults(run=run_summary)

    layer = commands.add_parser(
        "layer", help="one conv, pool or fc layer from its hyper-parameters",
        description="Output size, parameters, FLOPs and memory of one layer, for the seeds' worked exercises.",
    )
    layer.add_argument("kind", choices=("conv", "pool", "fc"))
    layer.add_argument("--input", required=True, help="input size CxHxW (conv, pool) or features (fc), e.g. 3x227x227")
    layer.add_argument("--kernels", type=int, default=None, help="output channels (conv) or features (fc)")
    layer.add_argument("--kernel", type=int, default=1, help="kernel size K (square)")
    layer.add_argument("--stride", type=int, default=1)
    layer.add_argument("--padding", type=int, default=0)
    layer.add_argument("--groups", type=int, default=1)
    layer.add_argument("--no-bias", action="store_true")
    layer.add_argument("--batch", type=int, default=1)
    layer.add_argument("--dtype", choices=tuple(formulas.DTYPE_BYTES), default="float32")
    layer.add_argument("--optimizer", choices=tuple(formulas.OPTIMIZER_COPIES), default="momentum")
    layer.add_argument("--explain", action="store_true", help="print each formula with the numbers put in")
    layer.set_defaults(run=run_layer)

    compare = commands.add_parser(
        "compare", help="totals of several models side by side, and the largest batch that fits",
        description="Totals side by side, with each model's simulated training-step peak beside the seeds' memory "
                    "convention; with --memory, the largest minibatch whose real training step fits (searched over "
                    "batch sizes on fake tensors), and the seeds' answer beside it.",
    )
    compare.add_argument("models", nargs="+", metavar="MODEL")
    add_cost_options(compare)
    compare.add_argument("--memory", default=None, help="device memory, e.g. 16GiB, 16 GB, 900MB, 8000MiB")
    compare.add_argument("--headroom", default=None,
                         help="with --memory: keep this much of it free, a fraction (0.1, 10%%) or a size (1GiB); "
                              "default none, as the simulated step counts what its tensors hold; on a GPU keep room "
                              "for the CUDA context and the caching allocator (docs/analysis.md)")
    compare.add_argument("--format", choices=("table", "json"), default="table")
    compare.add_argument("--sort", default=None, metavar="COLUMN",
                         help="order the rows by params, flops, macs, activations, memory, peak, batch, left or name "
                              "(or a JSON key); '-' first for the largest first, e.g. --sort=-peak")
    compare.add_argument("--plot", default=None, metavar="CHART.png",
                         help="Canziani et al.'s chart: published ImageNet top-1 against GFLOPs, bubble area = parameters")
    compare.set_defaults(run=run_compare)

    plot = commands.add_parser(
        "plot", help="per-layer bars of parameters, FLOPs, memory or receptive field",
        description="One bar per layer, coloured by kind, each kind's share in the title: where the parameters, "
                    "FLOPs and memory of a network sit (the seeds' 'trends to note'). Read from the summary table.",
    )
    add_model_options(plot)
    add_cost_options(plot)
    plot.add_argument("--what", choices=("params", "flops", "memory", "rf"), default="params")
    plot.add_argument("--depth", type=int, default=None, help="one bar per module at this depth")
    plot.add_argument("--out", default=None, help="the image file, .png, .svg or .pdf (default MODEL-WHAT.png)")
    plot.set_defaults(run=run_plot)

    rf = commands.add_parser(
        "rf", help="receptive field, jump and centre of every layer",
        description="r_out = r_in + (K - 1) x j_in, j_out = j_in x S, per layer (the largest where branches meet).",
    )
    add_model_options(rf)
    rf.add_argument("--input", default=None, help="input size CxHxW (default: the model's)")
    rf.add_argument("--depth", type=int, default=None, help="fold modules deeper than N levels into one row each")
    rf.set_defaults(run=run_rf)


def add_cost_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", default=None, help="input size CxHxW, e.g. 3x227x227 (default: the model's)")
    parser.add_argument("--batch", type=int, default=128, help="minibatch size (default 128, as seed 003)")
    parser.add_argument("--dtype", choices=tuple(formulas.DTYPE_BYTES), default="float32")
    parser.add_argument("--optimizer", choices=tuple(formulas.OPTIMIZER_COPIES), default="momentum",
                        help="parameter copies while training: sgd 2, momentum 3 (the seeds'), adam 4")
    parser.add_argument("--amp", choices=("none", "bf16", "fp16"), default="none",
                        help="the simulated training step's autocast (the seeds' columns use --dtype)")
    parser.add_argument("--channels-last", action="store_true", help="simulate the step in channels_last layout")
    parser.add_argument("--no-peak", dest="peak", action="store_false",
                        help="skip the simulated training step (its peak and the Step MB column)")


def _summary_for(args: argparse.Namespace, model: str | nn.Module | None = None, depth: int | None = None,
                 peak: bool = False, input_size=None):
    kwargs = {} if isinstance(model, nn.Module) else model_kwargs(args)
    dtypes = None
    own = user_module_and_input(args, kwargs) if model is None else None  # FILE.py:NAME, a module of the user's own
    if own is not None:
        model, input_size, dtypes = own
    return summary(model or args.model, input_size=input_size or args.input, batch=getattr(args, "batch", 1),
                   dtype=getattr(args, "dtype", "float32"), optimizer=getattr(args, "optimizer", "momentum"),
                   depth=depth, peak=peak, amp=getattr(args, "amp", "none"),
                   channels_last=getattr(args, "channels_last", False), dtypes=dtypes, **kwargs)


def run_summary(args: argparse.Namespace) -> int:
    result = _summary_for(args, depth=args.depth, peak=args.peak or args.measured)
    measured = measured_peak(args, result) if args.measured else None
    if args.format == "json":
        data = result.to_dict()
        if measured is not None:
            data["measured_peak_training"] = measured
        print(json.dumps(data, indent=2))
        return 0
    if args.format == "csv":
        print(result.to_csv(), end="")
        return 0
    if args.format == "md":
        print(result.to_markdown(), end="")
        return 0
    out = console(width=180)
    out.print(result.rich_table())
    for note in result.notes:
        out.print(f"note: {note}")
    if measured is not None:
        predicted = result.training_peak.peak
        out.print(f"measured: one real training step at batch {args.batch} peaked at {one_decimal(measured / MB)} MB "
                  f"on {args.device} (simulated {one_decimal(predicted / MB)} MB, {100 * (predicted / measured - 1):+.1f}%)",
                  highlight=False)
    if args.explain is not None:
        out.print(result.explain(args.explain or None), highlight=False)
    return 0


def measured_peak(args: argparse.Namespace, result) -> int:
    """Run one real training step of the model (random weights) and measure its peak."""
    from cnnlab.analysis.memory import measure_peak
    from cnnlab.models import create_model

    if names_a_user_module(args.model):
        raise CnnlabError("--measured runs a zoo model's training step; for a module of your own, measure it with "
                          "cnnlab.analysis.memory.measure_peak(model, input_size, batch) from Python")

    from cnnlab.resources import ensure_fits

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise CnnlabError("--device cuda: no GPU is visible here; measure on the CPU (--device cpu)")
    ensure_fits(result.training_peak.peak, f"one real training step of {result.model_name} at batch {args.batch:,} "
                f"(input {'x'.join(map(str, result.input_size))}; simulated)",
                "measure at a smaller --batch or --input, or leave out --measured: the simulated step above needs no "
                "memory", args.device)
    size = parse_input_size(args.input) if args.input else None
    model = create_model(args.model, input_size=size, **model_kwargs(args))
    return measure_peak(model, result.input_size, args.batch, args.optimizer, args.amp, args.channels_last, args.device)


def run_layer(args: argparse.Namespace) -> int:
    out = console()
    if args.kind == "fc":
        in_features = _features(args.input)
        if args.kernels is None:
            raise CnnlabError("an fc layer needs --kernels N (its number of output features)")
        module = nn.Linear(in_features, args.kernels, bias=not args.no_bias, device="meta")
        size: tuple[int, ...] = (in_features,)
    else:
        size = parse_input_size(args.input)
        if args.kind == "conv":
            if args.kernels is None:
                raise CnnlabError("a conv layer needs --kernels N (its number of filters)")
            if size[0] % args.groups or args.kernels % args.groups:
                raise CnnlabError(f"--groups {args.groups} must divide both the input channels ({size[0]}) and --kernels ({args.kernels})")
            module = nn.Conv2d(size[0], args.kernels, args.kernel, args.stride, args.padding, groups=args.groups,
                               bias=not args.no_bias, device="meta")
        else:
            module = nn.MaxPool2d(args.kernel, args.stride, args.padding)
    # One layer as a net of its own (an fc layer flattens its input first), walked like any model.
    net, shape = (nn.Sequential(module), size) if len(size) == 3 else (nn.Sequential(nn.Flatten(), module), (size[0], 1, 1))
    try:
        result = summary(net, input_size=shape, batch=args.batch, dtype=args.dtype, optimizer=args.optimizer)
    except Exception as error:  # noqa: BLE001 - the message names the layer's own problem
        if isinstance(error, CnnlabError):
            raise
        raise CnnlabError(f"this {args.kind} layer cannot take a {args.input} input: {str(error).splitlines()[0]}") from None
    row = result.rows[-1]
    shape = "x".join(map(str, row.output_shape))
    out.print(f"{args.kind} layer on {args.input}, minibatch {args.batch}: output {shape} ({row.activations:,} activations per image)")
    out.print(f"  params {row.params:,}; FLOPs {one_decimal(row.flops / 1e6)} M; MACs {one_decimal(row.macs / 1e6)} M; "
              f"activation memory {one_decimal(row.activation_memory / MB)} MB; parameter memory {one_decimal(row.parameter_memory / MB)} MB")
    if args.explain:
        out.print("\n".join(f"  {line}" for line in row.explain), highlight=False)
    return 0


def _features(text: str) -> int:
    """Features of an fc layer's input: '9216', '9,216' or a shape such as '256x6x6'."""
    values = [int(v.replace(",", "")) for v in re.split(r"\s*x\s*", text.strip())]
    total = 1
    for v in values:
        total *= v
    return total


def run_compare(args: argparse.Namespace) -> int:
    from cnnlab.analysis.compare import compare

    comparison = compare(args.models, input_size=args.input, batch=args.batch, dtype=args.dtype, optimizer=args.optimizer,
                         amp=args.amp, channels_last=args.channels_last, peak=args.peak, memory=args.memory,
                         headroom=args.headroom, **model_kwargs(args))
    if args.sort:
        comparison.sort(args.sort)
    rows = comparison.rows
    if args.plot:
        from cnnlab.viz.plots import complexity_chart

        path, missing = complexity_chart(comparison.summaries, args.plot)
        notice = f"wrote {path}" + (f"; left out (no published ImageNet accuracy): {', '.join(missing)}" if missing else "")
        print(notice, file=sys.stderr if args.format == "json" else sys.stdout)
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return 0
    from rich.table import Table

    table = Table(title=comparison.title)
    for header in comparison.headers():
        table.add_column(header, justify="left" if header == "Model" else "right")
    for values in comparison.table_rows():
        table.add_row(*values)
    out = console(width=200)
    out.print(table)
    for line in comparison.explanations:
        out.print(line, highlight=False)
    return 0


def run_plot(args: argparse.Namespace) -> int:
    from cnnlab.viz.plots import layer_bars

    result = _summary_for(args, depth=args.depth)
    path, title = layer_bars(result, args.what, args.out or f"{args.model}-{args.what}.png")
    console().print(f"wrote {path}: {title}", highlight=False)
    return 0


def run_rf(args: argparse.Namespace) -> int:
    args.batch, args.dtype, args.optimizer = 1, "float32", "momentum"
    result = _summary_for(args, depth=args.depth)
    from rich.table import Table

    table = Table(title=f"{result.model_name}: receptive field of each layer's output, in input pixels")
    for column in ("Layer", "Kernel", "S", "P", "Output H/W", "RF size", "Jump", "Centre of first unit"):
        table.add_column(column, justify="left" if column == "Layer" else "right")
    for row in result.rows:
        if row.kind in ("activation", "dropout", "norm") and args.depth is None:
            continue
        kernel = "x".join(map(str, sorted(set(row.kernel_size)))) if row.kernel_size else ""
        table.add_row(row.name, kernel, str(row.stride[0]) if row.stride else "", str(row.padding[0]) if row.padding else "",
                      row.height_width, row.rf_text, "" if row.jump is None or row.whole_image else str(row.jump),
                      "" if row.rf_centre is None else f"{row.rf_centre:g}")
    console().print(table)
    return 0
