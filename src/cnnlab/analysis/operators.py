"""The seeds' first lessons, worked: cross-correlation, padding, stride, channels, the 1x1 conv,
pooling, the efficiency of convolution, and BatchNorm, each computed by torch's own operator and
written out sum by sum as seed 002 writes them (0x0 + 1x1 + 3x2 + 4x3 = 19).

Matrices are written as text: entries separated by spaces or commas, rows by ";", channels by
"|" ("0 1 2; 3 4 5; 6 7 8 | 1 2 3; 4 5 6; 7 8 9"), or read from a file given as "@FILE" (the same
text, or one row per line with a blank line between channels; or a NumPy .npy array).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from cnnlab import rendering
from cnnlab.analysis import formulas
from cnnlab.errors import CnnlabError

# Seed 002's example kernels (and a box blur): the names `cnnlab op filter --kernel` takes.
NAMED_KERNELS = {
    "edge": [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]],
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "blur": [[1 / 9] * 3] * 3,
}


class OperatorError(CnnlabError):
    """A matrix or an operator setting that cannot be used."""


def parse_matrix(text: str, what: str = "matrix") -> torch.Tensor:
    """A (channels, rows, columns) float64 tensor from the text form, "@FILE" or a .npy file."""
    if text.startswith("@"):
        path = Path(text[1:]).expanduser()
        if not path.is_file():
            raise OperatorError(f"{what}: {path} does not exist")
        if path.suffix == ".npy":
            import numpy as np

            try:
                array = torch.from_numpy(np.load(path, allow_pickle=False)).double()
            except ValueError as error:
                raise OperatorError(f"{what}: {path} is not a NumPy array file: {error}") from None
            if array.dim() not in (2, 3):
                raise OperatorError(f"{what}: {path} holds a {array.dim()}-D array; give 2-D (rows x columns) or 3-D "
                                    "(channels x rows x columns)")
            return array if array.dim() == 3 else array[None]
        lines = path.read_text().strip().splitlines()
        text = "|".join(";".join(line for line in block.splitlines() if line.strip())
                        for block in re.split(r"\n\s*\n", "\n".join(lines)))
    channels = []
    for channel_text in text.split("|"):
        rows = [row for row in channel_text.split(";")]
        values = []
        for number, row in enumerate(rows, start=1):
            entries = [entry for entry in re.split(r"[\s,]+", row.strip()) if entry]
            if not entries:
                raise OperatorError(f"{what}: row {number} of {channel_text.strip()!r} is empty")
            try:
                values.append([float(entry) for entry in entries])
            except ValueError:
                bad = next(entry for entry in entries if not _is_number(entry))
                raise OperatorError(f"{what}: {bad!r} is not a number (in row {number} of {channel_text.strip()!r})") from None
        widths = {len(row) for row in values}
        if len(widths) != 1:
            raise OperatorError(f"{what}: the rows of {channel_text.strip()!r} have different lengths "
                                f"({', '.join(str(len(row)) for row in values)}); every row needs the same number of entries")
        channels.append(values)
    shapes = {(len(channel), len(channel[0])) for channel in channels}
    if len(shapes) != 1:
        raise OperatorError(f"{what}: its channels have different shapes ({', '.join(f'{len(c)}x{len(c[0])}' for c in channels)}); "
                            "every channel separated by | needs the same rows and columns")
    return torch.tensor(channels, dtype=torch.float64)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse_pair(text: str | int, what: str, minimum: int = 0) -> tuple[int, int]:
    """'2' or '3,2' (height, width) to a pair of integers of at least `minimum`."""
    parts = [part for part in re.split(r"[\s,x]+", str(text).strip()) if part]
    try:
        values = tuple(int(part) for part in parts)
    except ValueError:
        raise OperatorError(f"{what} {text!r} is not one whole number or two (height,width)") from None
    if len(values) == 1:
        values = values * 2
    if len(values) != 2:
        raise OperatorError(f"{what} {text!r} is not one whole number or two (height,width)")
    if min(values) < minimum:
        raise OperatorError(f"{what} must be at least {minimum}, got {text}")
    return values


def number(value: float) -> str:
    """A value as the seeds write it: whole numbers without decimals, others to 4 significant digits."""
    value = float(value)
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"


def factor(value: float) -> str:
    text = number(value)
    return f"({text})" if text.startswith("-") else text


@dataclass
class WorkedOperation:
    """An operator's output (channels, rows, columns) and, per output element, the line that gives it;
    with its input, kernels and window, so that a notebook draws each step as d2l's figures do:
    the input with the window over it, the kernel, the output with the element it makes, and the sum."""

    title: str
    output: torch.Tensor
    lines: list[list[list[str]]]  # [channel][row][column] -> "0x0 + 1x1 + 3x2 + 4x3 = 19"
    notes: list[str] = field(default_factory=list)
    source: torch.Tensor | None = None  # the input (C, H, W), before padding
    kernels: torch.Tensor | None = None  # (C_out, C_in, KH, KW) for a convolution; None for pooling
    window: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    kind: str = "conv"  # conv, conv1x1, max or avg
    matrices: str = ""  # the 1x1 conv's W, X and W X, written out after the sums

    GRID_LIMIT = 24  # rows or columns past which a matrix is not drawn as a grid
    ALL_STEPS = 16  # positions up to which every step is drawn

    def step(self, i: int, j: int, channel: int = 0) -> "WorkedStep":
        """Output element (i, j) of output `channel`: its window, kernel and sum."""
        channels, rows, columns = self.output.shape
        if not (0 <= channel < channels and 0 <= i < rows and 0 <= j < columns):
            raise OperatorError(f"step({i}, {j}, channel={channel}) is outside the output: {channels} channel(s) of "
                                f"{rows}x{columns}; give 0 <= i < {rows}, 0 <= j < {columns}")
        return WorkedStep(self, channel, i, j)

    def steps(self, channel: int = 0) -> list["WorkedStep"]:
        """Every position of output `channel`, row by row."""
        return [self.step(i, j, channel) for i in range(self.output.shape[1]) for j in range(self.output.shape[2])]

    def __str__(self) -> str:
        return self.render()

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        return rendering.mimebundle(self.render(), self.to_html())

    def to_html(self) -> str:
        parts = [rendering.notes(self.notes)]
        drawable = self.source is not None and max(self.source.shape[1:]) + 2 * max(self.padding) <= self.GRID_LIMIT
        steps = self.steps()
        if drawable:
            shown = steps if len(steps) <= self.ALL_STEPS else steps[:1]
            parts += [step.panel() for step in shown]
            if len(shown) < len(steps):
                parts.append(rendering.notes([f"{len(steps)} positions: .step(i, j) draws any of them; every sum below"]))
            if self.output.shape[0] > 1:
                parts.append(rendering.notes([f"{self.output.shape[0]} output channels: .step(i, j, channel=k) draws "
                                              "channel k's; all of them:"]))
                parts.append(rendering.side_by_side(*(rendering.grid(_cells(channel), caption=f"output channel {k}")
                                                      for k, channel in enumerate(self.output))))
        else:
            parts.append(rendering.preformatted("output:\n" + self.matrix_text()))
        every = "\n".join(f"[{i},{j}]{f' (channel {c})' if len(self.lines) > 1 else ''} {line}"
                          for c, rows in enumerate(self.lines) for i, row in enumerate(rows) for j, line in enumerate(row))
        if self.matrices:
            parts.append(rendering.preformatted("as a matrix product:\n" + self.matrices))
        parts.append(rendering.fold("every sum", f"{sum(len(r) for rows in self.lines for r in rows)} output elements",
                                    rendering.preformatted(every)))
        return rendering.frame(*parts, title=self.title)

    def matrix_text(self) -> str:
        return channels_text(self.output)

    def render(self, worked: bool = True) -> str:
        parts = [self.title, *self.notes, "output:", self.matrix_text()]
        if worked:
            parts.append("worked:")
            several = len(self.lines) > 1
            for channel, rows in enumerate(self.lines):
                if several:
                    parts.append(f"  output channel {channel}:")
                for i, row in enumerate(rows):
                    for j, line in enumerate(row):
                        parts.append(f"  [{i},{j}] {line}")
        if self.matrices:
            parts.append("as a matrix product:\n" + self.matrices)
        return "\n".join(parts)


@dataclass
class WorkedStep:
    """One output element of a worked operation: drawn as the input with its window highlighted, the
    kernel, and the output with the element highlighted, its sum written under them."""

    operation: WorkedOperation
    channel: int
    i: int
    j: int

    @property
    def line(self) -> str:
        return self.operation.lines[self.channel][self.i][self.j]

    def __str__(self) -> str:
        return f"[{self.i},{self.j}] {self.line}"

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        return rendering.mimebundle(str(self), rendering.frame(self.panel(), title=self.operation.title))

    def panel(self) -> str:
        op = self.operation
        (kh, kw), (sh, sw), (ph, pw) = op.window, op.stride, op.padding
        top, left = self.i * sh, self.j * sw
        window = {(r, c) for r in range(top, top + kh) for c in range(left, left + kw)}
        inputs = range(op.source.shape[0]) if op.kernels is not None else [self.channel]  # pooling: its own channel
        height, width = op.source.shape[1:]
        padded = {(r, c) for r in range(height + 2 * ph) for c in range(width + 2 * pw)
                  if not (ph <= r < ph + height and pw <= c < pw + width)}
        pad_text = "·" if op.kind == "max" else "0"
        grids = []
        for c in inputs:
            values = [[pad_text if (r, col) in padded else number(op.source[c, r - ph, col - pw])
                       for col in range(width + 2 * pw)] for r in range(height + 2 * ph)]
            caption = "input" + (f" channel {c}" if op.source.shape[0] > 1 else "") + (" (padded)" if ph or pw else "")
            grids.append(rendering.grid(values, caption=caption, highlight=window, shaded=padded))
        pieces, signs = [], []
        if op.kernels is not None:
            for c in inputs:
                kernel = _cells(op.kernels[self.channel, c])
                every = {(r, col) for r in range(len(kernel)) for col in range(len(kernel[0]))}
                pieces.append(rendering.side_by_side(grids[c], rendering.grid(kernel, caption="kernel" + (
                    f" channel {c}" if len(inputs) > 1 else ""), highlight=every), between=["⋆"]))
            signs = ["+"] * (len(pieces) - 1)
        else:
            pieces = grids
        output = rendering.grid(_cells(op.output[self.channel]), caption="output" + (
            f" channel {self.channel}" if op.output.shape[0] > 1 else ""), highlight={(self.i, self.j)})
        label = {"max": "max", "avg": "mean"}.get(op.kind)
        row = rendering.side_by_side(*pieces, output, between=[*signs, "=" if label is None else f"{label} →"])
        return row + f'<div class="cn-sum">{rendering.escape(str(self))}</div>'


def _cells(matrix: torch.Tensor) -> list[list[str]]:
    return [[number(v) for v in row] for row in matrix.tolist()]


def channels_text(tensor: torch.Tensor) -> str:
    blocks = []
    for index, channel in enumerate(tensor):
        cells = [[number(v) for v in row] for row in channel.tolist()]
        width = max(len(cell) for row in cells for cell in row)
        rows = ["  " + " ".join(cell.rjust(width) for cell in row) for row in cells]
        blocks.append((f"  channel {index}:\n" if len(tensor) > 1 else "") + "\n".join(rows))
    return "\n".join(blocks)


def _padded(x: torch.Tensor, padding: tuple[int, int], value: float = 0.0) -> torch.Tensor:
    ph, pw = padding
    return F.pad(x, (pw, pw, ph, ph), value=value)


def conv2d(x: torch.Tensor, kernels: list[torch.Tensor], padding=(0, 0), stride=(1, 1), bias: float = 0.0) -> WorkedOperation:
    """Cross-correlation of `x` (C, H, W) with one (C, kh, kw) kernel per output channel, by
    torch's conv2d, each output element written out as its sum of products."""
    channels = x.shape[0]
    for index, kernel in enumerate(kernels):
        if kernel.shape[0] != channels:
            raise OperatorError(f"kernel {index + 1} has {kernel.shape[0]} channel(s) but the input has {channels}: give "
                                f"one kernel slice per input channel, separated by |")
    shapes = {tuple(kernel.shape[1:]) for kernel in kernels}
    if len(shapes) != 1:
        raise OperatorError(f"the kernels have different sizes ({', '.join('x'.join(map(str, s)) for s in shapes)}); "
                            "every --kernel must have the same rows and columns")
    kh, kw = kernels[0].shape[1:]
    _check_window(x, (kh, kw), padding, stride, "kernel")
    weight = torch.stack(kernels)
    output = F.conv2d(x[None], weight, torch.full((len(kernels),), float(bias), dtype=x.dtype), stride, padding)[0]
    padded = _padded(x, padding)
    lines = []
    for out_channel, kernel in enumerate(kernels):
        rows = []
        for i in range(output.shape[1]):
            row = []
            for j in range(output.shape[2]):
                window = padded[:, i * stride[0]: i * stride[0] + kh, j * stride[1]: j * stride[1] + kw]
                terms = [f"{factor(a)}x{factor(b)}" for c in range(channels)
                         for a, b in zip(window[c].flatten().tolist(), kernel[c].flatten().tolist())]
                text = " + ".join(terms) + (f" + {factor(bias)}" if bias else "")
                row.append(f"{text} = {number(output[out_channel, i, j])}")
            rows.append(row)
        lines.append(rows)
    h, w = x.shape[1:]
    notes = [formulas.output_size(h, kh, stride[0], padding[0], axis="H").text,
             formulas.output_size(w, kw, stride[1], padding[1], axis="W").text]
    if channels > 1:
        notes.append(f"each output element sums over the {channels} input channels")
    title = (f"cross-correlation: input {channels}x{h}x{w}, {len(kernels)} kernel(s) {channels}x{kh}x{kw}, padding "
             f"{_pair_text(padding)}, stride {_pair_text(stride)}" + (f", bias {number(bias)}" if bias else ""))
    return WorkedOperation(title, output, lines, notes, x, weight, (kh, kw), tuple(stride), tuple(padding), "conv")


