"""The arithmetic a run computes in: bf16 autocast where the hardware has native bf16, else float32.

`--amp auto` (the default) resolves here, once, to what the run then records:

    CPU with AMX-BF16 or AVX512-BF16    bf16 autocast (about 2x float32 on this project's CPUs)
    GPU that supports bf16              bf16 autocast
    anything else                       float32

Master weights, optimizer state and checkpoints stay float32 in every case: autocast only lowers
the precision of the matrix products (conv, linear) inside the forward pass.

CNNLAB_AMP=none|bf16 in the environment decides what `--amp auto` resolves to, whatever the
hardware (an explicit --amp still wins); the run's compute line says so. `native_bf16()` keeps
reporting the hardware. `make test-fp32` runs the suite with CNNLAB_AMP=none, and with
ATEN_CPU_CAPABILITY=avx2 and ONEDNN_MAX_CPU_ISA=AVX2 for PyTorch's own kernels, as a laptop
without native bf16 would.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable, ContextManager

import torch

from cnnlab.errors import CnnlabError

AMP_CHOICES = ("auto", "none", "bf16", "fp16")
AMP_ENVIRONMENT = "CNNLAB_AMP"  # what `auto` means on this machine, when set (none or bf16)


@dataclass(frozen=True)
class Precision:
    """What a run computes in: `amp` is None (float32), "bf16" or "fp16"; `note` says why."""

    amp: str | None
    note: str

    @property
    def name(self) -> str:
        return self.amp or "float32"

    def autocast(self, device: torch.device) -> Callable[[], ContextManager]:
        """A factory of autocast contexts for `device` (a no-op context for float32)."""
        if self.amp is None:
            return nullcontext
        dtype = torch.bfloat16 if self.amp == "bf16" else torch.float16
        return lambda: torch.autocast(device.type, dtype=dtype)


def native_bf16(device: torch.device) -> str | None:
    """The name of the hardware's native bf16 support on `device` (an instruction set on a CPU,
    the GPU's name on a GPU), or None when bf16 would be emulated."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device) if torch.cuda.is_bf16_supported(including_emulation=False) else None
    if device.type != "cpu":
        return None
    capabilities = _cpu_capabilities()
    if capabilities.get("amx_bf16"):
        return "AMX-BF16"
    if capabilities.get("avx512_bf16"):
        return "AVX512-BF16"
    return None


def cpu_name() -> str:
    """The CPU's model name as the kernel reports it ("AMD EPYC", "Intel(R) Xeon(R) ..."), or "unknown CPU"."""
    import platform
    from pathlib import Path

    info = Path("/proc/cpuinfo")
    for line in info.read_text().splitlines() if info.exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def machine() -> str:
    """What a CPU timing ran on: the CPU, its cores, its native bf16 ("AMD EPYC, 2 cores, AVX512-BF16")."""
    import os

    native = native_bf16(torch.device("cpu"))
    return f"{cpu_name()}, {os.cpu_count()} cores, {native or 'no native bf16'}"


def _cpu_capabilities() -> dict:
    get = getattr(torch.cpu, "get_capabilities", None)
    if get is not None:
        return get()
    # Older torch: the two instruction sets that matter, from its private checks.
    return {"amx_bf16": getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)(),
            "avx512_bf16": getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()}


def resolve(requested: str | None, device: torch.device) -> Precision:
    """`--amp auto|none|bf16|fp16` on `device` -> the Precision a run uses, with a note for the log."""
    requested = requested or "auto"
    if requested not in AMP_CHOICES:
        raise CnnlabError(f"--amp takes {', '.join(AMP_CHOICES)}, got {requested!r}")
    where = "GPU" if device.type == "cuda" else "CPU"
    if requested == "none":
        return Precision(None, "float32 (--amp none)")
    if requested == "fp16":
        if device.type != "cuda":
            raise CnnlabError("--amp fp16 needs a GPU (it uses a gradient scaler); on the CPU use --amp bf16")
        return Precision("fp16", "fp16 autocast with a gradient scaler")
    native = native_bf16(device)
    environment = os.environ.get(AMP_ENVIRONMENT, "").strip().lower()
    if requested == "auto" and environment:
        return _auto_from_environment(environment, where, native)
    if requested == "bf16":
        if native:
            return Precision("bf16", f"bf16 autocast (native on this {where}: {native})")
        return Precision("bf16", f"bf16 autocast, emulated: this {where} has no native bf16 (no AMX-BF16 or "
                                 "AVX512-BF16), so it will be slower than float32; use --amp none")
    if native:
        return Precision("bf16", f"bf16 autocast (auto: native on this {where}, {native})")
    return Precision(None, f"float32 (auto: this {where} has no native bf16)")


def _auto_from_environment(value: str, where: str, native: str | None) -> Precision:
    hardware = f"native bf16 on this {where}: {native}" if native else f"this {where} has no native bf16"
    if value in ("none", "float32", "fp32"):
        return Precision(None, f"float32 (auto: {AMP_ENVIRONMENT}={value} in the environment; {hardware})")
    if value == "bf16":
        return Precision("bf16", f"bf16 autocast (auto: {AMP_ENVIRONMENT}=bf16 in the environment; {hardware})")
    raise CnnlabError(f"{AMP_ENVIRONMENT}={value!r} in the environment: it takes none or bf16 (what --amp auto "
                      f"means on this machine); unset it to let the hardware decide")


def recorded(trained: str) -> Precision:
    """The precision a checkpoint's run trained in, by the name its RunMeta records ("float32"
    for runs from before precisions were recorded)."""
    return Precision(None if trained == "float32" else trained, f"{trained}, as the run trained")


def for_inference(requested: str | None, trained: str, device: torch.device) -> Precision:
    """Evaluation's precision: `requested` (--amp) if given, else the run's own (`trained`, its
    RunMeta's precision) where this device can compute in it (an fp16 run evaluated on a CPU falls
    back to float32, as fp16 autocast needs a GPU)."""
    if requested:
        return resolve(requested, device)
    precision = recorded(trained)
    if precision.amp == "fp16" and device.type != "cuda":
        return Precision(None, "float32 (the run trained in fp16 on a GPU; this is a CPU)")
    return precision
