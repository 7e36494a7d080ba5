"""What a training step really holds in memory, to set beside the seeds' memory model.

The seeds count every layer output twice (value and gradient) and every parameter 2-4 times. That
convention teaches the tables; it is not what PyTorch allocates. Autograd keeps only what each
operation needs for its own backward (a conv's input, a ReLU's output, a max pool's indices,
BatchNorm's saved statistics), shares tensors two operations both save, frees each activation's
gradient as soon as backward has used it, and runs in-place ReLUs without a new tensor.

This module simulates one training step (forward, loss, backward, optimizer step) with fake
tensors: shapes, dtypes and storages but no data, so it costs no memory whatever the batch. A
dispatch-level tracker sees every tensor each operation creates and when its storage dies, which
gives the live bytes after every operation, their peak, what they are at the peak (weights,
gradients, optimizer state, tensors saved for backward, temporaries) and in which layer it happens.
`benchmarks/memory_peak.py` and `tests/analysis/test_training_peak.py` check it against the real
step's allocations, counted by the PyTorch profiler.
"""

from __future__ import annotations

import contextlib
import math
import re
import weakref
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.weak import WeakIdKeyDictionary

from cnnlab.analysis.formulas import MB, OPTIMIZER_COPIES
from cnnlab.errors import CnnlabError
from cnnlab.meta import meta_copy

AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}
AMP_NAMES = {"none": "float32", "bf16": "bf16 autocast", "fp16": "fp16 autocast"}


@dataclass(frozen=True)
class TrainingPeak:
    """The most bytes alive at once during one training step, and what they were."""

    batch: int
    optimizer: str
    amp: str
    channels_last: bool
    peak: int
    weights: int  # parameters and buffers
    optimizer_state: int
    inputs: int  # the minibatch and its labels
    gradients: int  # parameter gradients alive at the peak
    saved: int  # tensors autograd saved for backward, alive at the peak
    temporaries: int  # the rest: activation gradients in flight, outputs nobody saves, scratch
    phase: str  # forward, loss, backward or optimizer step
    layer: str  # the innermost module running at the peak ("" outside every module)
    live_by_layer: dict[str, int] = field(default_factory=dict)  # most bytes alive while each module ran

    @property
    def fixed(self) -> int:
        """The bytes that do not grow with the batch: weights and optimizer state."""
        return self.weights + self.optimizer_state

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("live_by_layer")
        data["peak_mb"] = self.peak / MB
        return data

    def breakdown(self) -> str:
        parts = [("weights", self.weights), ("gradients", self.gradients), ("optimizer state", self.optimizer_state),
                 ("saved for backward", self.saved), ("temporaries", self.temporaries), ("input batch", self.inputs)]
        where = f"{self.phase} of {self.layer}" if self.layer else self.phase
        return (f"{self.peak / MB:,.1f} MB at the {where}: "
                + " + ".join(f"{name} {value / MB:,.1f}" for name, value in parts))


