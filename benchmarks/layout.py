"""Which memory layout and compilation pay, per model family, on this machine: one training step
(forward, backward, SGD step) in float32 and bf16 autocast, NCHW against channels_last, eager
against torch.compile. The defaults in train/config.py (CHANNELS_LAST_FAMILIES) come from this.

    python benchmarks/layout.py [--compile] [--steps 6] [--families resnet_cifar,lenet]

Each family is timed on one representative model at a small input (the CPU's budget), forms in
turns so a drift in the machine's speed falls on all of them alike.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

import cnnlab

# family -> (model, model options, channels, side, batch)
REPRESENTATIVES = {
    "lenet": ("lenet5_modern", dict(batch_norm=True, activation="relu", pool="max"), 1, 28, 128),
    "resnet_cifar": ("resnet20", {}, 1, 28, 128),
    "alexnet": ("alexnet_owt", {}, 3, 96, 32),
    "vgg": ("vgg11_bn", {}, 3, 64, 32),
    "nin": ("nin", {}, 3, 96, 32),
    "googlenet": ("googlenet_tv", {}, 3, 96, 32),
    "inception": ("inception_v3", {}, 3, 107, 16),
    "resnet": ("resnet18", {}, 3, 96, 32),
    "resnext": ("resnext50_32x4d", {}, 3, 64, 16),
    "wide_resnet": ("wrn28_10", {}, 3, 32, 16),
    "densenet": ("densenet121", {}, 3, 64, 16),
    "squeezenet": ("squeezenet1_1", {}, 3, 96, 32),
    "shufflenet": ("shufflenet_v2_x1_0", {}, 3, 96, 32),
}


def step_function(family: str, channels_last: bool, amp: bool, compiled: bool):
    name, options, channels, side, batch = REPRESENTATIVES[family]
    torch.manual_seed(0)
    model = cnnlab.create_model(name, num_classes=10, in_chans=channels, **options)
    x = torch.randn(batch, channels, side, side)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    forward = torch.compile(model) if compiled else model

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            output = forward(x)
            logits = output[0] if isinstance(output, tuple) else output
            loss = F.cross_entropy(logits, y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step, batch


def measure(family: str, compiled: bool, steps: int, rounds: int = 3) -> dict:
    forms = {}
    for amp in (False, True):
        for channels_last in (False, True):
            for compile_ in ((False, True) if compiled else (False,)):
                key = ("bf16" if amp else "float32") + (" channels_last" if channels_last else " nchw") + (" compile" if compile_ else "")
                step, batch = step_function(family, channels_last, amp, compile_)
                for _ in range(2):
                    step()  # warm-up (and compilation)
                forms[key] = (step, batch, [])
    for _ in range(rounds):
        for key, (step, batch, times) in forms.items():
            start = time.perf_counter()
            for _ in range(steps):
                step()
            times.append(time.perf_counter() - start)
    return {key: round(steps * batch / min(times)) for key, (_, batch, times) in forms.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", default=",".join(REPRESENTATIVES))
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--compile", action="store_true", help="time torch.compile too (slow to compile)")
    args = parser.parse_args()
    for family in args.families.split(","):
        name, _, channels, side, batch = REPRESENTATIVES[family]
        images_per_second = measure(family, args.compile, args.steps)
        for precision in ("float32", "bf16"):
            gain = images_per_second[f"{precision} channels_last"] / images_per_second[f"{precision} nchw"]
            images_per_second[f"{precision} channels_last gain"] = round(gain, 2)
        print(json.dumps({"family": family, "model": name, "input": f"{batch}x{channels}x{side}x{side}",
                          "images_per_second": images_per_second}), flush=True)


if __name__ == "__main__":
    main()