def pool2d(x: torch.Tensor, mode: str, size=(2, 2), stride=None, padding=(0, 0)) -> WorkedOperation:
    """Max or average pooling of each channel of `x`, by torch's pooling, written out window by window."""
    if mode not in ("max", "avg"):
        raise OperatorError(f"--mode takes max or avg, got {mode!r}")
    stride = stride or size
    if padding[0] * 2 > size[0] or padding[1] * 2 > size[1]:
        raise OperatorError(f"padding {_pair_text(padding)} is more than half the window {_pair_text(size)}: torch "
                            "pads at most half a window; lower --padding")
    _check_window(x, size, padding, stride, "window")
    if mode == "max":
        output = F.max_pool2d(x[None], size, stride, padding)[0]
        padded = _padded(x, padding, value=-math.inf)
    else:  # padded zeros count in the average, as torch's default (count_include_pad=True)
        output = F.avg_pool2d(x[None], size, stride, padding)[0]
        padded = _padded(x, padding)
    lines = []
    for c in range(x.shape[0]):
        rows = []
        for i in range(output.shape[1]):
            row = []
            for j in range(output.shape[2]):
                window = padded[c, i * stride[0]: i * stride[0] + size[0], j * stride[1]: j * stride[1] + size[1]]
                values = [v for v in window.flatten().tolist() if v != -math.inf]
                listed = ", ".join(number(v) for v in values)
                text = f"max({listed})" if mode == "max" else f"({' + '.join(factor(v) for v in values)}) / {len(values)}"
                row.append(f"{text} = {number(output[c, i, j])}")
            rows.append(row)
        lines.append(rows)
    h, w = x.shape[1:]
    notes = [formulas.output_size(h, size[0], stride[0], padding[0], axis="H").text,
             formulas.output_size(w, size[1], stride[1], padding[1], axis="W").text,
             "each channel is pooled on its own: as many output channels as input channels"]
    title = f"{mode} pooling: input {x.shape[0]}x{h}x{w}, window {_pair_text(size)}, stride {_pair_text(stride)}, padding {_pair_text(padding)}"
    return WorkedOperation(title, output, lines, notes, x, None, tuple(size), tuple(stride), tuple(padding), mode)