class _LiveBytes(TorchDispatchMode):
    """Counts the bytes of every storage alive, from the operations' outputs and their deaths.

    A storage lives while any tensor on it does (views share their base's storage). Tensors, not
    storages, are watched: PyTorch keeps a tensor's Python object alive as long as C++ holds the
    tensor, but may drop a storage's Python object while the storage lives, so a weak reference
    to the storage object would report it freed too early."""

    def __init__(self, where):
        super().__init__()
        self.where = where  # () -> (phase, layer)
        self.log: list[tuple[int, int]] | None = None  # a list to fill: (storage, +bytes or -bytes), in order
        self.watched = WeakIdKeyDictionary()  # tensors seen
        self.holders: dict[int, int] = {}  # storage -> how many watched tensors use it
        self.sizes: dict[int, int] = {}
        self.fixed: set[int] = set()  # weights, optimizer state and the batch: never "saved"
        self.saved: set[int] = set()
        self.live = self.saved_live = self.gradients = 0
        self.peak: tuple | None = None
        self.by_layer: dict[str, int] = {}
        self.timeline: list[int] | None = None  # a list to fill: the live bytes after each operation

    def adopt(self, tensors) -> int:
        """Count tensors that exist before the step (weights, optimizer state, the batch)."""
        before = self.live
        for tensor in tensors:
            self._watch(tensor)
            self.fixed.add(tensor.untyped_storage()._cdata)
        return self.live - before

    def _watch(self, tensor: torch.Tensor) -> None:
        if tensor in self.watched:
            return
        storage = tensor.untyped_storage()
        key = storage._cdata
        self.watched[tensor] = key
        if key in self.holders:
            self.holders[key] += 1
        else:
            self.holders[key] = 1
            self.sizes[key] = storage.nbytes()
            self.live += self.sizes[key]
            if self.log is not None:
                self.log.append((key, self.sizes[key]))
        weakref.finalize(tensor, self._release, key)

    def _release(self, key: int) -> None:
        self.holders[key] -= 1
        if self.holders[key] == 0:
            del self.holders[key]
            size = self.sizes.pop(key)
            self.live -= size
            if self.log is not None:
                self.log.append((key, -size))
            if key in self.saved:
                self.saved.discard(key)
                self.saved_live -= size

    def mark_saved(self, tensor: torch.Tensor) -> torch.Tensor:
        """The pack hook of saved_tensors_hooks: autograd keeps what this returns for backward."""
        self._watch(tensor)
        key = tensor.untyped_storage()._cdata
        if key not in self.fixed and key not in self.saved:
            self.saved.add(key)
            self.saved_live += self.sizes[key]
        return tensor

    def add_gradient(self, parameter: nn.Parameter) -> None:
        self._watch(parameter.grad)
        self.gradients += parameter.grad.untyped_storage().nbytes()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in tree_flatten(out)[0]:
            if isinstance(tensor, torch.Tensor):
                self._watch(tensor)
        if self.timeline is not None:
            self.timeline.append(self.live)
        phase, layer = self.where()
        if layer and self.live > self.by_layer.get(layer, 0):
            self.by_layer[layer] = self.live
        if self.peak is None or self.live > self.peak[0]:
            self.peak = (self.live, self.saved_live, self.gradients, phase, layer)
        return out


def _input_shapes(input_size) -> list[tuple[int, ...]]:
    """One sample's shape per forward argument (a list of shapes for a forward that takes several)."""
    several = isinstance(input_size, list) and all(isinstance(v, (tuple, list)) for v in input_size)
    return [tuple(v) for v in input_size] if several else [tuple(input_size)]


def _make_optimizer(name: str, parameters: list[nn.Parameter]) -> torch.optim.Optimizer:
    """The optimizer both the simulated and the measured step use (CPU default: per-parameter loop)."""
    if name not in OPTIMIZER_COPIES:
        raise CnnlabError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZER_COPIES)}")
    if name == "adam":
        return torch.optim.Adam(parameters, lr=1e-3)
    return torch.optim.SGD(parameters, lr=0.1, momentum=0.9 if name == "momentum" else 0.0)


