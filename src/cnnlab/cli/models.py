"""`cnnlab models` and `cnnlab show`: what the zoo holds and how a network is put together."""

from __future__ import annotations

import argparse
import json

import torch
from rich.table import Table
from rich.tree import Tree

from cnnlab.cli.options import add_model_options, build_model, console
from cnnlab.models import accepted_input_sizes, create_model, get_entry, list_models


def add_commands(commands: argparse._SubParsersAction) -> None:
    listing = commands.add_parser("models", help="list the model zoo", description="List the model zoo: family, paper, input size and parameter count.")
    listing.add_argument("pattern", nargs="?", default=None, metavar="PATTERN", help="shell-style filter, e.g. 'vgg*'")
    listing.add_argument("--format", choices=("table", "json"), default="table")
    listing.set_defaults(run=run_models)

    show = commands.add_parser("show", help="print a model's module tree", description="Print a model's module tree with each module's parameter count.")
    add_model_options(show)
    show.add_argument("--depth", type=int, default=None, help="open the tree only this many levels deep")
    show.set_defaults(run=run_show)


def zoo_rows(pattern: str | None) -> list[dict]:
    rows = []
    for name in list_models(pattern):
        entry = get_entry(name)
        with torch.device("meta"):  # shapes only: no memory, no initialisation cost
            model = create_model(name)
        channels, height, width = entry.input_size
        rows.append({
            "name": name,
            "family": entry.family,
            "paper": entry.paper,
            "input": f"{channels}x{height}x{width}",
            "num_classes": entry.num_classes,
            "params": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "description": entry.description,
        })
    return rows


def run_models(args: argparse.Namespace) -> int:
    rows = zoo_rows(args.pattern)
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        console().print(f"no model matches {args.pattern!r}; run `cnnlab models` to see them all")
        return 1
    table = Table(title=f"cnnlab model zoo ({len(rows)} models)")
    for column, justify in (("Model", "left"), ("Family", "left"), ("Paper", "left"), ("Input", "right"), ("Classes", "right"), ("Params", "right")):
        table.add_column(column, justify=justify)
    for row in rows:
        table.add_row(row["name"], row["family"], row["paper"], row["input"], str(row["num_classes"]), f"{row['params']:,}")
    console().print(table)
    return 0


def module_tree(model: torch.nn.Module, name: str, depth: int | None = None) -> Tree:
    def label(module_name: str, module: torch.nn.Module) -> str:
        params = sum(p.numel() for p in module.parameters())
        children = list(module.children())
        text = f"[bold]{module_name}[/bold]: {type(module).__name__}"
        if not children:
            extra = module.extra_repr()
            text += f"({extra})" if extra else ""
        return text + (f"  [dim]{params:,} params[/dim]" if params else "")

    def grow(tree: Tree, module: torch.nn.Module, level: int) -> None:
        if depth is not None and level >= depth:
            return
        for child_name, child in module.named_children():
            grow(tree.add(label(child_name, child)), child, level + 1)

    root = Tree(label(name, model))
    grow(root, model, 0)
    return root


def run_show(args: argparse.Namespace) -> int:
    with torch.device("meta"):
        model = build_model(args)
    entry = get_entry(args.model)
    out = console()
    out.print(module_tree(model, args.model, args.depth))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    channels, height, width = model.default_input_size
    smallest, largest = accepted_input_sizes(model)
    accepts = f"{smallest}x{smallest} and up" if largest is None else f"{smallest}x{smallest} to {largest}x{largest}"
    out.print(
        f"{args.model}: {entry.description}\n{trainable:,} trainable parameters; input "
        f"{channels}x{height}x{width} (accepts {accepts}); {model.num_classes} classes; paper: {entry.paper}"
    )
    return 0
