"""The `cnnlab` command: one sub-command per job, each a thin layer over the library."""

from __future__ import annotations

import argparse
import contextlib
import sys

from cnnlab.errors import CnnlabError


def build_parser() -> argparse.ArgumentParser:
    from cnnlab.cli import analysis, data, demo, deploy, models, op, train, viz

    parser = argparse.ArgumentParser(
        prog="cnnlab",
        description="Build, inspect, train, transfer and deploy the classic convolutional networks.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    for module in (models, analysis, op, data, train, deploy, viz, demo):
        module.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        with _notes(args.command):
            return args.run(args) or 0
    except CnnlabError as error:
        print(f"cnnlab {args.command}{_rank()}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


@contextlib.contextmanager
def _notes(command: str):
    """cnnlab's own warnings (a checkpoint read past an uncommitted save) as one note line each."""
    import warnings

    from cnnlab.checkpoint import CheckpointFallback

    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, CheckpointFallback):
            print(f"cnnlab {command}{_rank()}: note: {message}", file=sys.stderr)
        else:
            shown(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():  # which also restores showwarning afterwards
        warnings.simplefilter("once", CheckpointFallback)
        warnings.showwarning = show
        yield


def _rank() -> str:
    """' (rank R of N)' in a torchrun worker, so a failure names its process."""
    import os

    size = int(os.environ.get("WORLD_SIZE", "1"))
    return f" (rank {os.environ.get('RANK', '?')} of {size})" if size > 1 else ""


def _version() -> str:
    from cnnlab import __version__

    return __version__