def _state_tensors(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [v for s in optimizer.state.values() for v in s.values() if torch.is_tensor(v)]


def _channels_last(inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    return [x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x for x in inputs]


class TrainingStep:
    """One model's training step, simulated with fake tensors at any batch size.

    Built once per (model, input size, optimizer, precision, layout): `peak(batch)` simulates a
    steady-state step at that batch (the optimizer's state exists, last step's gradients are freed,
    as after `zero_grad()`), and `largest_batch(budget)` finds the largest batch that fits.
    """

    def __init__(self, model: nn.Module, input_size, optimizer: str = "momentum", amp: str = "none",
                 channels_last: bool = False, dtypes: list[torch.dtype] | None = None):
        from torch._subclasses.fake_tensor import FakeTensorMode

        if amp not in AMP_DTYPES:
            raise CnnlabError(f"unknown amp {amp!r}; choose one of {', '.join(AMP_DTYPES)}")
        self.optimizer_name, self.amp, self.channels_last = optimizer, amp, channels_last
        self.input_sizes = _input_shapes(input_size)
        self.input_dtypes = dtypes or [torch.float32] * len(self.input_sizes)  # token indices: torch.long
        self.fake_mode = FakeTensorMode(allow_non_fake_inputs=True)
        self.model = meta_copy(model).train()
        if channels_last:  # on meta, before the fake tensors: to_empty keeps each tensor's strides
            self.model.to(memory_format=torch.channels_last)
        with self.fake_mode:
            self.model.to_empty(device="cpu")
        self.parameters = [p for p in self.model.parameters() if p.requires_grad]
        if not self.parameters:
            raise CnnlabError("the model has no trainable parameters, so a training step would change nothing")
        self.optimizer = _make_optimizer(optimizer, self.parameters)
        self.optimizer_overhead = self._optimizer_overhead()

    def _optimizer_overhead(self) -> int:
        """The most bytes an optimizer step allocates beyond its state (its temporaries).

        It does not depend on the batch, so it is simulated once, on the first step, which also
        creates the optimizer's state (momentum buffers, Adam's two moments) as in training; the
        state's own bytes are taken out of the step's live bytes afterwards, op by op."""
        with self.fake_mode:
            for parameter in self.parameters:
                parameter.grad = torch.zeros_like(parameter)
            track = _LiveBytes(lambda: ("optimizer step", ""))
            track.adopt(list(self.model.parameters()) + list(self.model.buffers()) + [p.grad for p in self.parameters])
            track.log = []
            with track:
                self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        state = {tensor.untyped_storage()._cdata for tensor in _state_tensors(self.optimizer)}
        live = most = 0
        for key, change in track.log:
            if key not in state:
                live += change
                most = max(most, live)
        return most

    def _batch(self, batch: int) -> tuple[list[torch.Tensor], torch.Tensor]:
        with self.fake_mode:
            inputs = [torch.empty(batch, *shape, dtype=dtype) for shape, dtype in zip(self.input_sizes, self.input_dtypes)]
            if self.channels_last:
                inputs = _channels_last(inputs)
            return inputs, torch.zeros(batch, dtype=torch.long)

    def _forward_backward(self, inputs, labels, track: _LiveBytes, phase: list) -> None:
        amp = AMP_DTYPES[self.amp]
        saving = torch.autograd.graph.saved_tensors_hooks(track.mark_saved, lambda tensor: tensor)
        with self.fake_mode, track:
            with saving, torch.autocast("cpu", dtype=amp or torch.bfloat16, enabled=amp is not None):
                phase[0] = "forward"
                output = self.model(*inputs)
                phase[0] = "loss"
                loss = _loss(output, labels)
            del output
            phase[0] = "backward"
            loss.backward()
            del loss

    def _simulate(self, batch: int, locate: bool = False) -> _LiveBytes:
        """Run forward and backward at `batch` with the live bytes counted; the tracker afterwards."""
        if batch < 1:
            raise CnnlabError(f"batch must be at least 1, got {batch}")
        self.optimizer.zero_grad(set_to_none=True)
        phase = ["forward"]
        layers = _LayerTracker() if locate else None
        track = _LiveBytes(lambda: (phase[0], layers.current() if layers else ""))
        track.weights = track.adopt(list(self.model.parameters()) + list(self.model.buffers()))
        track.state = track.adopt(_state_tensors(self.optimizer))
        inputs, labels = self._batch(batch)
        track.inputs = track.adopt(inputs + [labels])
        track.timeline = []
        hooks = [p.register_post_accumulate_grad_hook(track.add_gradient) for p in self.parameters]
        try:
            with layers or contextlib.nullcontext():
                self._forward_backward(inputs, labels, track, phase)
            track.end = (track.live, track.saved_live, track.gradients)
        except (RuntimeError, NotImplementedError) as error:
            raise CnnlabError(f"a training step at batch {batch} cannot run: {str(error).splitlines()[0]}") from None
        finally:
            for hook in hooks:
                hook.remove()
            self.optimizer.zero_grad(set_to_none=True)
        return track

    def peak(self, batch: int, locate: bool = True) -> TrainingPeak:
        """Simulate one steady-state step at `batch` and return its peak (and, with `locate`,
        the layer it happens in and each layer's most live bytes)."""
        track = self._simulate(batch, locate)
        peak, saved, gradients, where, layer = track.peak
        live, saved_at_end, gradients_at_end = track.end
        if live + self.optimizer_overhead > peak:  # the optimizer's step: every gradient, no activations
            peak, saved, gradients, where, layer = (live + self.optimizer_overhead, saved_at_end, gradients_at_end,
                                                    "optimizer step", "")
        fixed = track.weights + track.state + track.inputs
        return TrainingPeak(
            batch=batch, optimizer=self.optimizer_name, amp=self.amp, channels_last=self.channels_last, peak=peak,
            weights=track.weights, optimizer_state=track.state, inputs=track.inputs, gradients=gradients, saved=saved,
            temporaries=peak - fixed - gradients - saved, phase=where, layer=layer, live_by_layer=track.by_layer,
        )

    def curve(self, first: int = 2, second: int = 10) -> PeakCurve:
        """The peak as a function of the batch, from two simulations.

        Every moment of the step (after each operation) holds bytes that are affine in the batch:
        weights and optimizer state are fixed, activations and their gradients scale with it. Two
        simulations give each moment's line, and the peak at any batch is the highest line there."""
        timelines = []
        for batch in (first, second):
            track = self._simulate(batch)
            timelines.append(track.timeline + [track.live + self.optimizer_overhead])
        if len(timelines[0]) != len(timelines[1]):
            raise CnnlabError("the step runs different operations at different batch sizes, so its peak cannot be "
                              "extrapolated; simulate each batch with peak(batch)")
        import numpy as np

        low, high = (np.array(t, dtype=np.float64) for t in timelines)
        per_image = (high - low) / (second - first)
        return PeakCurve(fixed=low - per_image * first, per_image=per_image)

    def largest_batch(self, budget: int, limit: int = 1 << 20, curve: PeakCurve | None = None
                      ) -> tuple[int, TrainingPeak]:
        """The largest batch whose simulated step fits `budget` bytes while the next batch's does
        not, and that batch's peak. The curve only guesses where to look: every answer is a
        simulation at the batch itself (`peak`, the figure `summary` and `compare` show), and the
        search steps up or down from the guess, doubling its stride, then halves the gap."""
        peaks: dict[int, TrainingPeak] = {}

        def fits(batch: int) -> bool:
            if batch not in peaks:
                peaks[batch] = self.peak(batch, locate=False)
            return peaks[batch].peak <= budget

        if not fits(1):
            raise CnnlabError(f"{budget / MB:,.0f} MB is too little even for batch 1: one training step needs "
                              f"{peaks[1].breakdown()}")
        guess = min(limit, max(1, (curve or self.curve()).largest(budget, limit)))
        if fits(guess):  # then look above it: fits is [low, high) with `low` fitting
            low, stride = guess, 1
            while low < limit and fits(min(limit, low + stride)):
                low, stride = min(limit, low + stride), stride * 2
            high = min(limit + 1, low + stride)
        else:
            high, stride = guess, 1
            while not fits(max(1, high - stride)):
                high, stride = max(1, high - stride), stride * 2
            low = max(1, high - stride)
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (middle, high) if fits(middle) else (low, middle)
        return low, self.peak(low)


@dataclass(frozen=True)
class PeakCurve:
    """Live bytes at every moment of a training step as lines in the batch: fixed + per_image x batch."""

    fixed: object  # numpy arrays, one entry per moment
    per_image: object

    def at(self, batch: int) -> int:
        return int(round(float((self.fixed + self.per_image * batch).max())))

    def largest(self, budget: int, limit: int = 1 << 20) -> int:
        """The largest batch at which no moment exceeds `budget` (0 if not even batch 1 fits)."""
        import numpy as np

        growing = self.per_image > 0
        if (self.fixed[~growing] > budget).any():
            return 0
        allowed = np.floor((budget - self.fixed[growing]) / self.per_image[growing]) if growing.any() else [limit]
        return int(max(0, min(limit, float(np.min(allowed)))))


class _LayerTracker:
    """The innermost module running now, forward or backward (torch's ModuleTracker)."""

    def __init__(self):
        from torch.utils.module_tracker import ModuleTracker

        self.tracker = ModuleTracker()

    def __enter__(self):
        self.tracker.__enter__()
        return self

    def __exit__(self, *exc):
        return self.tracker.__exit__(*exc)

    def current(self) -> str:
        names = [name for name in self.tracker.parents if name != "Global"]
        if not names:
            return ""
        innermost = max(names, key=lambda name: name.count("."))
        return innermost.split(".", 1)[1] if "." in innermost else ""


def _loss(output, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on every classifier output (main and auxiliary heads), the mean of any other."""
    tensors = [t for t in tree_flatten(output)[0] if isinstance(t, torch.Tensor) and t.is_floating_point()]
    if not tensors:
        raise CnnlabError("the forward returned no floating-point tensor to take a loss of")
    total = None
    for tensor in tensors:
        term = (nn.functional.cross_entropy(tensor, labels) if tensor.dim() == 2 and tensor.shape[0] == labels.shape[0]
                else tensor.float().mean())
        total = term if total is None else total + term
    return total


def measure_peak(model: nn.Module, input_size, batch: int, optimizer: str = "momentum", amp: str = "none",
                 channels_last: bool = False, device: str = "cpu") -> int:
    """The real peak of one steady-state training step of `model`, in bytes: runs it.

    On the CPU, the PyTorch profiler's account of every allocation the step makes (their running
    total, above the tensors alive before the step: weights, optimizer state and the batch); on a
    GPU, `torch.cuda.max_memory_allocated`. The model is trained in place for two steps."""
    model = model.to(device).train()
    inputs = [torch.randn(batch, *shape, device=device) for shape in _input_shapes(input_size)]
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        inputs = _channels_last(inputs)
    labels = torch.zeros(batch, dtype=torch.long, device=device)
    opt = _make_optimizer(optimizer, [p for p in model.parameters() if p.requires_grad])
    kind = torch.device(device).type
    autocast = torch.autocast(kind, dtype=AMP_DTYPES[amp] or torch.bfloat16, enabled=AMP_DTYPES[amp] is not None)

    def step():
        opt.zero_grad(set_to_none=True)
        with autocast:
            loss = _loss(model(*inputs), labels)
        loss.backward()
        del loss
        opt.step()

    step()
    opt.zero_grad(set_to_none=True)
    if kind == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        step()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated()
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    before = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes()
              for t in [*model.parameters(), *model.buffers(), *_state_tensors(opt), *inputs, labels]}
    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
        step()
    # The allocation events' own running total carries over from earlier profiled runs in the same
    # process, so the bytes are summed here, in time order, from this step's events alone.
    events, allocations = list(profiler.profiler.kineto_results.experimental_event_tree()), []
    while events:
        event = events.pop()
        events.extend(event.children)
        if event.tag == _EventType.Allocation:
            allocations.append((event.start_time_ns, event.extra_fields.alloc_size))
    live = most = 0
    for _, size in sorted(allocations):
        live += size
        most = max(most, live)
    return sum(before.values()) + most


@contextlib.contextmanager
def _quiet_stderr():
    """Silence the profiler's C++ start/stop lines (written to file descriptor 2 directly)."""
    import os
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def training_peak(model: nn.Module | str, input_size=None, batch: int = 1, optimizer: str = "momentum",
                  amp: str = "none", channels_last: bool = False) -> TrainingPeak:
    """The simulated peak of one training step of `model` (a zoo name or any nn.Module) at `batch`."""
    model, input_size = _model_and_input(model, input_size)
    return TrainingStep(model, input_size, optimizer, amp, channels_last).peak(batch)


def largest_batch(model: nn.Module | str, memory: int | str, input_size=None, optimizer: str = "momentum",
                  amp: str = "none", channels_last: bool = False) -> tuple[int, TrainingPeak]:
    """The largest batch whose training step fits `memory` (bytes, or a size such as "16GiB")."""
    budget = parse_bytes(memory) if isinstance(memory, str) else int(memory)
    model, input_size = _model_and_input(model, input_size)
    return TrainingStep(model, input_size, optimizer, amp, channels_last).largest_batch(budget)


def ensure_step_fits(model: nn.Module, input_size, batch: int, optimizer: str = "momentum", amp: str = "none",
                     channels_last: bool = False, device: str = "cpu", processes: int = 1) -> None:
    """Refuse in one line (resources.TooLargeError) a training step at `batch` that `device` cannot
    hold, `processes` of them at once on a CPU, before any of it is allocated. The simulation
    (a second or less) runs only where a generous bound says it might matter: weights, gradients
    and optimizer state at six times the weights, and a thousand times the input batch for
    everything the step keeps per image (the zoo's nets keep 100 to 300 times)."""
    from cnnlab.resources import available_bytes, ensure_fits, size_text

    available, _ = available_bytes(device)
    shapes = _input_shapes(input_size)
    input_bytes = batch * sum(math.prod(shape) for shape in shapes) * 4
    weights = sum(p.numel() for p in model.parameters()) * 4
    copies = processes if not str(device).startswith("cuda") else 1
    if (6 * weights + 1000 * input_bytes) * copies < available / 2:
        return
    peak = TrainingStep(model, input_size, optimizer, amp, channels_last).peak(batch, locate=False)
    parts = [("weights", peak.weights), ("gradients", peak.gradients), ("optimizer state", peak.optimizer_state),
             ("saved for backward", peak.saved), ("temporaries", peak.temporaries), ("input batch", peak.inputs)]
    made_of = ", ".join(f"{name} {size_text(value)}" for name, value in parts if value >= MB)
    ensure_fits(peak.peak * copies, f"a training step at batch {batch:,} (simulated{f', x {copies} processes' if copies > 1 else ''}: "
                f"{made_of})", "lower --batch-size (and raise --accumulate to keep the global batch), or --input-size",
                device)


def _model_and_input(model: nn.Module | str, input_size):
    from cnnlab.analysis.inputs import meta_model, parse_input_size
    from cnnlab.models import CnnModel

    if isinstance(model, str):
        model = meta_model(model, input_size)
    if input_size is None:
        if not isinstance(model, CnnModel):
            raise CnnlabError(f"{type(model).__name__} is not a cnnlab model, so its input size is unknown: "
                              "pass input_size=(C, H, W)")
        input_size = model.default_input_size
    several = isinstance(input_size, list) and all(isinstance(v, (tuple, list)) for v in input_size)
    return model, [parse_input_size(v) for v in input_size] if several else parse_input_size(input_size)


def parse_bytes(text: str) -> int:
    """A memory size as people write it: 16GiB, 16 GB, 900MB, 8000MiB, 2T (binary units without "B" or
    with "iB", decimal with "B"); at least one byte."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?\s*", str(text), re.IGNORECASE)
    if not match:
        raise CnnlabError(f"memory {text!r} is not a size: write it like 16GiB, 16 GB, 900MB or 8000MiB")
    value, unit = float(match.group(1)), (match.group(2) or "B").upper()
    binary = {"B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    decimal = {"KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
    size = int(value * (decimal.get(unit) or binary[unit[0]]))
    if size < 1:
        raise CnnlabError(f"memory {text!r} is zero: give the device's memory, e.g. 16GiB")
    return size


def saved_for_backward_bytes(model: nn.Module, input_size: tuple[int, int, int], batch: int,
                             dtype: torch.dtype = torch.float32) -> int:
    """Bytes of the distinct non-parameter tensors autograd saves during one training forward."""
    meta_model = meta_copy(model).to(dtype).train()
    parameters = {id(p) for p in meta_model.parameters()}
    seen: set[int] = set()
    keep_alive: list[torch.Tensor] = []
    total = 0

    def pack(tensor: torch.Tensor):
        nonlocal total
        base = tensor._base if tensor._base is not None else tensor
        if id(base) not in seen and id(base) not in parameters and id(tensor) not in parameters:
            seen.add(id(base))
            keep_alive.append(base)  # keeps ids unique while we count
            total += base.numel() * base.element_size()
        return tensor

    x = torch.empty((batch, *input_size), device="meta", dtype=dtype)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        meta_model(x)
    return total
