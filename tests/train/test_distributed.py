"""Data-parallel training with torchrun (gloo, 2 CPU processes): equal to one process with the same
global batch, BatchNorm synchronized, evaluation gathered, a killed rank ends the job with a message.
The runs compared with one process share one torchrun job (the `launch` fixture); the killed-rank and
restart tests start their own through `cnnlab train --nproc 2`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch.utils.data import DistributedSampler

from cnnlab.cli import main
from cnnlab.data.loader import shard_order
from cnnlab.train import TrainConfig, fit, load_model
from cnnlab.checkpoint import load_weights

# its module-scoped fixture is made once: the tests that share it run in one xdist worker
pytestmark = pytest.mark.xdist_group("torchrun job")

RELU_MAX = ["--set", "activation=relu", "--set", "pool=max"]
# 75 val images (0.117 of the 640 trained on): 38 + 37 across two ranks, so the gathered evaluation
# must drop one padded image. Equality to 1e-5 is a float32 property: --amp none (bf16 rounds
# differently when the batch is cut in two).
COMMON = ["--epochs", "2", "--subset", "640", "--augment", "none", "--optimizer", "sgd", "--lr", "0.02", "--val-fraction", "0.117",
          "--amp", "none"]


# Each rank runs `cnnlab` once per command, as `-m cnnlab` would, joining a new process group each
# time; rank 0 marks where each command's output starts. Once every command has returned, each rank
# lists the threads it still has.
EVERY_COMMAND_THEN_LIST_THREADS = """import json, os, sys
from cnnlab.cli import main
for name, arguments in json.loads(sys.argv[1]).items():
    if os.environ['RANK'] == '0':
        print('=== run', name, flush=True)
    code = main(arguments)
    if code:
        sys.exit(code)
