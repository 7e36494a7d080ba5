"""Data-parallel training on PyTorch's own engine: torchrun starts the processes, `torch.distributed`
connects them (gloo on the CPU, NCCL on GPUs), DistributedDataParallel averages the gradients.

`fit` calls `setup()` first: under torchrun (WORLD_SIZE > 1 in the environment) it joins the process
group and says which rank this is; alone it returns a one-process World and nothing changes. Data
is sharded as DistributedSampler shards it (train/run.py, data/loader.py); evaluation gathers every
rank's predictions and drops the padding (train/metrics.py).
"""

from __future__ import annotations

import gc
import itertools
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

from cnnlab.errors import CnnlabError


@dataclass(frozen=True)
class World:
    """Where this process stands: its rank among `size` processes, and its device."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


# How many process groups this process has joined: a script (or notebook) that trains twice under
# torchrun joins a new group each time, under keys of its own in torchrun's store.
_groups_joined = itertools.count()


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def pick_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise CnnlabError("--device cuda was asked for but PyTorch sees no GPU here; use --device cpu")
    return torch.device(requested)


def setup(requested_device: str) -> World:
    """Join the process group torchrun prepared (gloo for CPU, nccl for CUDA), or stay alone."""
    device = pick_device(requested_device)
    if not launched_by_torchrun():
        return World(device=device)
    rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise CnnlabError(f"local rank {local_rank} has no GPU of its own: this machine has {torch.cuda.device_count()}; "
                              "start at most that many processes per node (--nproc-per-node)")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        # torch.distributed.nn binds `group.WORLD` as a default argument when first imported, which
        # DistributedDataParallel does lazily: imported after the group exists, it would hold the
        # group, and its gloo threads, until interpreter shutdown. Imported now, the default is None.
        import torch.distributed.nn  # noqa: F401

        # A lost peer is noticed by torchrun's agent, which stops the job; the timeout only bounds a hang
        # that no process exit reveals.
        backend, timeout = ("nccl" if device.type == "cuda" else "gloo"), timedelta(minutes=10)
        attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
        group = next(_groups_joined)
        if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True":
            # torchrun keeps its store for the whole job: across --max-restarts attempts and across the
            # groups one process joins in turn. The keys each rank publishes to connect are given the
            # attempt's and the group's prefix, or a rank reads a dead or earlier group's and hangs.
            store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), size, is_master=False,
                                  timeout=timeout)
            dist.init_process_group(backend, store=dist.PrefixStore(f"cnnlab/attempt_{attempt}/group_{group}", store),
                                    rank=rank, world_size=size, timeout=timeout)
        else:
            dist.init_process_group(backend, timeout=timeout)
    return World(rank, size, local_rank, device)


def teardown(world: World, finished: bool = True) -> None:
    """Leave the process group while the interpreter is whole. A finished rank first waits for the
    others (rank 0 still writes its files), so no rank closes its connections while a peer runs.
    DistributedDataParallel sits in reference cycles that hold the group, so they are collected:
    the group is then freed and its gloo threads joined here, not left running into interpreter
    shutdown, where CI once saw a rank abort ("terminate called without an active exception")."""
    if not (world.distributed and dist.is_initialized()):
        return
    if finished:
        dist.barrier()
    dist.destroy_process_group()
    gc.collect()


def wrap(model: nn.Module, world: World) -> nn.Module:
    """DistributedDataParallel over `model` (built after the phase has set requires_grad, as DDP
    registers its gradient hooks once); the model itself alone."""
    if not world.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [world.device.index] if world.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics are those of the global batch, every rank's images
    together: the sums are all-reduced inside autograd, so gradients flow through the global mean
    and variance as through torch's SyncBatchNorm. Torch's SyncBatchNorm runs
    on GPUs only; this one runs on gloo (CPU). Same parameters and buffers as BatchNorm, so its
    checkpoints load into the plain model."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized()):
            return super().forward(x)
        dims = [0] + list(range(2, x.dim()))
        channels = x.shape[1]
        # Sums in float64: E[x^2] - E[x]^2 then loses nothing a one-process two-pass variance keeps.
        count = torch.full((1,), float(x.numel() // channels), dtype=torch.float64, device=x.device)
        local = torch.cat([x.sum(dims, dtype=torch.float64), (x * x).sum(dims, dtype=torch.float64), count])
        total = _SumOverRanks.apply(local)
        n = total[-1]
        mean = total[:channels] / n
        var = total[channels: 2 * channels] / n - mean * mean
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - momentum).add_(mean.to(x.dtype), alpha=momentum)
                self.running_var.mul_(1 - momentum).add_((var * n / (n - 1)).to(x.dtype), alpha=momentum)
        shape = [1, channels] + [1] * (x.dim() - 2)
        y = (x - mean.to(x.dtype).view(shape)) * torch.rsqrt(var.to(x.dtype).view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


class _SumOverRanks(torch.autograd.Function):
    """all_reduce(SUM) with its gradient: every rank's loss depends on every rank's sums, so the
    gradients of the sums are summed over the ranks in turn."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.clone()
        dist.all_reduce(tensor)
        return tensor

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def convert_sync_batchnorm(model: nn.Module, world: World) -> tuple[nn.Module, int]:
    """Every BatchNorm computes its statistics over the global batch: torch's SyncBatchNorm on
    GPUs, GlobalBatchNorm on the CPU. Returns the model and how many layers were converted."""
    if world.device.type == "cuda":
        before = sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
        return nn.SyncBatchNorm.convert_sync_batchnorm(model), before
    converted = 0

    def convert(module: nn.Module) -> nn.Module:
        nonlocal converted
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, GlobalBatchNorm):
            replacement = GlobalBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                                          module.track_running_stats)
            replacement.load_state_dict(module.state_dict())
            replacement.train(module.training)
            converted += 1
            return replacement
        for name, child in module.named_children():
            setattr(module, name, convert(child))
        return module

    return convert(model), converted


