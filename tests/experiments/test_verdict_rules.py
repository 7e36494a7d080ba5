"""The rules that turn figures into verdicts, the measures the experiments define, and the
runner's budgets, resume and lock, on made-up figures where an outcome must be known."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.experiments import EXPERIMENTS, run_all, run_experiment
from cnnlab.experiments.alexnet import initialize, iterations_to
from cnnlab.experiments.core import Arm, below, gap_text, learned, pm
from cnnlab.experiments.filters import band_shares, dead_share, first_layer_net
from cnnlab.experiments.transfer import freeze


def arm(label, test_errors, train_errors=None):
    train_errors = train_errors or test_errors
    return Arm(label, [{"seed": s, "test_error": t, "train_error": r, "chance_error": 0.9, "diverged": False}
                       for s, (t, r) in enumerate(zip(test_errors, train_errors))])


def test_below_means_beyond_the_seed_spread():
    assert below(arm("a", [0.10, 0.12]), arm("b", [0.13, 0.15]))
    assert not below(arm("a", [0.10, 0.14]), arm("b", [0.13, 0.15]))  # the ranges overlap
    assert not below(arm("a", [0.13, 0.15]), arm("b", [0.10, 0.12]))
    assert below(arm("a", [0.10]), arm("b", [0.11]))  # one seed: simply lower


def test_spread_text():
    a, b = arm("a", [0.10, 0.12]), arm("b", [0.13, 0.17])
    assert pm(a, "test_error") == "11.00% ± 1.00"
    assert gap_text(a, b) == "4.00 points (seed spread up to 4.00)"


def test_an_arm_near_chance_decides_nothing():
    verdict, reason = learned([arm("a", [0.2, 0.21]), arm("stuck", [0.88, 0.9])], "shown", "a is lower")
    assert verdict == "not decided at this budget" and reason.startswith("stuck did not learn at this budget") and reason.endswith("a is lower")
    assert learned([arm("a", [0.2]), arm("b", [0.7])], "shown", "fine") == ("shown", "fine")  # 0.7 < 0.8 x 0.9


def test_iterations_to_the_threshold():
    run = {"history": [{"iteration": 10, "train_error": 0.6}, {"iteration": 20, "train_error": 0.25},
                       {"iteration": 30, "train_error": 0.1}]}
    assert iterations_to(run) == 20 and iterations_to(run, 0.05) is None


def test_initializations():
    from cnnlab.models import create_model

    torch.manual_seed(0)
    model = initialize(create_model("lenet5_modern"), "normal 0.01")
    weight = model.get_classifier().weight
    assert abs(weight.std().item() - 0.01) < 0.002 and model.get_classifier().bias.abs().sum() == 0
    model = initialize(create_model("lenet5_modern"), "xavier")
    fc = model.get_classifier()
    bound = math.sqrt(6 / (fc.in_features + fc.out_features))
    assert fc.weight.abs().max() <= bound and fc.weight.abs().max() > 0.9 * bound


def test_band_shares_place_a_grating_in_its_band():
    k = 11
    x = torch.arange(k, dtype=torch.float32)
    for frequency, band in ((0.06, "low"), (0.19, "mid"), (0.4, "high")):
        grating = torch.cos(2 * math.pi * frequency * x)[None, :].expand(k, k)
        shares = band_shares(grating[None, None], grid=128)
        assert max(shares, key=lambda b: shares[b][0]) == band, (frequency, shares)
        assert sum(s[0] for s in shares.values()) == pytest.approx(1.0)  # the bands cover the whole spectrum


def test_dead_share_counts_filters_that_never_fire():
    model = first_layer_net("alexnet")
    with torch.no_grad():
        model.features.conv1.weight.abs_()
        model.features.conv1.bias.zero_()
        model.features.conv1.weight[:12].neg_()  # a quarter of the filters see only negative sums of positive images
    images = torch.rand(4, 1, 63, 63)
    assert dead_share(model, images) == 0.25


def test_frozen_parts_stay_in_eval_mode():
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Linear(2, 2))
    freeze(net[1])
    net.train()
    assert net[0].training and not net[1].training and not any(p.requires_grad for p in net[1].parameters())
    before = net[1].running_mean.clone()
    net[:2](torch.randn(2, 1, 5, 5))
    assert torch.equal(net[1].running_mean, before)


def finished(name, tier="quick", data="mnist-embedded"):
    return {"experiment": name, "tier": tier, "data": data, "claim": "c", "verdict": "shown", "reason": "r", "budget": "b",
            "seeds": [0], "seconds": 1.0, "rows": []}


def test_resume_keeps_what_is_done_and_runs_the_rest(tmp_path):
    for name in EXPERIMENTS:
        if name != "inception-bottleneck":
            (tmp_path / f"{name}.json").write_text(json.dumps(finished(name)))
    (tmp_path / "lrn.json").write_text(json.dumps(finished("lrn", tier="standard")))  # another budget: run again
    ran = []
    original = EXPERIMENTS["lrn"]
    EXPERIMENTS["lrn"] = type(original)("lrn", lambda ctx: ran.append("lrn") or _fake(ctx), original.minutes)
    try:
        lines = []
        records = run_all(tmp_path, "quick", "mnist-embedded", resume=True, log=lines.append)
    finally:
        EXPERIMENTS["lrn"] = original
    assert ran == ["lrn"] and [r["experiment"] for r in records] == list(EXPERIMENTS)
    assert "degradation: kept from" in lines[0]
    assert any(line.startswith("inception-bottleneck (quick") for line in lines)
    summary = (tmp_path / "summary.md").read_text()
    assert "| inception-bottleneck | **" in summary and (tmp_path / "summary.png").stat().st_size > 10_000
    assert "| degradation | **shown** | quick: b | - | c |" in summary  # the budget each verdict was decided at
    assert "| lrn | **not shown** | quick:  | the whole claim | claim |" in summary  # and what remains open
    assert len(json.loads((tmp_path / "summary.json").read_text())) == len(EXPERIMENTS)


def _fake(ctx):
    from cnnlab.experiments.result import Result

    return Result("lrn", "claim", "not shown", "made up", [{"variant": "x"}])


def test_one_writer_per_folder(tmp_path):
    from cnnlab.checkpoint import RunFolderLock

    lock = RunFolderLock(tmp_path)
    try:
        with pytest.raises(CnnlabError, match="is being written by process"):
            run_experiment("inception-bottleneck", tmp_path, tier="quick", log=lambda _: None)
    finally:
        lock.release()


def test_bad_requests(tmp_path):
    from cnnlab.cli import main

    with pytest.raises(CnnlabError, match="unknown experiment 'resnet'; choose one of degradation"):
        run_experiment("resnet", tier="quick")
    with pytest.raises(CnnlabError, match="unknown budget 'huge'; choose one of quick, standard, long, full"):
        run_experiment("lrn", tmp_path, tier="huge")
    (tmp_path / "file").write_text("x")
    with pytest.raises(CnnlabError, match="is a file; give a folder"):
        run_experiment("lrn", tmp_path / "file", tier="quick")
    with pytest.raises(SystemExit):
        main(["experiment", "lrn", "--long", "--full", "--out", str(tmp_path)])  # one budget


def test_he_et_als_warm_up_holds_until_the_running_training_error_is_below_80_percent():
    import torch

    from cnnlab.experiments.core import Plan, WarmUntil, _schedule

    warm = WarmUntil(0.8, window=3)
    for step, wrong in enumerate([100, 95, 90, 85, 70, 60], start=1):
        warm.record(step, wrong, 100)  # running means over 3 steps: .95, .90, .82, then .72 at step 6
    assert (warm.warm, warm.ended_at) == (False, 6)
    plan = Plan(images=1, epochs=1, lr=0.1, schedule="step", warmup_until_error=0.8)
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=plan.lr)
    rule = WarmUntil(0.8, window=1)
    schedule = _schedule(optimizer, plan, 100, rule)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.01)  # a tenth of the rate while warming up
    rule.record(1, 85, 100)
    optimizer.step(), schedule.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.01)  # 85% wrong: still warming up
    rule.record(2, 70, 100)
    optimizer.step(), schedule.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1) and rule.ended_at == 2


def test_the_long_degradation_budget_uses_the_rule_for_every_arm(tmp_path):
    from cnnlab.experiments import expected_time
    from cnnlab.experiments.core import VERDICTS, Context
    from cnnlab.experiments.depth import plan

    long = plan(Context(tmp_path, "long", "fashion-mnist"))
    assert long.warmup_until_error == 0.8 and long.warmup == 0.0 and long.lr == 0.1
    assert "lr 0.01 until the running training error falls below 80%" in long.describe("fashion-mnist")
    assert expected_time("degradation", "long").startswith("at most 95 min")
    assert expected_time("lrn", "long").startswith("its standard budget")
    assert "not decided at this budget" in VERDICTS


def test_each_arm_may_get_its_own_rate_chosen_on_held_out_training_images():
    from cnnlab.experiments.core import best_rate

    def rated(errors, diverged=False):
        return Arm("x", [{"seed": s, "validation_error": e, "test_error": 0.5, "diverged": diverged}
                         for s, e in enumerate(errors)])

    by_rate = {0.01: rated([0.20, 0.22]), 0.1: rated([0.15, 0.19]), 1.0: rated([0.10, 0.12], diverged=True)}
    assert best_rate(by_rate)[0] == 0.1  # the lowest mean validation error; a rate with a diverged seed comes last
    assert best_rate({0.01: rated([0.3, 0.3]), 0.1: rated([0.2, 0.2])})[1] is not None


def test_a_best_rate_at_the_grids_edge_is_named():
    from cnnlab.experiments.core import grid_edge

    assert grid_edge((0.02, 0.08, 0.32), 0.08) == ""
    assert grid_edge((0.02, 0.08, 0.32), 0.32).startswith("the grid's top")
    assert grid_edge((0.02, 0.08, 0.32), 0.02).startswith("the grid's bottom")
    assert grid_edge((0.02,), 0.02) == ""  # the quick budget's single rate brackets nothing and claims nothing


def test_validation_images_are_held_out_training_images(tmp_path):
    from cnnlab.experiments.core import Plan, split_of, train_once

    plan = Plan(images=256, epochs=1, batch_size=128, lr=0.01, validation_images=200, probe_images=100, test_images=100)
    torch.manual_seed(0)
    run = train_once(nn.Sequential(nn.Flatten(), nn.Linear(784, 10)), plan, "mnist-embedded", 0)
    assert 0 <= run["validation_error"] <= 1
    with pytest.raises(ValueError, match="validation images after"):
        train_once(nn.Sequential(nn.Flatten(), nn.Linear(784, 10)), Plan(images=len(split_of("mnist-embedded").train),
                   epochs=1, validation_images=10), "mnist-embedded", 0)


def test_a_resumed_experiment_takes_back_its_finished_runs(tmp_path, monkeypatch):
    from cnnlab.experiments import core
    from cnnlab.experiments.core import Context, Plan

    plan = Plan(images=256, epochs=1, lr=0.01, probe_images=100, test_images=100)
    build = lambda: nn.Sequential(nn.Flatten(), nn.Linear(784, 10))  # noqa: E731
    first = Context(tmp_path, "standard", "mnist-embedded", log=lambda _: None, name="toy").train(build, plan, "linear")
    kept = sorted(p.name for p in (tmp_path / ".arms" / "toy").iterdir())
    assert len(kept) == 4 and sum(name.endswith(".safetensors") for name in kept) == 2  # one pair per seed

    monkeypatch.setattr(core, "train_once", lambda *a, **k: pytest.fail("a kept run was trained again"))
    lines = []
    resumed = Context(tmp_path, "standard", "mnist-embedded", log=lines.append, name="toy", resume=True)
    again = resumed.train(build, plan, "linear")
    assert "kept from the interrupted run: 2 of 2 seeds" in lines[0]
    # the experiment's time counts the kept runs' training time: a resumed run is not cheaper than it was
    assert resumed.kept_seconds == sum(run["seconds"] for run in first.runs) > 0
    for before, after in zip(first.runs, again.runs):
        assert after["test_error"] == before["test_error"] and after["history"] == before["history"]
        assert torch.equal(after["model"][1].weight, before["model"][1].weight)

    # a run whose weights do not match its record is trained again, and a changed plan is not found
    weights = next((tmp_path / ".arms" / "toy").glob("0-*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-8] + b"xxxxxxxx")
    store = core.RunStore(tmp_path / ".arms" / "toy", "standard", "mnist-embedded")
    assert store.load("linear", plan, 0, build()) is None and store.load("linear", plan, 1, build()) is not None
    assert store.load("linear", Plan(images=512, epochs=1), 1, build()) is None
    diverged = {"seed": 0, "diverged": True, "diverged_at": 3, "history": [], "test_error": 0.9}
    store.save("exploded", plan, 0, diverged)  # no model to keep: its figures come back alone
    assert store.load("exploded", plan, 0, build()) == diverged
    # without resume an experiment starts clean
    Context(tmp_path, "standard", "mnist-embedded", name="toy")
    assert not (tmp_path / ".arms").exists()


def test_resume_from_the_command_line_for_one_experiment(tmp_path):
    from cnnlab.cli import main

    assert main(["experiment", "inception-bottleneck", "--quick", "--resume", "--out", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "inception-bottleneck.json").read_text())
    assert set(record["open"]) <= {"the module runs faster"}  # the count is exact; the timing is this CPU's


def test_what_remains_open(tmp_path):
    from cnnlab.experiments import open_parts
    from cnnlab.experiments.result import Result

    assert open_parts(Result("x", "c", "shown", "r", [], open=["ignored"])) == []
    assert open_parts(Result("x", "c", "shown with a caveat", "r", [], open=["the gap"])) == ["the gap"]
    assert open_parts({"verdict": "not decided at this budget"}) == ["the whole claim"]
    stuck = Result("x", "c", "not decided at this budget", "a did not learn at this budget (...); b", [], open=["half"])
    assert open_parts(stuck) == ["the whole claim (an arm did not learn)"]


def test_aliased_energy_is_what_the_stride_folds_back():
    from cnnlab.experiments.filters import aliased_share

    k = 11
    x = torch.arange(k, dtype=torch.float32)
    grating = torch.cos(2 * math.pi * 0.19 * x)[None, :].expand(k, k)[None, None]
    assert aliased_share(grating, stride=4, grid=128)[0] > 0.8  # above stride 4's Nyquist, 0.125 cycles/pixel
    assert aliased_share(grating, stride=2, grid=128)[0] < 0.2  # below stride 2's, 0.25