def conv1x1(x: torch.Tensor, weight: torch.Tensor) -> WorkedOperation:
    """A 1x1 conv with `weight` (C_out, C_in) on `x` (C_in, H, W), by torch's conv2d, and the same
    result as the matrix product weight @ X where X is (C_in, H x W): d2l's corr2d_multi_in_out_1x1
    (its matrices in `.matrices`)."""
    if weight.dim() == 3:  # given as one channel of text: C_out rows of C_in entries
        weight = weight[0]
    c_in, h, w = x.shape
    if weight.shape[1] != c_in:
        raise OperatorError(f"the 1x1 kernel has {weight.shape[1]} column(s) but the input has {c_in} channel(s): give one "
                            f"row per output channel with one entry per input channel (C_out x {c_in})")
    output = F.conv2d(x[None], weight[:, :, None, None])[0]
    flat = x.reshape(c_in, h * w)
    product = (weight @ flat).reshape(-1, h, w)
    assert torch.allclose(product, output)
    lines = [[[" + ".join(f"{factor(weight[o, c])}x{factor(x[c, i, j])}" for c in range(c_in)) + f" = {number(output[o, i, j])}"
               for j in range(w)] for i in range(h)] for o in range(weight.shape[0])]
    notes = [f"a 1x1 conv mixes channels at each pixel: Y = W X with W {weight.shape[0]}x{c_in} and X the input as "
             f"{c_in}x{h * w} (one column per pixel); {weight.shape[0] * c_in} weights, no spatial neighbourhood"]
    title = f"1x1 convolution: input {c_in}x{h}x{w}, kernel {weight.shape[0]}x{c_in}x1x1"
    matrix = ("W (C_out x C_in):\n" + channels_text(weight[None]) + "\nX (C_in x H*W):\n" + channels_text(flat[None])
              + "\nW X:\n" + channels_text((weight @ flat)[None]))
    return WorkedOperation(title, output, lines, notes, x, weight[:, :, None, None], kind="conv1x1", matrices=matrix)