def gather(tensor: torch.Tensor, world: World) -> torch.Tensor:
    """Every rank's `tensor` (equal shapes, as padded shards are), concatenated in rank order."""
    if not world.distributed:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(world.size)]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts)


def launch(nproc: int, argv: list[str], max_restarts: int = 0) -> int:
    """`cnnlab train --nproc N ...`: torchrun with N processes on this machine, each running
    `cnnlab` with the same arguments. torchrun's output passes through; when a rank fails, torchrun
    stops the others and this names the rank and the cause."""
    import re
    import signal
    import subprocess
    import sys
    from collections import deque

    if nproc < 1:
        raise CnnlabError(f"--nproc must be at least 1, got {nproc}")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
               f"--max-restarts={max_restarts}", "-m", "cnnlab", *argv]
    tail: deque[str] = deque(maxlen=400)
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, bufsize=1)
    try:
        for line in process.stderr:
            sys.stderr.write(line)
            tail.append(line)
        code = process.wait()
    except KeyboardInterrupt:
        process.send_signal(signal.SIGINT)
        process.wait()
        raise
    if code == 0:
        return 0
    report = "".join(tail)
    report = report[report.rfind("Root Cause"):] if "Root Cause" in report else report  # the first rank to fail
    ranks = re.findall(r"rank\s*:\s*(\d+) \(local_rank: (\d+)\)\s*\n\s*exitcode\s*:\s*(-?\d+)", report)
    if not ranks:
        raise CnnlabError(f"torchrun exited with status {code} before the workers ran; see its messages above")
    rank, _, exitcode = ranks[0]
    exitcode = int(exitcode)
    cause = f"killed by {signal.Signals(-exitcode).name}" if exitcode < 0 else f"exited with status {exitcode}"
    errors = [line.split("error: ", 1)[1].strip() for line in tail if f"(rank {rank} of" in line and "error: " in line]
    raise CnnlabError(f"rank {rank} of {nproc} failed ({cause}" + (f": {errors[-1]}" if errors else "") + "); torchrun "
                      "stopped the other ranks" + (f" after {max_restarts} restarts" if max_restarts else "")
                      + ". The last checkpoint is untouched: continue with the same command and --resume")
