"""`cnnlab train`, `evaluate` and `predict`."""

from __future__ import annotations

import argparse
import os
from dataclasses import fields
from pathlib import Path

from cnnlab.cli.options import console, variant_kwargs
from cnnlab.train.precision import AMP_CHOICES


def add_commands(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser(
        "train", help="train a model on a data set", argument_default=argparse.SUPPRESS,
        description="Train a zoo model with the seeds' practices; unset settings take the family's paper defaults "
                    "(printed at the start). Writes RUN_DIR with checkpoints, metrics and curves.",
    )
    train.add_argument("model", metavar="MODEL", help="a zoo model (`cnnlab models` lists them)")
    add_training_arguments(train, "train")
    train.set_defaults(run=run_train)

    transfer = commands.add_parser(
        "transfer", help="transfer trained weights to new data: linear-probe, finetune or progressive",
        argument_default=argparse.SUPPRESS,
        description="Start MODEL from --init weights with a new head for --data's classes, then: linear-probe (backbone "
                    "frozen in eval mode, the head trained on cached features), finetune (the head first, then everything "
                    "at a smaller rate) or progressive (the head first, then per-stage rates decaying toward the input, the "
                    "lowest stages frozen). Writes a normal run folder and reports held-out accuracy.",
    )
    transfer.add_argument("model", metavar="MODEL", help="the zoo model the --init weights are for")
    add_training_arguments(transfer, "transfer")
    transfer.set_defaults(run=run_train)

    evaluate = commands.add_parser("evaluate", help="loss, top-1/top-5, per-class accuracy, confusion matrix",
                                   description="Evaluate a checkpoint (or a run folder's best) on a data set's test split "
                                               "(or its held-out validation split when it has no test split).")
    evaluate.add_argument("checkpoint", metavar="RUN_DIR|CHECKPOINT")
    evaluate.add_argument("--data", default=None, help="data set (default: the one it was trained on)")
    evaluate.add_argument("--split", choices=("test", "val"), default=None)
    evaluate.add_argument("--out", default=None, help="folder for confusion.png/.csv and evaluation.json (default: the run folder)")
    evaluate.add_argument("--device", default="auto")
    evaluate.add_argument("--amp", choices=AMP_CHOICES, default=None,
                          help="precision (default: the run's own, e.g. bf16 for a run trained in bf16)")
    evaluate.set_defaults(run=run_evaluate)

    predict = commands.add_parser("predict", help="top-k classes of image files",
                                  description="Classify image files with a checkpoint, using the run's own preprocessing.")
    predict.add_argument("checkpoint", metavar="CHECKPOINT")
    predict.add_argument("images", nargs="+", metavar="IMAGE")
    predict.add_argument("--top-k", type=int, default=5)
    predict.add_argument("--device", default="cpu")
    predict.add_argument("--amp", choices=AMP_CHOICES, default=None, help="precision (default: the run's own)")
    predict.set_defaults(run=run_predict)


def add_training_arguments(parser: argparse.ArgumentParser, command: str = "train") -> None:
    """One flag per TrainConfig field (name, type, choices and help from train/config.py), plus
    --config, --set and torchrun's launch options."""
    from cnnlab.train.config import TrainConfig

    parser.add_argument("--config", help="a TOML file of settings; command-line flags override it")
    parser.add_argument("--set", dest="variant_options", action="append", metavar="KEY=VALUE",
                        help="a model option, e.g. --set batch_norm=true --set activation=relu")
    scale = parser.add_argument_group("data-parallel (torchrun)", "run under `torchrun --nproc-per-node N -m cnnlab ...`, "
                                      "or give --nproc N to launch torchrun on this machine; --batch-size is per process")
    for setting in fields(TrainConfig):
        group = setting.metadata.get("group")
        if setting.metadata.get("cli", True) is False or (group == "transfer" and command != "transfer"):
            continue
        flag, options = flag_for(setting, command)
        (scale if group == "data-parallel" else parser).add_argument(flag, **options)
    scale.add_argument("--nproc", type=int, help="launch N processes on this machine with torchrun (gloo on CPU, nccl on GPUs)")
    scale.add_argument("--max-restarts", type=int, help="with --nproc: torchrun restarts the job this many times after a "
                                                        "failure; add --resume to continue from the last checkpoint")


def flag_for(setting, command: str) -> tuple[str, dict]:
    """The argparse flag of one TrainConfig field: --batch-size for batch_size; a bool that is off by
    default is a switch, one that is on is --no-NAME, one whose default is the recipe's is
    --NAME/--no-NAME."""
    meta = setting.metadata
    kind = setting.type.replace(" | None", "")  # the annotation as text (config.py has postponed annotations)
    flag = meta.get("flag") or "--" + setting.name.replace("_", "-")
    options: dict = {"dest": setting.name, "help": meta["help"]}
    if "choices" in meta:
        options["choices"] = meta["choices"]
    if "parse" in meta:
        options["type"] = meta["parse"]
    elif kind == "bool":
        if setting.default is None:
            options["action"] = argparse.BooleanOptionalAction
        elif setting.default:
            flag, options["action"] = "--no-" + setting.name.replace("_", "-"), "store_false"
        else:
            options["action"] = "store_true"
    elif kind in ("int", "float"):
        options["type"] = int if kind == "int" else float
    if meta.get("required") or meta.get("required_by") == command:
        options["required"] = True
    return flag, options


def strip_launch_options(argv: list[str]) -> list[str]:
    """The command line without --nproc/--max-restarts (each worker runs the rest)."""
    kept, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item in ("--nproc", "--max-restarts"):
            skip = True
        elif not item.startswith(("--nproc=", "--max-restarts=")):
            kept.append(item)
    return kept


def config_from_args(args: argparse.Namespace):
    from cnnlab.train import TrainConfig
    from cnnlab.train.config import load_toml

    settings = load_toml(args.config) if getattr(args, "config", None) else {}
    known = {f.name for f in fields(TrainConfig)}
    for name, value in vars(args).items():
        if name in known and name != "model_kwargs":
            settings[name] = value
    options = variant_kwargs(getattr(args, "variant_options", None) or [])
    settings["model_kwargs"] = {**settings.get("model_kwargs", {}), **options}
    settings["model"] = args.model
    return TrainConfig(**settings)


def run_train(args: argparse.Namespace) -> int:
    """`cnnlab train`, and `cnnlab transfer` (its --mode lands in TrainConfig.transfer)."""
    from cnnlab.train import fit
    from cnnlab.train.distributed import launch, launched_by_torchrun

    nproc = getattr(args, "nproc", None)
    if nproc is not None and not launched_by_torchrun():
        return launch(nproc, strip_launch_options(args.argv), getattr(args, "max_restarts", 0) or 0)
    from cnnlab.viz.plots import write_curves

    out = console()
    result = fit(config_from_args(args), log=lambda line: out.print(line, highlight=False), progress=out.is_terminal)
    if os.environ.get("RANK", "0") != "0":
        return 0  # rank 0 reports for the job (and draws its curves)
    write_curves(result.out, result.history)
    held_out = (f"test top-1 {result.test['top1']:.2%}" if result.test is not None
                else f"no test split; best val top-1 {result.best['val_top1']:.2%}")
    out.print(f"run folder {result.out}: best.safetensors/.json (epoch {result.best['epoch']}, val top-1 "
              f"{result.best['val_top1']:.2%}), last.*, metrics.jsonl, metrics.csv, curves.png; {held_out}; "
              f"{result.seconds:.1f} s", highlight=False)
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from cnnlab.train.evaluate import evaluate_checkpoint

    from cnnlab.viz.accuracy_plots import write_confusion

    result = evaluate_checkpoint(args.checkpoint, args.data, args.split, args.device, args.amp)
    metrics, meta, precision = result.metrics, result.meta, result.precision
    folder = Path(args.out) if args.out else result.checkpoint.parent
    folder.mkdir(parents=True, exist_ok=True)
    write_confusion(folder, metrics["confusion"], meta.class_names)
    written = [folder / "confusion.png", folder / "confusion.csv", result.write_json(folder)]
    out = console()
    out.print(f"{meta.model} ({result.checkpoint}) on {result.where()}: loss {metrics['loss']:.4f}, "
              f"top-1 {metrics['top1']:.2%}, top-5 {metrics['top5']:.2%}, {metrics['images_per_second']:,.0f} images/s; "
              f"computed in {precision.note}" + (", with test-time flip" if meta.test_flip else ""), highlight=False)
    from rich.table import Table

    table = Table(title="per-class top-1")
    table.add_column("class")
    table.add_column("top-1", justify="right")
    for name, accuracy in zip(meta.class_names, metrics["per_class_top1"]):
        table.add_row(name, f"{accuracy:.2%}")
    out.print(table)
    out.print(f"wrote {', '.join(map(str, written))}")
    return 0


def run_predict(args: argparse.Namespace) -> int:
    from cnnlab.train.evaluate import predict_images

    predictions, precision, meta = predict_images(args.checkpoint, args.images, args.top_k, args.device, args.amp)
    out = console()
    out.print(f"{meta.model}: computed in {precision.note}" + (", with test-time flip" if meta.test_flip else ""),
              highlight=False)
    for prediction in predictions:
        out.print(f"{prediction.path}: " + ", ".join(f"{name} {p:.1%}" for name, p in prediction.top), highlight=False)
    return 0