# A worked operation writes out every output element's sum: it is for examples worked by hand. Past
# these sizes the text alone would be gigabytes (and the padded input may not fit in memory).
MAX_WORKED_OUTPUTS = 100_000
MAX_PADDED_ELEMENTS = 10_000_000


def _check_window(x: torch.Tensor, window, padding, stride, what: str) -> None:
    h, w = x.shape[1] + 2 * padding[0], x.shape[2] + 2 * padding[1]
    if window[0] > h or window[1] > w:
        raise OperatorError(f"the {what} ({window[0]}x{window[1]}) is larger than the padded input ({h}x{w}): use a "
                            "smaller one or more --padding")
    if min(stride) < 1:
        raise OperatorError(f"the stride must be at least 1, got {_pair_text(stride)}")
    outputs = ((h - window[0]) // stride[0] + 1) * ((w - window[1]) // stride[1] + 1)
    if outputs > MAX_WORKED_OUTPUTS or x.shape[0] * h * w > MAX_PADDED_ELEMENTS:
        from cnnlab.resources import size_text

        raise OperatorError(f"the {x.shape[1]:,}x{x.shape[2]:,} input with padding {_pair_text(padding)} is a {h:,}x{w:,} padded input ({size_text(x.shape[0] * h * w * 8)} "
                            f"as float64) with {outputs:,} output elements per channel to write out; a worked operation "
                            f"is for examples by hand (at most {MAX_WORKED_OUTPUTS:,} outputs): lower --padding, or "
                            "get a large layer's sizes and costs from `cnnlab layer`")


def _pair_text(pair) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]},{pair[1]}"


