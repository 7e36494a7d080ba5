"""`cnnlab data info` and `cnnlab data show`: what a data set holds, and what the network sees."""

from __future__ import annotations

import argparse
import time

import torch

from cnnlab.cli.options import console
from cnnlab.data import image_stats, load_source


def add_commands(commands: argparse._SubParsersAction) -> None:
    data = commands.add_parser("data", help="inspect a data set", description="Inspect the image sets cnnlab reads.")
    sub = data.add_subparsers(dest="data_command", metavar="COMMAND")
    sub.required = True
    info = sub.add_parser("info", help="size, shape, classes, per-class counts, mean/std",
                          description="Size, image shape, classes, per-class counts and the training split's mean/std.")
    info.add_argument("name", metavar="NAME", help="mnist-embedded, fashion-mnist[:DIR], mnist:DIR, kmnist:DIR, cifar10:DIR, cifar100:DIR, folder:DIR")
    info.add_argument("--image-size", type=int, default=64, help="side the images of a folder set are read at")
    info.set_defaults(run=run_info)
    show = sub.add_parser("show", help="a labelled grid of samples (PNG)",
                          description="Write a labelled grid of samples, optionally after augmentation.")
    show.add_argument("name", metavar="NAME")
    show.add_argument("--out", required=True, help="the PNG to write")
    show.add_argument("--count", type=int, default=32, help="how many samples (default 32)")
    show.add_argument("--augmented", action="store_true", help="show them as training sees them")
    show.add_argument("--augment", default=None, help="augmentation (a preset: none, digits, cifar, imagenet; or crop=4,flip,...)")
    show.add_argument("--size", type=int, default=None, help="resize to this side (e.g. a model's input)")
    show.add_argument("--seed", type=int, default=0)
    show.add_argument("--image-size", type=int, default=64)
    show.set_defaults(run=run_show)


def run_info(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    source = load_source(args.name, image_size=args.image_size)
    seconds = time.perf_counter() - started
    mean, std = image_stats(source.train)
    out = console()
    c, h, w = source.image_shape
    out.print(f"[bold]{source.name}[/bold]: {len(source.train):,} training images"
              + (f", {len(source.test):,} test images" if source.test is not None else " (no published test split)")
              + f"; {c}x{h}x{w} uint8; {len(source.class_names)} classes; read in {seconds:.2f} s")
    out.print(f"mean {', '.join(f'{m:.4f}' for m in mean)}; std {', '.join(f'{s:.4f}' for s in std)} (training split, [0, 1] units)")
    train_counts = torch.bincount(source.train.labels, minlength=len(source.class_names)).tolist()
    test_counts = (torch.bincount(source.test.labels, minlength=len(source.class_names)).tolist()
                   if source.test is not None else None)
    from rich.table import Table

    table = Table(title="images per class")
    for column in ("#", "class", "train") + (("test",) if test_counts else ()):
        table.add_column(column, justify="left" if column == "class" else "right")
    for index, name in enumerate(source.class_names):
        row = [str(index), name, f"{train_counts[index]:,}"] + ([f"{test_counts[index]:,}"] if test_counts else [])
        table.add_row(*row)
    out.print(table)
    for note in source.notes:
        out.print(f"note: {note}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from cnnlab.viz.samples import sample_grid

    path, count, side = sample_grid(args.name, args.out, args.count, args.seed, args.size, args.augment, args.augmented,
                                    args.image_size)
    console().print(f"wrote {path} ({count} samples, {side}x{side})")
    return 0
