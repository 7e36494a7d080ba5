"""Argument helpers shared by several commands."""

from __future__ import annotations

import argparse
import ast

from cnnlab.errors import CnnlabError


def console(width: int = 120):
    """A rich console; `width` columns when the output is not a terminal, so logs keep tables whole."""
    import sys

    from rich.console import Console

    # soft_wrap: lines of text are never broken (logs stay greppable); tables still fit the width.
    return Console(soft_wrap=True) if sys.stdout.isatty() else Console(width=width, soft_wrap=True)


def add_model_options(parser: argparse.ArgumentParser, user_modules: bool = False) -> None:
    parser.add_argument("model", metavar="MODEL", help="a model name (see `cnnlab models`)" + (
        ", or a module of your own as FILE.py:NAME or package.module:NAME (a class built without arguments, a "
        "function that returns a module, or a module object; give its --input)" if user_modules else ""))
    parser.add_argument("--num-classes", type=int, default=None, help="output classes (default: the paper's)")
    parser.add_argument("--in-chans", type=int, default=None, help="input channels (default: the paper's)")
    parser.add_argument(
        "--set", dest="variant_options", action="append", default=[], metavar="KEY=VALUE",
        help="a variant option of the model's builder, e.g. --set activation=relu --set batch_norm=true",
    )


def variant_kwargs(pairs: list[str]) -> dict:
    """Parse KEY=VALUE pairs; values read as Python literals (1, 0.5, true, 'x') or left as text."""
    options = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise CnnlabError(f"--set expects KEY=VALUE, got {pair!r} (e.g. --set batch_norm=true)")
        lowered = text.strip().lower()
        if lowered in ("true", "false"):
            value = lowered == "true"
        else:
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                value = text
        options[key.strip().replace("-", "_")] = value
    return options


def build_model(args: argparse.Namespace):
    from cnnlab.models import create_model

    options = variant_kwargs(args.variant_options)
    return create_model(args.model, num_classes=args.num_classes, in_chans=args.in_chans, **options)