@dataclass
class Efficiency:
    """Seed 002's "efficiency of convolution" (Goodfellow et al., Sec. 9.2): a kh x kw kernel over
    an H x W image against the dense layer that maps the same input to the same output."""

    input_size: tuple[int, int]
    kernel: tuple[int, int]

    @property
    def output_size(self) -> tuple[int, int]:
        return self.input_size[0] - self.kernel[0] + 1, self.input_size[1] - self.kernel[1] + 1

    def rows(self) -> list[tuple[str, int, int, str]]:
        (h, w), (kh, kw) = self.input_size, self.kernel
        oh, ow = self.output_size
        inputs, outputs, taps = h * w, oh * ow, kh * kw
        return [
            ("stored floats", taps, inputs * outputs,
             f"convolution: the {kh}x{kw} kernel = {taps:,}; dense: {inputs:,} inputs x {outputs:,} outputs = {inputs * outputs:,}"),
            ("float multiplies", outputs * taps, outputs * inputs,
             f"per output: {taps} (convolution), {inputs:,} (dense); x {outputs:,} outputs"),
            ("float adds", outputs * (taps - 1), outputs * (inputs - 1),
             f"per output: {taps - 1} (convolution), {inputs - 1:,} (dense); x {outputs:,} outputs"),
            ("float multiplies + adds", outputs * (2 * taps - 1), outputs * (2 * inputs - 1),
             f"convolution {outputs:,} x {2 * taps - 1} = {outputs * (2 * taps - 1):,}; dense {outputs:,} x {2 * inputs - 1:,}"),
        ]

    def render(self) -> str:
        (h, w), (kh, kw), (oh, ow) = self.input_size, self.kernel, self.output_size
        lines = [f"input {h}x{w}, kernel {kh}x{kw}, output {oh}x{ow} (valid cross-correlation)",
                 f"{'':26}{'convolution':>16}{'dense layer':>22}{'dense / conv':>16}"]
        for name, conv, dense, why in self.rows():
            lines.append(f"{name:26}{conv:>16,}{dense:>22,}{dense / conv:>15,.0f}x")
            lines.append(f"  {why}")
        return "\n".join(lines)


