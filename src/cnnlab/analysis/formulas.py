"""Every formula cnnlab reports, in one place, each with its worked line.

The conventions are seed 003's (see shared/DESIGN.md): FLOPs count a multiply and an add as two
operations for convs and linears, one comparison or addition per window element for pooling;
biases are not counted; MB means 2^20 bytes; training memory holds each activation twice (value
and gradient) and each parameter 2 + optimizer-slot times. Each function returns a `Worked`: the
number and the line that derives it with the numbers put in, which `--explain` prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from cnnlab.layers.shapes import window_output_size

MB = 2**20

# Copies of each parameter kept while training: value and gradient, plus the optimizer's state.
OPTIMIZER_COPIES = {"sgd": 2, "momentum": 3, "adam": 4}
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8}


@dataclass(frozen=True)
class Worked:
    """A computed quantity and the line that works it out."""

    value: float
    text: str

    def __int__(self) -> int:
        return int(self.value)


def n(value: float) -> str:
    """Thousands separators, as the seeds write their numbers."""
    return f"{int(value):,}" if float(value).is_integer() else one_decimal(value)


def one_decimal(value: float) -> str:
    """One decimal, halves rounded up as the seeds' spreadsheet does (182.25 -> 182.3, not 182.2)."""
    rounded = Decimal(repr(float(value))).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return f"{rounded:,}"


def in_mb(value_bytes: float) -> str:
    return one_decimal(value_bytes / MB)


def output_size(size: int, kernel: int, stride: int, padding: int, dilation: int = 1, ceil_mode: bool = False,
                axis: str = "H") -> Worked:
    value = window_output_size(size, kernel, stride, padding, dilation, ceil_mode)
    k = f"({dilation}*({kernel} - 1) + 1)" if dilation != 1 else f"{kernel}"
    rounding = "ceil" if ceil_mode else "floor"
    return Worked(value, f"{axis}_out = {rounding}(({size} - {k} + 2*{padding}) / {stride}) + 1 = {value}")


def torch_padded_output_size(size: int, kernel: int, stride: int, before: int, after: int, dilation: int, mode: str,
                             axis: str = "H") -> Worked:
    """A convolution's output size under PyTorch's string padding: "valid" pads nothing; "same" pads
    D(K-1) pixels in all, half before and the rest (the odd pixel) after, and keeps the size."""
    value = window_output_size(size + before + after, kernel, stride, 0, dilation)
    k = f"({dilation}*({kernel} - 1) + 1)" if dilation != 1 else f"{kernel}"
    padded = f" + {before} + {after}" if before != after else f" + 2*{before}"
    note = "nothing" if mode == "valid" else f"{before + after} pixels, {before} before and {after} after"
    return Worked(value, f"{axis}_out = floor(({size} - {k}{padded}) / {stride}) + 1 = {value} "
                         f"(padding=\"{mode}\": {note})")


