"""Transfer on Fashion-MNIST, measured: a network pretrained on classes 0-4 (T-shirt/top, Trouser,
Pullover, Dress, Coat) moves to classes 5-9 (Sandal, Shirt, Sneaker, Bag, Ankle boot), which it
has never seen. The three transfer modes against training from scratch, with the same model,
epochs and target images; test top-1 on the 5,000 test images of classes 5-9, and wall time.
Then the linear probe's epoch with cached features against one that runs the frozen backbone.

    cnnlab train resnet20 --data 'fashion-mnist[0-4]' --epochs 8 --schedule cosine --out runs/pretrain-0-4
    python benchmarks/transfer.py --init runs/pretrain-0-4 [--subsets 1000,5000] [--epochs 10]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from cnnlab.train import TrainConfig, fit
from cnnlab.checkpoint import read_meta, resolve

MODES = ("scratch", "linear-probe", "finetune", "progressive")


def run(mode: str, init: str, model: str, subset: int, epochs: int, out: Path, **extra) -> dict:
    settings = dict(model=model, data="fashion-mnist[5-9]", epochs=epochs, subset=subset, out=str(out), schedule="cosine",
                    seed=0, **extra)
    if mode == "scratch":
        config = TrainConfig(**settings)
    else:
        config = TrainConfig(**settings, transfer=mode, init=init, head_epochs=2)
    lines: list[str] = []
    result = fit(config, log=lines.append)
    cache = [line.split(" in ")[-1].split(" s ")[0] for line in lines if "computed once" in line]
    train_seconds = sum(r["seconds"] for r in result.history)
    return {"mode": mode, "subset": subset, "test_top1": result.test["top1"], "seconds": result.seconds,
            "train_seconds": train_seconds, "epochs": len(result.history), "history": result.history,
            "cache_seconds": float(cache[0]) if cache else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--init", required=True, help="the run pretrained on fashion-mnist[0-4]")
    parser.add_argument("--subsets", default="1000,5000", help="target training images per run")
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    model = read_meta(resolve(args.init)).model
    with tempfile.TemporaryDirectory() as folder:
        print(f"{model} pretrained on fashion-mnist[0-4] ({args.init}), transferred to fashion-mnist[5-9]; "
              f"{args.epochs} epochs (transfer modes: 2 of them head-only), cosine schedule, test = 5,000 images\n")
        print("| target images | mode | test top-1 | wall time (s) | training epochs (s) |")
        print("|---:|---|---:|---:|---:|")
        for subset in (int(v) for v in args.subsets.split(",")):
            for mode in MODES:
                epochs = args.epochs - 2 if mode in ("finetune", "progressive") else args.epochs  # + 2 head epochs
                r = run(mode, args.init, model, subset, epochs, Path(folder) / f"{mode}-{subset}")
                print(f"| {subset:,} | {mode} | {r['test_top1']:.2%} | {r['seconds']:.1f} | {r['train_seconds']:.1f} |", flush=True)
        print("\nlinear probe, per epoch (mean of epochs 2-5; epoch 1 warms up):")
        for cache in (True, False):
            r = run("linear-probe", args.init, model, 27000, 5, Path(folder) / f"probe-{cache}", feature_cache=cache,
                    augment="none")
            per_epoch = sum(h["seconds"] for h in r["history"][1:]) / 4
            print(f"  {'cached features' if cache else 'backbone each epoch'}: {per_epoch:.4f} s per epoch"
                  + (f" (after {r['cache_seconds']:.1f} s computing the cache once)" if cache else "")
                  + f", test top-1 {r['test_top1']:.2%}, run {r['seconds']:.1f} s", flush=True)


if __name__ == "__main__":
    main()