def efficiency(input_size: tuple[int, int], kernel: tuple[int, int]) -> Efficiency:
    if kernel[0] > input_size[0] or kernel[1] > input_size[1]:
        raise OperatorError(f"the kernel {kernel[0]}x{kernel[1]} is larger than the input {input_size[0]}x{input_size[1]}")
    if min(kernel) < 1 or min(input_size) < 1:
        raise OperatorError("sizes must be at least 1")
    return Efficiency(tuple(input_size), tuple(kernel))


def batchnorm_lesson(batch: torch.Tensor | None = None, gamma: float = 2.0, beta: float = 0.5, momentum: float = 0.1,
                     eps: float = 1e-5) -> str:
    """Seed 000/001's BatchNorm, on a tiny batch: the batch statistics, the normalized output, the
    running averages after the step, prediction with those averages, and the fold into the conv
    before it, each with its arithmetic and checked against torch's BatchNorm."""
    from torch import nn

    if batch is None:  # 4 images of one 1x2 channel: small enough to follow by hand
        batch = torch.tensor([[[[1.0, 2.0]]], [[[3.0, 4.0]]], [[[5.0, 6.0]]], [[[7.0, 10.0]]]], dtype=torch.float64)
    values = batch.flatten().tolist()
    n = len(values)
    mean = sum(values) / n
    variance = sum((v - mean) ** 2 for v in values) / n
    unbiased = variance * n / (n - 1)
    norm = nn.BatchNorm2d(1, eps=eps, momentum=momentum).double()
    with torch.no_grad():
        norm.weight.fill_(gamma)
        norm.bias.fill_(beta)
    norm.train()
    trained = norm(batch)
    lines = [f"a batch of {batch.shape[0]} images, one channel of {batch.shape[2]}x{batch.shape[3]}: values {', '.join(number(v) for v in values)}",
             f"gamma = {number(gamma)}, beta = {number(beta)}, eps = {eps:g}, momentum = {number(momentum)}",
             "",
             "training (the batch's own statistics, over the batch and every position of the channel):",
             f"  mean = ({' + '.join(number(v) for v in values)}) / {n} = {number(mean)}",
             f"  variance = sum((x - {number(mean)})^2) / {n} = {number(variance)} (biased: the one used to normalize)",
             f"  y = gamma x (x - mean) / sqrt(variance + eps) + beta = {number(gamma)} x (x - {number(mean)}) / "
             f"{number(math.sqrt(variance + eps))} + {number(beta)}"]
    for v, y in zip(values, trained.flatten().tolist()):
        lines.append(f"    x = {number(v)}: y = {number(y)}")
    running_mean, running_var = norm.running_mean.item(), norm.running_var.item()
    lines += ["",
              "running averages after this step (what prediction uses):",
              f"  running_mean = (1 - {number(momentum)}) x 0 + {number(momentum)} x {number(mean)} = {number(running_mean)}",
              f"  running_var = (1 - {number(momentum)}) x 1 + {number(momentum)} x {number(unbiased)} = {number(running_var)} "
              f"(the unbiased variance, {number(variance)} x {n}/{n - 1})"]
    norm.eval()
    predicted = norm(batch)
    lines += ["",
              "prediction (eval mode): the same inputs, normalized by the running averages, so the outputs differ:",
              f"  y = {number(gamma)} x (x - {number(running_mean)}) / sqrt({number(running_var)} + eps) + {number(beta)}"]
    for v, y in zip(values, predicted.flatten().tolist()):
        lines.append(f"    x = {number(v)}: y = {number(y)}")
    # Folding: a conv y = w x + b followed by this BN (in eval mode) is one conv with w', b'.
    w, b = 0.5, 1.0
    std = math.sqrt(running_var + eps)
    w_folded = w * gamma / std
    b_folded = (b - running_mean) * gamma / std + beta
    conv = nn.Conv2d(1, 1, 1).double()
    with torch.no_grad():
        conv.weight.fill_(w)
        conv.bias.fill_(b)
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = fuse_conv_bn_eval(conv.eval(), norm)
    with torch.no_grad():
        difference = (folded(batch) - norm(conv(batch))).abs().max().item()
    lines += ["",
              f"folding into the conv before it (a 1x1 conv with w = {number(w)}, b = {number(b)}): at prediction time BN is "
              "an affine map, so conv then BN is one conv:",
              f"  w' = w x gamma / sqrt(running_var + eps) = {number(w)} x {number(gamma)} / {number(std)} = {number(w_folded)}",
              f"  b' = (b - running_mean) x gamma / sqrt(running_var + eps) + beta = ({number(b)} - {number(running_mean)}) x "
              f"{number(gamma)} / {number(std)} + {number(beta)} = {number(b_folded)}",
              f"  checked: torch's folded conv gives w' = {number(folded.weight.item())}, b' = {number(folded.bias.item())}; "
              f"largest difference from conv then BN on the batch: {difference:.1e}"]
    return "\n".join(lines)


