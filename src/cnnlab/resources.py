"""How much memory this machine can give, and a refusal in one line before a number a user typed
becomes an allocation that cannot fit.

The analysis never needs this: it runs on the meta device and answers for any size. The paths
that make real tensors (a measured training step, a worked operator, training itself) ask here
first, with what they would need, and say what is missing and how to go on.
"""

from __future__ import annotations

import os
from pathlib import Path

from cnnlab.errors import CnnlabError

GB = 2**30


class TooLargeError(CnnlabError, MemoryError):
    """A request that would need more memory than the machine has, refused before allocating."""


def available_bytes(device: str = "cpu") -> tuple[int, str]:
    """(bytes that can still be allocated on `device`, a sentence about them with {} for the
    size): a GPU's free memory, or the RAM the kernel counts as available, capped by this
    process's cgroup limit."""
    if str(device).startswith("cuda"):
        import torch

        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return free, f"{torch.cuda.get_device_name(torch.device(device))} has {{}} free"
    available = _meminfo_available()
    limit = _cgroup_room()
    if limit is not None and limit < available:
        return limit, "this process's memory limit (cgroup) leaves {}"
    return available, "this machine has {} available"


def ensure_fits(needed: int, what: str, fix: str, device: str = "cpu") -> None:
    """Raise TooLargeError, naming `what` needs `needed` bytes and what `device` has, unless it fits."""
    available, where = available_bytes(device)
    if needed > available:
        raise TooLargeError(f"{what} needs {size_text(needed)}, but {where.format(size_text(available))}; {fix}")


def size_text(count: float) -> str:
    """Bytes as people read them: 2.8 GB, 912.3 MB, 1,280.0 TB (binary units, as the seeds' MB)."""
    for unit, scale in (("TB", 2**40), ("GB", GB), ("MB", 2**20)):
        if count >= scale:
            return f"{count / scale:,.1f} {unit}"
    return f"{count / 2**10:,.1f} KB"


def _meminfo_available() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:  # not Linux: the physical memory, which is at least not less than what can be had
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 62  # unknown: refuse nothing


def _cgroup_room() -> int | None:
    """What this process's cgroup (v2) still allows, or None where there is no limit."""
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit == "max":
            return None
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
        return max(0, int(limit) - used)
    except (OSError, ValueError):
        return None
