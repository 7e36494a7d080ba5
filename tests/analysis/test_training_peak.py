"""The simulated training step against the real one, and what `compare --memory` answers with it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.analysis import summary
from cnnlab.analysis.formulas import MB
from cnnlab.analysis.memory import PeakCurve, TrainingStep, largest_batch, measure_peak, parse_bytes, training_peak
from cnnlab.cli import main


def _close(predicted: int, measured: int, tolerance: float = 0.10) -> bool:
    return abs(predicted / measured - 1) <= tolerance


def _check_against_the_profiled_step(name: str, batch: int, optimizer: str, amp: str) -> None:
    torch.manual_seed(0)
    model = cnnlab.create_model(name)
    size = model.default_input_size
    predicted = training_peak(model, size, batch, optimizer, amp)
    measured = measure_peak(model, size, batch, optimizer, amp)
    assert _close(predicted.peak, measured), (name, batch, optimizer, predicted.peak / MB, measured / MB)
    params = sum(p.numel() for p in model.parameters())
    assert predicted.weights >= params * 4  # float32 master weights, under autocast too
    slots = {"sgd": 0, "momentum": 1, "adam": 2}[optimizer]
    assert slots * params * 4 <= predicted.optimizer_state <= slots * params * 4 + 8 * len(list(model.parameters()))


# a plain, a residual and a concatenating net, each at two batches, with SGD-momentum and with Adam
@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
@pytest.mark.parametrize("name, batches", [("alexnet", (2, 8)), ("resnet20", (16, 64)), ("densenet_bc_100_12", (2, 8))])
def test_simulated_peak_is_within_10_percent_of_the_profiled_step_at_two_batches(name, batches, optimizer):
    for batch in batches:
        _check_against_the_profiled_step(name, batch, optimizer, "none")


@pytest.mark.parametrize("name, batch, optimizer, amp", [
    ("resnet20", 64, "adam", "bf16"),
    ("googlenet", 2, "sgd", "bf16"),
    ("densenet121", 2, "adam", "none"),
])
def test_simulated_peak_is_within_10_percent_of_the_profiled_step(name, batch, optimizer, amp):
    _check_against_the_profiled_step(name, batch, optimizer, amp)


class DictHead(nn.Module):
    """A user's module: a dilated conv, a transposed conv and a strided view, returning a dict."""

    def __init__(self):
        super().__init__()
        self.down = nn.Conv2d(3, 16, 3, stride=2, padding=2, dilation=2)
        self.up = nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1)
        self.fc = nn.Linear(8 * 16 * 16, 5)

    def forward(self, x):
        y = self.up(torch.relu(self.down(x)))  # 8 x 32 x 32
        y = torch.sigmoid(y)[:, :, ::2, ::2]  # 8 x 16 x 16, a view
        return {"logits": self.fc(y.flatten(1)), "map": y}


def test_a_user_module_with_dict_output_and_transposed_and_dilated_convs():
    torch.manual_seed(0)
    model = DictHead()
    predicted = training_peak(model, (3, 32, 32), 16, "adam")
    measured = measure_peak(model, (3, 32, 32), 16, "adam")
    assert _close(predicted.peak, measured), (predicted.peak, measured)
    assert predicted.weights == sum(p.numel() for p in model.parameters()) * 4


def test_hand_computed_step_of_a_tiny_net():
    """Conv (no bias) -> ReLU -> flatten -> Linear (no bias), plain SGD, float32, batch 4.
    Autograd saves the ReLU output once (the ReLU and, as a view, the linear both need it). The
    peak comes in backward, at the ReLU: its saved output, the gradient arriving from the linear
    and the gradient it produces are alive together, beside the linear's weight gradient."""
    net = nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 8 * 8, 10, bias=False))
    batch = 4
    peak = training_peak(net, (3, 10, 10), batch, "sgd")
    weights, relu_output, fc_gradient = (8 * 3 * 3 * 3 + 512 * 10) * 4, batch * 8 * 8 * 8 * 4, 512 * 10 * 4
    inputs = batch * 3 * 10 * 10 * 4 + batch * 8  # the images and their int64 labels
    assert (peak.weights, peak.optimizer_state, peak.inputs) == (weights, 0, inputs)
    assert peak.saved == relu_output and peak.gradients == fc_gradient
    assert (peak.phase, peak.layer) == ("backward", "1")
    loss_and_its_gradient = 4 + 4
    assert peak.peak == weights + inputs + 3 * relu_output + fc_gradient + loss_and_its_gradient
    # the real step also allocates oneDNN's scratch for the conv (3 channels padded to a block)
    assert 0 <= measure_peak(net, (3, 10, 10), batch, "sgd") - peak.peak <= 16 * 1024


def test_the_largest_batch_fits_and_the_next_does_not_each_simulated():
    with torch.device("meta"):
        model = cnnlab.create_model("resnet20")
    step = TrainingStep(model, (3, 32, 32), "momentum")
    budget = 64 * 2**20
    batch, peak = step.largest_batch(budget)
    assert peak.peak == step.peak(batch, locate=False).peak <= budget < step.peak(batch + 1, locate=False).peak
    # the curve only guesses: wherever it points, the search ends at the same batch
    for wrong in (1, batch + 40):
        guess = PeakCurve(fixed=np.array([0.0]), per_image=np.array([budget / wrong]))
        assert step.largest_batch(budget, curve=guess)[0] == batch


