"""Several networks' totals side by side, and the largest minibatch whose training step fits.

    from cnnlab.analysis.compare import compare
    table = compare(["vgg16", "resnet50"], memory="16GiB")
    table.rows[0]["largest_batch"], table.explanations
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cnnlab import rendering
from cnnlab.analysis.formulas import MB, one_decimal
from cnnlab.analysis.memory import AMP_NAMES
from cnnlab.analysis.inputs import meta_model, parse_input_size
from cnnlab.analysis.memory import TrainingStep, parse_bytes
from cnnlab.analysis.summary import Summary, summary
from cnnlab.errors import CnnlabError


# the columns a comparison is shown and sorted by: row key -> (header, how the figure is written)
COLUMNS = {
    "model": ("Model", str),
    "input": ("Input", str),
    "params": ("Params", lambda v: f"{v:,}"),
    "gflops_per_image": ("GFLOPs/image", lambda v: f"{v:.2f}"),
    "gmacs_per_image": ("GMACs/image", lambda v: f"{v:.2f}"),
    "activation_memory_mb": ("Activations (MB)", one_decimal),
    "parameter_memory_mb": ("Parameters (MB)", one_decimal),
    "training_memory_mb": ("Seeds' training memory (MB)", one_decimal),
    "peak_training_mb": ("Step peak (MB)", one_decimal),
    "largest_batch": ("Largest batch", lambda v: f"{v:,}"),
    "peak_at_largest_batch_mb": ("Its step peak (MB)", one_decimal),
    "memory_left_mb": ("Left (MB)", one_decimal),
    "largest_batch_seeds": ("Seeds' largest batch", lambda v: f"{v:,}"),
}
# short names `sort` takes besides the keys
SORT_NAMES = {"params": "params", "flops": "gflops_per_image", "gflops": "gflops_per_image", "macs": "gmacs_per_image",
              "activations": "activation_memory_mb", "memory": "training_memory_mb", "peak": "peak_training_mb",
              "batch": "largest_batch", "left": "memory_left_mb", "name": "model"}


@dataclass
class Comparison:
    """One row per model (the same keys `cnnlab compare --format json` prints), each model's Summary,
    and, with a memory budget, why the simulated largest batch differs from the seeds' rule. Shown
    in a notebook as a table (`sort` orders it), with the accuracy-complexity chart when asked."""

    rows: list[dict] = field(default_factory=list)
    summaries: list[Summary] = field(default_factory=list)
    explanations: list[str] = field(default_factory=list)
    title: str = ""
    memory: str | None = None
    chart_png: bytes | None = None  # Canziani et al.'s chart (cnnlab.compare(..., chart=True))
    chart_missing: list[str] = field(default_factory=list)

    def sort(self, column: str) -> "Comparison":
        """Order the rows (and summaries) by `column`: a row key or a short name (params, flops, macs,
        activations, memory, peak, batch, left, name); "-" first for the largest first."""
        descending = column.startswith("-")
        key = SORT_NAMES.get(column.lstrip("-"), column.lstrip("-"))
        if not self.rows or key not in self.rows[0]:
            known = sorted(set(SORT_NAMES) | set(self.rows[0] if self.rows else ()))
            raise CnnlabError(f"cannot sort by {column!r}: choose one of {', '.join(known)} ('-' first: largest first)")
        order = sorted(range(len(self.rows)), key=lambda i: self.rows[i][key], reverse=descending)
        self.rows = [self.rows[i] for i in order]
        self.summaries = [self.summaries[i] for i in order]
        if len(self.explanations) == len(order):
            self.explanations = [self.explanations[i] for i in order]
        return self

    def columns(self) -> list[str]:
        """The row keys shown, in order (those every row has)."""
        return [key for key in COLUMNS if self.rows and key in self.rows[0]]

    def headers(self) -> list[str]:
        return [COLUMNS[key][0].replace("Largest batch", f"Largest batch in {self.memory}") if self.memory
                else COLUMNS[key][0] for key in self.columns()]

    def table_rows(self) -> list[list[str]]:
        keys = self.columns()
        return [[COLUMNS[key][1](row[key]) for key in keys] for row in self.rows]

    def __repr__(self) -> str:
        return f"<Comparison of {', '.join(row['model'] for row in self.rows)}: {self.title}>"

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        return rendering.mimebundle(repr(self), self.to_html())

    def to_html(self) -> str:
        parts = [rendering.table(self.headers(), self.table_rows()), rendering.notes(self.explanations)]
        if self.chart_png is not None:
            parts.append(rendering.image(self.chart_png, "top-1 against GFLOPs per image", max_width_px=800))
            if self.chart_missing:
                parts.append(rendering.notes([f"left out of the chart (no published ImageNet accuracy): "
                                              f"{', '.join(self.chart_missing)}"]))
        return rendering.frame(*parts, title=self.title)


def compare(models: list[str], input_size: str | tuple[int, ...] | None = None, batch: int = 128,
            dtype: str = "float32", optimizer: str = "momentum", amp: str = "none", channels_last: bool = False,
            peak: bool = True, memory: str | int | None = None, headroom: str | float | int | None = None,
            **model_kwargs) -> Comparison:
    """Totals of each zoo model at `batch` (the seeds' columns in `dtype`), with the simulated training
    step's peak (`peak`; in `amp`'s precision and `channels_last` layout). With `memory` (bytes or
    text such as "16GiB"), also the largest batch whose simulated step fits in it less `headroom`
    (see `usable_memory`), beside the seeds' answer, and what it leaves of the memory."""
    total = usable_memory(memory) if memory is not None else None
    budget = usable_memory(memory, headroom) if memory is not None else None
    title = (f"minibatch {batch}, {dtype} (seeds' columns), {optimizer}, step simulated in {AMP_NAMES[amp]}"
             + (", channels_last" if channels_last else "") + (f"; memory {memory}" if memory else "")
             + (f", {headroom} kept free" if memory and headroom else ""))
    comparison = Comparison(title=title, memory=str(memory) if memory is not None else None)
    for name in models:
        model = meta_model(name, input_size, **model_kwargs)
        size = parse_input_size(input_size) if input_size else model.default_input_size
        result = summary(model, input_size=size, batch=batch, dtype=dtype, optimizer=optimizer, amp=amp,
                         channels_last=channels_last)
        totals = result.totals
        row = {
            "model": result.model_name,
            "input": "x".join(map(str, result.input_size)),
            "params": totals.params,
            "gflops_per_image": totals.flops / result.batch / 1e9,
            "gmacs_per_image": totals.macs / result.batch / 1e9,
            "activation_memory_mb": totals.activation_memory / MB,
            "parameter_memory_mb": totals.parameter_memory / MB,
            "training_memory_mb": totals.training_memory / MB,
        }
        step = TrainingStep(model, result.input_size, optimizer, amp, channels_last) if peak or budget is not None else None
        if step is not None:  # the one answer: a simulated step at this very batch, as `summary` shows it
            row["peak_training_mb"] = step.peak(batch, locate=False).peak / MB
        if budget is not None:
            try:
                largest, at_largest = step.largest_batch(budget)
            except CnnlabError as error:
                raise CnnlabError(f"{result.model_name}: {error}") from None
            seeds = result.largest_batch(budget)
            row["largest_batch"], row["largest_batch_seeds"] = largest, seeds
            row["peak_at_largest_batch_mb"] = at_largest.peak / MB
            row["memory_left_mb"] = (total - at_largest.peak) / MB
            comparison.explanations.append(_why_batches_differ(result, largest, seeds, at_largest))
        comparison.rows.append(row)
        comparison.summaries.append(result)
    return comparison


