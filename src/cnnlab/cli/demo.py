"""`cnnlab demo`: the main job on the embedded digits, with no download and no arguments."""

from __future__ import annotations

import argparse
import time

import torch

from cnnlab.cli.options import console
from cnnlab.data import load_mnist_embedded
from cnnlab.models import create_model


def add_commands(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser(
        "demo", help="run lenet5_modern on the embedded MNIST digits",
        description="Run LeNet (seed 002's PyTorch LeNet) on real MNIST digits shipped with the package.",
    )
    demo.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    out = console()
    started = time.perf_counter()
    digits = load_mnist_embedded()
    out.print(
        f"[bold]embedded MNIST[/bold]: {len(digits):,} real digits, images {tuple(digits.images.shape)} "
        f"{digits.images.dtype}, {len(digits.class_names)} classes, read in {time.perf_counter() - started:.2f} s"
    )
    torch.manual_seed(0)
    model = create_model("lenet5_modern").eval()
    batch = digits.images[::500].float() / 255.0  # one digit of each class
    out.print(f"[bold]lenet5_modern[/bold] forward on one digit of each class, input {tuple(batch.shape)}:")
    x = batch
    with torch.no_grad():
        for name, module in model.features.named_children():
            x = module(x)
            out.print(f"  features.{name:<8} -> {tuple(x.shape)}")
        for name, module in model.pre_logits.named_children():
            x = module(x)
            out.print(f"  pre_logits.{name:<6} -> {tuple(x.shape)}")
        x = model.fc3(x)
        out.print(f"  fc3             -> {tuple(x.shape)}")
    out.print(
        f"labels {digits.labels[::500].tolist()}; untrained predictions {x.argmax(1).tolist()} "
        "(training arrives with `cnnlab train`)"
    )
    return 0