def kernel_from_text(text: str) -> torch.Tensor:
    """A 2-D filter kernel: one of NAMED_KERNELS, or a matrix in the text form (one channel)."""
    if text in NAMED_KERNELS:
        return torch.tensor(NAMED_KERNELS[text], dtype=torch.float64)
    kernel = parse_matrix(text, "--kernel")
    if kernel.shape[0] != 1:
        raise OperatorError(f"--kernel: a filter kernel has one channel (it is applied to each channel of the image); "
                            f"got {kernel.shape[0]}; or name one of {', '.join(NAMED_KERNELS)}")
    return kernel[0]


def filter_image(image: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """`image` (C, H, W) in [0, 1] cross-correlated channel by channel with `kernel`, same size
    (zero padding of half the kernel)."""
    channels = image.shape[0]
    weight = kernel.to(image.dtype)[None, None].expand(channels, 1, *kernel.shape)
    return F.conv2d(image[None], weight, padding=(kernel.shape[0] // 2, kernel.shape[1] // 2), groups=channels)[0]


@dataclass
class LearnedKernel:
    image: torch.Tensor  # (H, W)
    edges: torch.Tensor  # the image cross-correlated with the true kernel
    true_kernel: torch.Tensor
    steps: list[tuple[int, float, list[float]]]  # (step, loss, kernel after the step)


def learn_kernel(image: torch.Tensor | None = None, steps: int = 10, lr: float = 3e-2, seed: int = 0) -> LearnedKernel:
    """d2l's lesson (Sec. 7.2.4): from an image X and its edges Y = X * [1, -1], learn a 1x2 kernel
    by gradient descent on the squared error, with torch's conv2d and autograd."""
    from torch import nn

    if image is None:  # d2l's 6x8 image: white, with a black band in columns 2-5
        image = torch.ones(6, 8)
        image[:, 2:6] = 0
    true_kernel = torch.tensor([[1.0, -1.0]])
    x = image.float()[None, None]
    y = F.conv2d(x, true_kernel[None, None])
    torch.manual_seed(seed)
    conv = nn.Conv2d(1, 1, kernel_size=(1, 2), bias=False)
    history = []
    for step in range(1, steps + 1):
        loss = ((conv(x) - y) ** 2).sum()
        conv.zero_grad()
        loss.backward()
        with torch.no_grad():
            conv.weight -= lr * conv.weight.grad
        history.append((step, loss.item(), conv.weight.flatten().tolist()))
    return LearnedKernel(image, y[0, 0], true_kernel, history)


def lesson_image(text: str) -> tuple[torch.Tensor, str]:
    """An image in [0, 1], (1, H, W) grey or (3, H, W) colour, and its label: mnist-embedded:INDEX (a digit of the
    embedded set) or an image file; what the operator lessons (`cnnlab op filter`, `learn-kernel`) take."""
    if text.startswith("mnist-embedded:"):
        from cnnlab.data import load_mnist_embedded

        digits = load_mnist_embedded()
        try:
            index = int(text.split(":", 1)[1])
        except ValueError:
            raise CnnlabError(f"{text!r}: give an image number, e.g. mnist-embedded:3500") from None
        if not 0 <= index < len(digits):
            raise CnnlabError(f"{text!r}: the embedded set has images 0 to {len(digits) - 1}")
        return digits.images[index].to(torch.float64) / 255, f"MNIST digit {index} (a {digits.class_names[int(digits.labels[index])]})"
    from cnnlab.data.sources import decode_image

    path = Path(text).expanduser()
    if not path.is_file():
        raise CnnlabError(f"{path} does not exist (give an image file or mnist-embedded:INDEX)")
    image = decode_image(path, 3)
    if bool((image[0] == image[1]).all() and (image[1] == image[2]).all()):
        image = image[:1]
    return image.to(torch.float64) / 255, path.name
