"""gap-vs-flatten (seeds 003/004, NiN and GoogLeNet in seed 001): global average pooling against
flatten + fully-connected heads, on one ResNet backbone.

The backbone is resnet20 (He et al.'s CIFAR net: 19 conv layers, BatchNorm, shortcuts), whose
last maps are 64 x 7 x 7 on 28x28 images: deep enough that each map already says *what* is in the
image, which is the setting NiN and GoogLeNet put GAP in. A small training set makes overfitting
visible, which is where the seeds say the head's parameters hurt.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from cnnlab.experiments.core import Context, Plan, below, gap_text, pm, steps_of, stuck
from cnnlab.experiments.figures import bars
from cnnlab.experiments.result import Result

HEADS = ("GAP + FC", "flatten + FC", "flatten + FC-256 + FC")


class FlattenHeadNet(nn.Module):
    """A ResNet's feature extractor, then its maps flattened into fully-connected layers."""

    def __init__(self, backbone: nn.Module, features: int, hidden: int | None, num_classes: int = 10) -> None:
        super().__init__()
        backbone.fc = nn.Identity()  # the backbone's own GAP classifier is not used (built first, so the seeds' draws stay)
        self.backbone = backbone
        layers = [("flatten", nn.Flatten())]
        layers += [("fc1", nn.Linear(features, hidden)), ("relu", nn.ReLU(inplace=True)), ("fc", nn.Linear(hidden, num_classes))] \
            if hidden else [("fc", nn.Linear(features, num_classes))]
        self.head = nn.Sequential(OrderedDict(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone.forward_features(x))


def head_net(head: str) -> nn.Module:
    from cnnlab.models import create_model

    model = create_model("resnet20", num_classes=10, in_chans=1)
    if head == "GAP + FC":
        return model
    return FlattenHeadNet(model, 64 * 7 * 7, 256 if "256" in head else None)


def head_parameters(model: nn.Module) -> int:
    head = model.head if isinstance(model, FlattenHeadNet) else model.fc
    return sum(p.numel() for p in head.parameters())


def gap_vs_flatten(ctx: Context) -> Result:
    budget = ctx.pick(
        quick=Plan(images=768, epochs=3, lr=0.1, weight_decay=5e-4, probe_images=250, test_images=500, channels_last=True),
        standard=Plan(images=5_000, epochs=15, lr=0.1, weight_decay=5e-4, channels_last=True),
        full=Plan(images=60_000, epochs=60, lr=0.1, weight_decay=5e-4, channels_last=True))
    ctx.announce(budget.describe(ctx.data), steps_of(budget, len(HEADS), len(ctx.seeds)))
    arms, rows = {}, []
    for head in HEADS:
        arm = arms[head] = ctx.train(lambda head=head: head_net(head), budget, head)
        net = head_net(head)
        gap = [run["test_error"] - run["clean_train_error"] for run in arm.runs]
        rows.append(arm.row(head=head, params=sum(p.numel() for p in net.parameters()), head_params=head_parameters(net),
                            clean_train_error=arm.mean("clean_train_error"), generalization_gap=sum(gap) / len(gap)))
    files = [str(bars("gap-vs-flatten", list(arms), {
        "head parameters": [r["head_params"] for r in rows],
        "test error (%)": [100 * arm.mean("test_error") for arm in arms.values()],
        "train/test gap (points)": [100 * r["generalization_gap"] for r in rows]}, ctx.out,
        spreads={"test error (%)": [100 * arm.spread("test_error") for arm in arms.values()]},
        title=f"GAP against flatten heads on resnet20: {budget.describe(ctx.data)}"))]
    gap_row = rows[0]
    fewer = all(gap_row["head_params"] * 40 < row["head_params"] for row in rows[1:])
    gap_arm = arms["GAP + FC"]
    better = [head for head in HEADS[1:] if below(gap_arm, arms[head])]
    worse = [head for head in HEADS[1:] if below(arms[head], gap_arm)]
    parts = ["head parameters: " + ", ".join(f"{r['head']} {r['head_params']:,}" for r in rows)]
    parts += [f"test error {pm(gap_arm, 'test_error')} with GAP against {pm(arms[head], 'test_error')} with {head} "
              f"({'GAP lower by ' + gap_text(gap_arm, arms[head]) if head in better else head + ' lower by ' + gap_text(arms[head], gap_arm) if head in worse else 'no difference beyond the seed spread'})"
              for head in HEADS[1:]]
    parts.append("train/test gap: " + ", ".join(f"{r['head']} {100 * r['generalization_gap']:.2f} points" for r in rows))
    # the parameter half is exact; the generalization half needs every head to have learned
    generalizes = len(better) == len(HEADS) - 1 and not stuck(arms.values())
    verdict = "shown" if fewer and generalizes else "shown with a caveat" if fewer else "not shown"
    return Result("gap-vs-flatten", "a global-average-pooling head needs a small fraction of a flatten + FC head's "
                  "parameters and generalizes better (a lower test error)", verdict, "; ".join(parts), rows,
                  {"arms": {head: arm.record() for head, arm in arms.items()}}, files, budget.describe(ctx.data),
                  open=(["a small fraction of the parameters"] if not fewer else [])
                  + (["a lower test error than every flatten head"] if not generalizes else []))