def test_compare_and_summary_give_one_peak_at_any_batch():
    """vgg16 at batch 8 with Adam: the optimizer step's moment dominates, which the fitted curve
    missed (compare said 2,644.0 MB where summary said 2,899.8)."""
    from cnnlab.analysis import compare

    for name, batch, optimizer, memory in (("vgg16", 8, "adam", None), ("resnet20", 3, "momentum", "64MiB"),
                                           ("densenet121", 2, "sgd", None)):
        row = compare([name], batch=batch, optimizer=optimizer, memory=memory).rows[0]
        simulated = summary(name, batch=batch, optimizer=optimizer, peak=True).training_peak.peak
        assert row["peak_training_mb"] * MB == simulated, name
        if memory:
            assert row["memory_left_mb"] == pytest.approx(64 - row["peak_at_largest_batch_mb"])
        if name == "vgg16":
            assert round(row["peak_training_mb"], 1) == 2899.8


def test_headroom_keeps_part_of_the_memory_free():
    from cnnlab.analysis.compare import compare, usable_memory

    assert usable_memory("16GiB") == 16 * 2**30
    assert usable_memory("16GiB", "10%") == usable_memory("16GiB", 0.1) == 16 * 2**30 - round(0.1 * 16 * 2**30)
    assert usable_memory("16GiB", "1GiB") == 15 * 2**30
    for bad, message in (("1.5", "a fraction of the memory below 1"), ("16GiB", "keeps all of the 16,384 MB"),
                         ("lots", "is not a size")):
        with pytest.raises(cnnlab.CnnlabError, match=message):
            usable_memory("16GiB", bad)
    full = compare(["resnet20"], batch=8, memory="256MB").rows[0]
    kept = compare(["resnet20"], batch=8, memory="256MB", headroom="25%").rows[0]
    assert kept["largest_batch"] < full["largest_batch"]
    assert kept["peak_at_largest_batch_mb"] * MB <= 0.75 * 256 * 10**6 and kept["memory_left_mb"] * MB >= 0.25 * 256 * 10**6


def test_largest_batch_accepts_sizes_as_people_write_them_and_refuses_the_rest():
    assert parse_bytes("16GiB") == parse_bytes("16 GiB") == parse_bytes("16G") == 16 * 2**30
    assert parse_bytes("16 GB") == 16 * 10**9 and parse_bytes("900MB") == 900 * 10**6
    for bad in ("lots", "16 GX", "-1GB", "0MB"):
        with pytest.raises(cnnlab.CnnlabError, match="memory"):
            parse_bytes(bad)
    with pytest.raises(cnnlab.CnnlabError, match="too little even for batch 1"):
        largest_batch("vgg16", "100MB")
    with pytest.raises(cnnlab.CnnlabError, match="unknown optimizer 'rmsprop'"):
        training_peak("lenet5", batch=2, optimizer="rmsprop")


def test_resnet50_adam_in_16_gib_fits_far_more_than_the_seeds_convention_says():
    batch, peak = largest_batch("resnet50", "16GiB", optimizer="adam")
    seeds = summary("resnet50", batch=1, optimizer="adam").largest_batch(16 * 2**30)
    assert seeds == 77  # the seeds' convention: 2 x every layer output + 4 x parameters
    assert 190 <= batch <= 215 and peak.peak <= 16 * 2**30


def test_summary_shows_the_step_and_where_it_peaks(capsys):
    assert main(["summary", "resnet20", "--batch", "32", "--depth", "1"]) == 0
    out = capsys.readouterr().out
    assert "Step MB" in out and "◀ peak" in out and "a real training step (momentum, float32" in out
    result = summary("resnet20", batch=32, peak=True)
    data = result.to_dict()
    assert data["peak_training"]["peak"] == result.training_peak.peak
    assert max(row.get("step_live_bytes") or 0 for row in data["rows"]) <= result.training_peak.peak


def test_compare_json_has_both_memory_figures(capsys):
    assert main(["compare", "resnet20", "lenet5_modern", "--batch", "64", "--memory", "256MB",
                 "--optimizer", "adam", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    for row in rows:
        assert {"training_memory_mb", "peak_training_mb", "largest_batch", "largest_batch_seeds"} <= set(row)
        assert row["peak_at_largest_batch_mb"] * MB <= 256 * 10**6


def test_compare_says_why_the_two_answers_differ(capsys):
    assert main(["compare", "resnet20", "--memory", "1GiB"]) == 0
    out = capsys.readouterr().out
    assert "against the seeds'" in out and "per image" in out


def test_compare_from_python_gives_the_commands_rows():
    from cnnlab.analysis import compare

    table = compare(["resnet20", "lenet5_modern"], batch=64, memory="256MB", optimizer="adam")
    assert [row["model"] for row in table.rows] == ["resnet20", "lenet5_modern"]
    resnet = table.rows[0]
    assert resnet["params"] == 269_722 and resnet["input"] == "3x32x32"
    assert resnet["gmacs_per_image"] * 1e9 == pytest.approx(table.summaries[0].totals.macs / 64)
    step = TrainingStep(cnnlab.create_model("resnet20"), (3, 32, 32), "adam", "none", False)
    assert resnet["largest_batch"] == step.largest_batch(parse_bytes("256MB"))[0]
    assert len(table.explanations) == 2 and table.explanations[0].startswith(f"resnet20: {resnet['largest_batch']:,} ")