def same_output_size(size: int, kernel: int, stride: int, before: int, after: int, axis: str = "H") -> Worked:
    """TensorFlow's "SAME" padding: ceil(N / S) outputs, the padding that takes split with the odd pixel after."""
    value = -(-size // stride)
    return Worked(value, f"{axis}_out = ceil({size} / {stride}) = {value} (\"SAME\" padding: "
                         f"({value} - 1) x {stride} + {kernel} - {size} = {before + after} pixels, {before} before and {after} after)")


def activations(height: int, width: int, channels: int) -> Worked:
    value = height * width * channels
    return Worked(value, f"activations = {height} x {width} x {channels} = {n(value)}")


def conv_params(kernel_h: int, kernel_w: int, in_channels: int, out_channels: int, groups: int = 1, bias: bool = True) -> Worked:
    per_filter = kernel_h * kernel_w * in_channels // groups
    value = (per_filter + int(bias)) * out_channels
    group_text = f" / {groups}" if groups != 1 else ""
    bias_text = " + 1" if bias else ""
    return Worked(value, f"params = ({kernel_h} x {kernel_w} x {in_channels}{group_text}{bias_text}) x {out_channels} = {n(value)}")


def linear_params(in_features: int, out_features: int, bias: bool = True) -> Worked:
    value = in_features * out_features + (out_features if bias else 0)
    bias_text = f" + {out_features}" if bias else ""
    return Worked(value, f"params = {in_features} x {out_features}{bias_text} = {n(value)}")


def conv_flops(batch: int, output_activations: int, kernel_h: int, kernel_w: int, in_channels: int, groups: int = 1) -> Worked:
    per_output = kernel_h * kernel_w * in_channels // groups
    value = batch * output_activations * per_output * 2
    group_text = f" / {groups}" if groups != 1 else ""
    return Worked(value, f"FLOPs = {batch} x {n(output_activations)} x ({kernel_h} x {kernel_w} x {in_channels}{group_text}) x 2 = {mflops(value)}")


def linear_flops(batch: int, in_features: int, out_features: int, positions: int = 1) -> Worked:
    """A linear layer applied at `positions` places per image (the leading dimensions between the
    batch and the features: tokens, pixels, time steps)."""
    value = batch * positions * 2 * in_features * out_features
    where = f"{n(positions)} positions x " if positions != 1 else ""
    return Worked(value, f"FLOPs = {batch} x {where}2 x {n(in_features)} x {n(out_features)} = {mflops(value)}")


def transposed_conv_flops(batch: int, input_elements: int, kernel_elements: int, out_channels: int, groups: int = 1) -> Worked:
    """A transposed conv scatters every input element through a K x ... x C_out / groups kernel:
    FLOPs = batch x (input positions x C_in) x (K x ... x C_out / groups) x 2 (as torch counts it)."""
    value = batch * input_elements * kernel_elements * out_channels // groups * 2
    group_text = f" / {groups}" if groups != 1 else ""
    return Worked(value, f"FLOPs = {batch} x {n(input_elements)} inputs x ({kernel_elements} x {out_channels}{group_text}) "
                         f"x 2 = {mflops(value)}")


RECURRENT_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


def recurrent_flops(kind: str, batch: int, steps: int, input_size: int, hidden_size: int, layers: int = 1,
                    directions: int = 1, projection: int = 0) -> Worked:
    """An LSTM/GRU/RNN: per layer, direction and time step, the gates' two matrix products
    2 x gates x hidden x (input + hidden'), where the first layer's input is `input_size` and
    later layers' is directions x hidden (hidden' = proj_size when the LSTM projects)."""
    gates = RECURRENT_GATES[kind]
    recurrent = projection or hidden_size
    value, inputs = 0, input_size
    for _ in range(layers):
        value += directions * batch * steps * 2 * gates * hidden_size * (inputs + recurrent)
        if projection:
            value += directions * batch * steps * 2 * hidden_size * projection
        inputs = directions * recurrent
    return Worked(value, f"FLOPs = sum over {layers} layer(s) x {directions} direction(s) of {batch} x {steps} steps x 2 x "
                         f"{gates} gates x {hidden_size} x (input + {recurrent}) = {mflops(value)} (first input {input_size})")


def matmul_flops(batch: int, output_elements: int, inner: int) -> Worked:
    """A matrix product: each output element is a dot product of length `inner`."""
    value = batch * output_elements * inner * 2
    return Worked(value, f"FLOPs = {batch} x {n(output_elements)} outputs x {n(inner)} x 2 = {mflops(value)}")


def pool_flops(batch: int, output_activations: int, kernel_h: int, kernel_w: int) -> Worked:
    value = batch * output_activations * kernel_h * kernel_w
    return Worked(value, f"FLOPs = {batch} x {n(output_activations)} x {kernel_h} x {kernel_w} = {mflops(value)}")


def multiply_adds(flops: int) -> Worked:
    """MACs of a conv or linear: one multiply-add per two FLOPs (the ResNet paper's "FLOPs")."""
    return Worked(flops // 2, f"MACs = FLOPs / 2 = {n(flops // 2)}")


def elementwise_ops(batch: int, elements: int, ops_per_element: int, what: str) -> Worked:
    value = batch * elements * ops_per_element
    return Worked(value, f"{what} ops = {batch} x {n(elements)} x {ops_per_element} = {n(value)}")


def activation_memory(batch: int, activations: int, bytes_per_element: int, copies: int = 2) -> Worked:
    """Training memory of one layer's output: value and gradient (copies=2); the input once (copies=1)."""
    value = copies * batch * activations * bytes_per_element
    return Worked(value, f"activation memory = {copies} x {batch} x {n(activations)} x {bytes_per_element} B / 2^20 = {in_mb(value)} MB")


def parameter_memory(params: int, optimizer: str, bytes_per_element: int) -> Worked:
    copies = OPTIMIZER_COPIES[optimizer]
    value = copies * params * bytes_per_element
    return Worked(value, f"parameter memory = {copies} x {n(params)} x {bytes_per_element} B / 2^20 = {in_mb(value)} MB ({optimizer})")


def receptive_field(r_in: int, j_in: int, start_in: float, kernel: int, stride: int, padding: int, dilation: int = 1) -> tuple[Worked, Worked, float]:
    """r_out = r_in + (K - 1) x j_in, j_out = j_in x S; the centre of the first output's field moves
    by ((K - 1)/2 - P) x j_in."""
    k = dilation * (kernel - 1) + 1
    r_out = r_in + (k - 1) * j_in
    j_out = j_in * stride
    start_out = start_in + ((k - 1) / 2 - padding) * j_in
    return (
        Worked(r_out, f"r_out = {r_in} + ({k} - 1) x {j_in} = {r_out}"),
        Worked(j_out, f"j_out = {j_in} x {stride} = {j_out}"),
        start_out,
    )


def mflops(value: float) -> str:
    return f"{one_decimal(value / 1e6)} MFLOPs"


def stacked_vs_single_conv(channels: int, width: int, height: int, single_kernel: int = 5, stacked: int = 2) -> dict:
    """Seed 003's table: one CxCxKxK conv against `stacked` CxCx3x3 convs with the same field.

    5x5: 25C^2 + C params, 50 C^2 W H FLOPs; two 3x3: 18C^2 + 2C params, 36 C^2 W H FLOPs.
    """
    single = conv_params(single_kernel, single_kernel, channels, channels).value
    small = stacked * conv_params(3, 3, channels, channels).value
    acts = channels * width * height
    return {
        "single_params": single,
        "stacked_params": small,
        "single_flops": conv_flops(1, acts, single_kernel, single_kernel, channels).value,
        "stacked_flops": stacked * conv_flops(1, acts, 3, 3, channels).value,
        "single_relus": 1,
        "stacked_relus": stacked,
        "single_activations": acts,
        "stacked_activations": stacked * acts,
        "receptive_field": 1 + stacked * 2,
    }