names = [open(f'/proc/self/task/{t}/comm').read().strip() for t in os.listdir('/proc/self/task')]
print('threads', os.environ['RANK'], sorted(names), flush=True)
"""


def train_command(out: Path, *extra: str) -> list[str]:
    return ["train", "lenet5_modern", *RELU_MAX, *COMMON, "--out", str(out), *extra]


def torchrun(commands: dict[str, list[str]], script: Path) -> subprocess.CompletedProcess:
    script.write_text(EVERY_COMMAND_THEN_LIST_THREADS)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", str(script),
               json.dumps(commands)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


LINEAR_PROBE = ["lenet5_modern", "--set", "batch_norm=true", *RELU_MAX, "--data", "mnist-embedded[5-9]", "--mode",
                "linear-probe", "--epochs", "3", "--subset", "640", "--augment", "none", "--optimizer", "sgd", "--lr",
                "0.05", "--amp", "none"]


@dataclass
class Launch:
    """One torchrun job of two gloo ranks that ran every data-parallel command below in turn."""

    root: Path
    stdout: dict[str, str]  # rank 0's output, per command
    threads: list[str]  # each rank's threads once all had returned
    epoch_before_resume: int  # last.json's epoch in "resumed" before the job resumed it


@pytest.fixture(scope="module")
def launch(tmp_path_factory) -> Launch:
    """Two interpreters that import PyTorch cost more than the runs they train, so the runs this file
    compares with one process share one torchrun job."""
    root = tmp_path_factory.mktemp("ddp")
    epoch_before_resume = _a_save_crashed_after_its_commit(root / "resumed")
    fit(TrainConfig(model="lenet5_modern", data="mnist-embedded[0-4]", epochs=1, subset=500, model_kwargs={
        "activation": "relu", "pool": "max", "batch_norm": True}, out=str(root / "pre")), log=lambda line: None)
    commands = {
        "ddp": train_command(root / "ddp", "--batch-size", "32"),
        # A few steps: BatchNorm nets amplify float rounding (summation order) step by step, so over
        # many steps any two runs drift apart; after 4 they agree to float precision.
        "sync": train_command(root / "sync", "--set", "batch_norm=true", "--sync-bn", "--batch-size", "32", "--epochs",
                              "1", "--subset", "256"),
        "accumulated": train_command(root / "accumulated", "--batch-size", "16", "--accumulate", "2"),
        "local": train_command(root / "local", "--set", "batch_norm=true", "--batch-size", "32"),
        "scaled": train_command(root / "scaled", "--batch-size", "32", "--scale-lr", "--warmup-epochs", "1"),
        "resumed": train_command(root / "resumed", "--batch-size", "32", "--epochs", "3", "--resume"),
        "probe": ["transfer", *LINEAR_PROBE, "--init", str(root / "pre"), "--batch-size", "32", "--out",
                  str(root / "probe")],
    }
    done = torchrun(commands, root / "every_command_then_list_threads.py")
    parts = done.stdout.split("=== run ")[1:]
    stdout = {part.split("\n", 1)[0]: part.split("\n", 1)[1] for part in parts}
    assert list(stdout) == list(commands), done.stdout[-3000:]
    threads = sorted(line for line in done.stdout.splitlines() if line.startswith("threads"))
    return Launch(root, stdout, threads, epoch_before_resume)


def _a_save_crashed_after_its_commit(run: Path) -> int:
    """One process trains 3 epochs; epoch 2's save of last crashes after its commit, before its JSON
    is in place. Returns the epoch last.json then holds."""
    real = os.replace

    def crash_at_the_last_json(source, target):
        if Path(target).name == "last.json" and json.loads(Path(source).read_text())["epoch"] == 2:
            raise SystemExit("crash")
        real(source, target)

    os.replace = crash_at_the_last_json
    try:
        with pytest.raises(SystemExit):
            single(run, epochs=3)
    finally:
        os.replace = real
    return json.loads((run / "last.json").read_text())["epoch"]


def single(out: Path, batch_norm: bool = False, **settings) -> None:
    """The one-process run, on 2 threads as the equalities below were measured (the pytest-xdist
    worker's one thread sums in another order: sync-BN's 4 steps then differ by 1.4e-5, not < 1e-5)."""
    options = {"activation": "relu", "pool": "max", **({"batch_norm": True} if batch_norm else {})}
    settings = {"epochs": 2, "subset": 640, **settings}
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        fit(TrainConfig(model="lenet5_modern", augment="none", optimizer="sgd", lr=0.02, val_fraction=0.117, amp="none",
                        model_kwargs=options, out=str(out), **settings), log=lambda line: None)
    finally:
        torch.set_num_threads(threads)


def max_difference(a: Path, b: Path) -> float:
    first, second = load_weights(a / "last.json"), load_weights(b / "last.json")
    assert first.keys() == second.keys()
    return max((first[k].double() - second[k].double()).abs().max().item() for k in first)


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_shards_are_distributed_samplers():
    for count, shuffle in ((10, True), (11, True), (11, False)):
        shards = [shard_order(count, shuffle, seed=3, epoch=2, rank=r, world_size=2).tolist() for r in range(2)]
        for rank, shard in enumerate(shards):
            sampler = DistributedSampler(range(count), num_replicas=2, rank=rank, shuffle=shuffle, seed=3 * 1_000_003)
            sampler.set_epoch(2)
            assert shard == list(sampler)
        assert len(shards[0]) == len(shards[1]) == -(-count // 2)  # padded to equal length
        assert set(shards[0]) | set(shards[1]) == set(range(count))  # together: every image
        # one process sees the same permutation the shards interleave
        one = shard_order(count, shuffle, seed=3, epoch=2).tolist()
        assert [one[i] for i in range(0, count, 2)] == shards[0][: len(range(0, count, 2))]


def test_two_processes_equal_one_with_the_same_global_batch_and_leave_no_gloo_threads(launch, tmp_path):
    # Once fit returns, the process group is freed and its threads joined, not left running into
    # interpreter shutdown (where CI once saw a rank abort). DDP's lazy import of torch.distributed.nn
    # used to pin the group for the life of the process. Each rank joined seven groups in turn.
    assert [line.split()[1] for line in launch.threads] == ["0", "1"]
    assert not any("gloo" in line for line in launch.threads), launch.threads
    single(tmp_path / "one", batch_size=64)
    ddp = launch.root / "ddp"
    assert max_difference(ddp, tmp_path / "one") < 1e-5
    two, one = metrics(ddp), metrics(tmp_path / "one")
    # the gathered evaluation: the whole validation split (75 images) once, as one process sees it
    assert [r["val_top1"] for r in two] == [r["val_top1"] for r in one]
    assert [r["val_loss"] for r in two] == pytest.approx([r["val_loss"] for r in one], abs=1e-6)
    config = json.loads((ddp / "config.json").read_text())
    assert config["batch_size"] == 32
    # saved from the unwrapped module: loads into one process as it is
    model, meta = load_model(ddp)
    assert not any(key.startswith("module.") for key in model.state_dict())


def test_sync_batchnorm_equals_one_process(launch, tmp_path):
    single(tmp_path / "one", batch_norm=True, batch_size=64, epochs=1, subset=256)
    assert max_difference(launch.root / "sync", tmp_path / "one") < 1e-5  # running statistics included


def test_accumulation_equals_the_larger_batch(launch, tmp_path):
    # 2 ranks x 16 images x 2 micro-steps (the first without all-reduce) = one process at 64
    single(tmp_path / "one", batch_size=64)
    assert max_difference(launch.root / "accumulated", tmp_path / "one") < 1e-5
    single(tmp_path / "accumulated", batch_size=32, accumulate=2)
    assert max_difference(tmp_path / "accumulated", tmp_path / "one") < 1e-5


def test_without_sync_bn_each_rank_normalizes_its_own_half(launch, tmp_path):
    single(tmp_path / "one", batch_norm=True, batch_size=64)
    assert max_difference(launch.root / "local", tmp_path / "one") > 1e-4  # what --sync-bn is for


def test_resume_with_another_process_count_and_scale_lr(launch):
    assert "global batch 64; --scale-lr: lr 0.02 x 2 = 0.04 after 1 warm-up epochs" in launch.stdout["scaled"]
    assert launch.stdout["scaled"].count("run folder") == 1  # rank 0 reports for the job
    run = launch.root / "scaled"
    code = main(["train", "lenet5_modern", *RELU_MAX, *COMMON[2:], "--epochs", "3", "--batch-size", "64", "--resume",
                 "--out", str(run)])
    assert code == 0 and [r["epoch"] for r in metrics(run)] == [1, 2, 3]


def test_a_save_crashed_after_its_commit_is_completed_before_two_ranks_resume(launch):
    """Epoch 2's save of last crashed after its commit, before its JSON was in place; torchrun's two
    ranks resume: rank 0 completes the save (and says so) before any rank reads the checkpoint."""
    run = launch.root / "resumed"
    assert launch.epoch_before_resume == 1  # epoch 2's is committed, pending
    assert f"resume: {run}: a save of 'last' (epoch 2) was committed but not yet in place; completed" \
        in launch.stdout["resumed"]
    assert [r["epoch"] for r in metrics(run)] == [1, 2, 3]
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".") and p.name != ".cnnlab.lock") == []


def _pid_of_rank(marker: str, rank: int) -> int | None:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environment = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"CNNLAB_TEST_MARK={marker}".encode() in environment and f"RANK={rank}".encode() in environment:
            return int(entry.name)
    return None


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the rank's process through /proc")
def test_a_killed_rank_stops_the_job_with_a_message(tmp_path):
    marker = f"{os.getpid()}-{time.time()}"
    out = tmp_path / "run"
    command = [sys.executable, "-m", "cnnlab", "train", "lenet5_modern", *RELU_MAX, "--nproc", "2", "--epochs", "200",
               "--subset", "1000", "--batch-size", "16", "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "CNNLAB_TEST_MARK": marker})
    deadline = time.time() + 120
    while not (out / "last.json").exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
    assert (out / "last.json").exists(), process.communicate()[1][-2000:]
    pid = _pid_of_rank(marker, 1)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    killed_at = time.time()
    _, stderr = process.communicate(timeout=90)
    assert time.time() - killed_at < 60  # stopped, not hung in an all-reduce
    assert process.returncode == 2
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("cnnlab train: error: rank 1 of 2 failed (killed by SIGKILL); torchrun stopped the other ranks")
    assert "continue with the same command and --resume" in last
    torch.load(out / "last.state.pt", weights_only=True)  # the checkpoint rank 0 wrote is whole


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the rank's process through /proc")
def test_max_restarts_with_resume_continues_from_the_last_checkpoint(tmp_path):
    marker = f"restart-{os.getpid()}-{time.time()}"
    out = tmp_path / "run"
    command = [sys.executable, "-m", "cnnlab", "train", "lenet5_modern", *RELU_MAX, "--nproc", "2", "--max-restarts", "1",
               "--resume", "--epochs", "8", "--subset", "1000", "--batch-size", "16", "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "CNNLAB_TEST_MARK": marker})
    deadline = time.time() + 120
    while not (out / "last.json").exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
    pid = _pid_of_rank(marker, 1)
    assert pid is not None, process.communicate()[1][-2000:]
    epoch_at_kill = json.loads((out / "last.json").read_text())["epoch"]
    os.kill(pid, signal.SIGKILL)
    stdout, stderr = process.communicate(timeout=240)
    assert process.returncode == 0, stderr[-2000:]
    assert epoch_at_kill < 8
    assert [r["epoch"] for r in metrics(out)] == list(range(1, 9))  # continued, every epoch once
    # the restarted workers printed their run from the checkpoint on: the epoch lines after the kill
    assert stdout.count("epoch   8/8") == 1


def test_linear_probe_on_two_processes_equals_one(launch, tmp_path):
    """The frozen backbone's features are computed by each rank on its shard and gathered; the head
    then trains data-parallel on cached features, as one process does at the doubled batch."""
    assert main(["transfer", *LINEAR_PROBE, "--init", str(launch.root / "pre"), "--batch-size", "64", "--out",
                 str(tmp_path / "one")]) == 0
    assert max_difference(launch.root / "probe", tmp_path / "one") < 1e-5
    assert [r["val_top1"] for r in metrics(launch.root / "probe")] == [r["val_top1"] for r in metrics(tmp_path / "one")]