def usable_memory(memory: str | int, headroom: str | float | int | None = None) -> int:
    """The bytes a training step may use of `memory`: all of it by default, or less `headroom`,
    given as a fraction of it (0.1, "10%") or a size ("1GiB"). The simulation counts the bytes the
    step's tensors hold, which a measured CPU step matches within a few percent; keep headroom for
    what it does not see: on a GPU, the CUDA context (a few hundred MB) and the caching allocator's
    rounding and fragmentation (typically 5-10%), and any other process on the device."""
    total = parse_bytes(memory) if isinstance(memory, str) else int(memory)
    if headroom in (None, 0, "0", ""):
        return total
    text = str(headroom).strip()
    try:
        share = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        share = None
    if share is not None:
        if not 0 <= share < 1:
            raise CnnlabError(f"headroom {headroom!r}: give a fraction of the memory below 1 (0.1 or 10%) or a size "
                              "with its unit (1GiB)")
        kept = round(total * share)
    else:
        kept = parse_bytes(text)
    if kept >= total:
        raise CnnlabError(f"headroom {headroom!r} keeps all of the {total / MB:,.0f} MB: give less than the memory")
    return total - kept


def _why_batches_differ(result: Summary, largest: int, seeds: int, at_largest) -> str:
    real, convention = (at_largest.peak - at_largest.fixed) / largest / MB, result.per_image_activation_memory() / MB
    why = ("it counts a value and a gradient for every layer output at once, where autograd keeps only what "
           "backward needs and frees each gradient once used" if real < convention else
           "it misses what backward keeps beside the layer outputs (pooling indices, BatchNorm and LRN "
           "intermediates) and the gradients in flight")
    return (f"{result.model_name}: {largest:,} (a simulated step: {_mb(real)} MB per image above the "
            f"{_mb(at_largest.fixed / MB)} MB of weights and optimizer state) against the seeds' {seeds:,} "
            f"({_mb(convention)} MB per image: {why})")


def _mb(value: float) -> str:
    return f"{value:,.1f}" if value >= 10 else f"{value:.3g}"
