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


def model_kwargs(args: argparse.Namespace) -> dict:
    """A zoo model's options from the command line: --set KEY=VALUE, --num-classes, --in-chans."""
    kwargs = variant_kwargs(getattr(args, "variant_options", None) or [])
    for option in ("num_classes", "in_chans"):
        if getattr(args, option, None) is not None:
            kwargs[option] = getattr(args, option)
    return kwargs


def user_module_and_input(args: argparse.Namespace, kwargs: dict):
    """For MODEL given as FILE.py:NAME (a module of the user's own): (the module, its input size or
    sizes, their dtypes); None for a zoo name. Zoo options and a missing --input are refused."""
    from cnnlab.analysis.user_module import load_user_module, names_a_user_module, parse_typed_inputs

    if not names_a_user_module(args.model):
        return None
    if kwargs:
        raise CnnlabError(f"--num-classes, --in-chans and --set are for zoo models; {args.model} is built as its "
                          "file builds it")
    if not args.input:
        raise CnnlabError(f"{args.model} is a module of your own: give its input, e.g. --input 3x32x32, or "
                          "--input 1x128:long for token indices (several inputs joined by +)")
    shapes, dtypes = parse_typed_inputs(args.input)
    return load_user_module(args.model), (shapes if len(shapes) > 1 else shapes[0]), dtypes


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
