"""Walk a network on the `meta` device and describe every layer it runs.

Module calls are seen through forward hooks, and the functional operations a forward method
performs itself (residual `+`, `torch.cat`, `F.relu`, `flatten`/`view`, `F.avg_pool2d`, ...)
through a TorchFunctionMode, so any `nn.Module` a user wrote is covered, not only the zoo. Only
shapes are computed: no memory is allocated and no arithmetic is done, whatever the batch.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves, tree_map

from cnnlab.analysis import formulas
from cnnlab.layers import ScaledTanh
from cnnlab.layers.drop_path import DropPath, ScheduledDropPath
from cnnlab.layers.same_padding import SamePadded
from cnnlab.meta import meta_copy, skip_batchnorm_
from cnnlab.layers.lecun import EuclideanRBF, SparseConnectionConv2d, TrainableSubsampling


@dataclass
class LayerRow:
    """One row of the per-layer table (per-image shapes, whole-batch costs)."""

    name: str
    kind: str  # input, conv, linear, pool, norm, activation, dropout, add, concat, view, copy, block, other
    op: str
    depth: int
    output_shape: tuple[int, ...]
    activations: int = 0
    params: int = 0
    flops: int = 0
    macs: int = 0
    elementwise_ops: int = 0
    activation_memory: int = 0
    parameter_memory: int = 0
    kernels: int | None = None
    kernel_size: tuple[int, int] | None = None
    stride: tuple[int, int] | None = None
    padding: tuple[int, int] | None = None
    groups: int = 1
    rf: int | None = None
    jump: int | None = None
    rf_centre: float | None = None
    new_tensor: bool = True
    widths: tuple[int, ...] | None = None
    whole_image: bool = False  # the output sees the whole input (global pooling, flatten, fc): no field to measure
    branches: tuple[tuple[int, int, int], ...] | None = None  # a folded module's (kernel, stride, padding) per branch
    explain: list[str] = field(default_factory=list)
    path: tuple[str, ...] = ()
    inputs: tuple[int, ...] = ()  # the rows whose outputs this one reads (indices into the trace's rows; -1 - k: input k)

    @property
    def rf_text(self) -> str:
        """The receptive field as tables print it: input pixels, or "whole" where a unit sees all of it."""
        return "whole" if self.whole_image else "" if self.rf is None else str(self.rf)

    @property
    def height_width(self) -> str:
        if len(self.output_shape) >= 3:  # C x H x W; K x C x H x W (K maps stacked); C x D x H x W (3-D conv)
            h, w = self.output_shape[-2:]
            return f"{h}" if h == w else f"{h}x{w}"
        return "1"

    @property
    def channels(self) -> int | str:
        if self.op == "stack" and len(self.output_shape) == 4:
            return "x".join(map(str, self.output_shape[:2]))  # "3x64": three stacked maps of 64 channels
        return self.output_shape[0] if self.output_shape else 0


@dataclass
class TraceSettings:
    batch: int
    bytes_per_element: int
    optimizer: str


# Element-wise operations per output element (reported in their own column, never as FLOPs):
# one compare for ReLU, one op for sigmoid/tanh (a transcendental counted as one), three for
# LeCun's A*tanh(S*x), scale + shift for BatchNorm in its inference form, one multiply for
# dropout, and square + window sum + scale + shift + power + divide for LRN.
ACTIVATION_OPS: dict[type, int] = {
    nn.ReLU: 1, nn.ReLU6: 1, nn.LeakyReLU: 1, nn.Sigmoid: 1, nn.Tanh: 1, nn.GELU: 1, nn.SiLU: 1,
    nn.Hardswish: 1, nn.Hardsigmoid: 1, nn.ELU: 1, ScaledTanh: 3,
    # the rest of torch.nn's element-wise activations, one operation per element as the ones above
    # (PReLU's learned slopes are its parameters)
    nn.PReLU: 1, nn.RReLU: 1, nn.SELU: 1, nn.CELU: 1, nn.Mish: 1, nn.Hardtanh: 1, nn.LogSigmoid: 1, nn.Softplus: 1,
    nn.Softsign: 1, nn.Tanhshrink: 1, nn.Threshold: 1, nn.Hardshrink: 1, nn.Softshrink: 1,
    nn.GLU: 2,  # a x sigmoid(b) per output
}
FUNCTIONAL_ACTIVATIONS = {F.relu: 1, torch.relu: 1, torch.relu_: 1, F.relu_: 1, torch.sigmoid: 1, torch.tanh: 1,
                          F.gelu: 1, F.silu: 1, F.leaky_relu: 1, torch.Tensor.relu: 1, torch.Tensor.relu_: 1,
                          torch.Tensor.sigmoid: 1, torch.Tensor.tanh: 1}
ARITHMETIC = {torch.Tensor.__add__, torch.Tensor.__iadd__, torch.Tensor.__radd__, torch.Tensor.add, torch.Tensor.add_,
              torch.add, torch.Tensor.__mul__, torch.Tensor.__imul__, torch.Tensor.__rmul__, torch.Tensor.mul,
              torch.Tensor.mul_, torch.mul, torch.Tensor.__sub__, torch.Tensor.sub, torch.sub,
              torch.Tensor.__truediv__, torch.Tensor.div, torch.div}
CONCAT = {torch.cat, torch.concat, torch.stack}
SHAPE_ONLY = {torch.flatten, torch.Tensor.flatten, torch.Tensor.view, torch.Tensor.reshape, torch.reshape,
              torch.Tensor.chunk, torch.chunk, torch.Tensor.split, torch.split, torch.Tensor.transpose,
              torch.transpose, torch.Tensor.permute, torch.permute, torch.Tensor.unsqueeze, torch.Tensor.squeeze,
              torch.Tensor.__getitem__, torch.Tensor.narrow, torch.Tensor.expand, torch.Tensor.contiguous,
              F.pad, torch.Tensor.clone, torch.Tensor.float, torch.Tensor.to, torch.Tensor.view_as,
              torch.Tensor.long, torch.Tensor.int, torch.Tensor.half, torch.Tensor.bfloat16, torch.Tensor.double,
              torch.Tensor.type, torch.Tensor.type_as}
POOLS = {F.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d, F.adaptive_max_pool2d, torch.max_pool2d,
         torch.Tensor.mean, torch.mean, torch.nn.functional.lp_pool2d}
DROPOUTS = {F.dropout, F.dropout2d}
# A mean or sum that is not a pooling (over a stacked dimension: FractalNet's join): one addition
# per input element (the mean's division folded in).
REDUCTIONS = {torch.Tensor.mean, torch.mean, torch.Tensor.sum, torch.sum}
MATMULS = {torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.Tensor.__rmatmul__, torch.bmm, torch.Tensor.bmm,
           torch.mm, torch.Tensor.mm}
# Element-wise work of other functional operations, per output element: softmax exponentiates,
# sums and divides (3); resizing copies (nearest: 1) or blends 2^d neighbours (linear: 2 x 2^d - 1).
SOFTMAXES = {F.softmax, torch.softmax, torch.Tensor.softmax, F.log_softmax, torch.log_softmax, torch.Tensor.log_softmax}
RESIZES = {F.interpolate, F.upsample}

POOL_MODULES = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.LPPool2d, TrainableSubsampling)
NORM_MODULES = (nn.modules.batchnorm._BatchNorm, nn.LocalResponseNorm, nn.GroupNorm, nn.LayerNorm,
                nn.modules.instancenorm._InstanceNorm, nn.RMSNorm, nn.CrossMapLRN2d)
VIEW_MODULES = (nn.Flatten, nn.Unflatten, nn.Identity)
# layers that move values and compute none: a copy row each, no arithmetic
MOVEMENT_MODULES = (nn.PixelShuffle, nn.PixelUnshuffle, nn.ChannelShuffle, nn.Fold, nn.Unfold,
                    nn.modules.padding._ConstantPadNd, nn.modules.padding._ReflectionPadNd,
                    nn.modules.padding._ReplicationPadNd, nn.modules.padding._CircularPadNd,
                    nn.MaxUnpool1d, nn.MaxUnpool2d, nn.MaxUnpool3d)
# 1-D and 3-D pooling: K per pooled output as the 2-D ones (seed 003), over every window dimension
ND_POOL_MODULES = (nn.MaxPool1d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool3d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool3d,
                   nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool3d, nn.LPPool1d, nn.LPPool3d, nn.FractionalMaxPool2d,
                   nn.FractionalMaxPool3d)
# two inputs compared along a dimension, and an embedding's bags
COMPARISON_MODULES = (nn.CosineSimilarity, nn.PairwiseDistance, nn.EmbeddingBag)
DROPOUT_MODULES = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)
SOFTMAX_MODULES = (nn.Softmax, nn.LogSoftmax, nn.Softmin, nn.Softmax2d)
OTHER_CONVS = (nn.Conv1d, nn.Conv3d)
TRANSPOSED_CONVS = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
RECURRENT_MODULES = (nn.LSTM, nn.GRU, nn.RNN)
RECURRENT_CELLS = {nn.LSTMCell: "LSTM", nn.GRUCell: "GRU", nn.RNNCell: "RNN"}  # one time step of the layer
HANDLED_LEAVES = (nn.Conv2d, SparseConnectionConv2d, nn.Linear, EuclideanRBF, *POOL_MODULES, *NORM_MODULES,
                  *DROPOUT_MODULES, DropPath, ScheduledDropPath, *VIEW_MODULES, *ACTIVATION_OPS, *OTHER_CONVS, *TRANSPOSED_CONVS,
                  *RECURRENT_MODULES, *RECURRENT_CELLS, nn.Embedding, nn.MultiheadAttention, nn.Upsample, *SOFTMAX_MODULES,
                  *MOVEMENT_MODULES, *ND_POOL_MODULES, nn.Bilinear, *COMPARISON_MODULES)


def first_tensor(value) -> torch.Tensor | None:
    """The first tensor in a module's output: itself, or the first of a tuple, list or dict; a
    distribution's first parameter (a Categorical's logits or probs)."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, torch.distributions.Distribution):
        return next((v for v in vars(value).values() if isinstance(v, torch.Tensor)), None)
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (tuple, list)) else ()
    for item in items:
        found = first_tensor(item)
        if found is not None:
            return found
    return None


def meta_example(input_data) -> tuple[tuple, dict]:
    """(args, kwargs) for a forward, from an example input: a tensor, a tuple or list of them (one
    argument each), or a dict (keyword arguments); every tensor in it replaced by an empty one of its
    shape and type on the meta device (nothing is read)."""
    if isinstance(input_data, torch.Tensor):
        args, kwargs = (input_data,), {}
    elif isinstance(input_data, (tuple, list)):
        args, kwargs = tuple(input_data), {}
    elif isinstance(input_data, dict):
        args, kwargs = (), dict(input_data)
    else:
        raise TypeError(type(input_data).__name__)
    to_meta = lambda leaf: torch.empty_like(leaf, device="meta") if isinstance(leaf, torch.Tensor) else leaf  # noqa: E731
    return tree_map(to_meta, args), tree_map(to_meta, kwargs)


def string_padding(mode: str, kernel: tuple[int, ...], dilation: tuple[int, ...]) -> list[tuple[int, int]]:
    """(before, after) per axis for PyTorch's padding="valid" (none) or "same" (D(K-1) in all, the
    odd pixel after, as torch.nn.Conv*d pads it)."""
    if mode == "valid":
        return [(0, 0) for _ in kernel]
    return [(d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) for k, d in zip(kernel, dilation)]


def padding_before(module: nn.Module) -> tuple[int, ...]:
    """The padding before each axis, string paddings resolved."""
    if isinstance(module.padding, str):
        return tuple(before for before, _ in string_padding(module.padding, tuple(module.kernel_size),
                                                            tuple(module.dilation)))
    return tuple(module.padding)


def _pair(value) -> tuple[int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _per_image_shape(tensor: torch.Tensor, batch: int) -> tuple[int, ...]:
    """The shape without the batch dimension: the first, unless an op moved it (torch.stack(maps)
    puts it second), so that counts stay per image whatever the layout."""
    shape = tuple(tensor.shape)
    if shape and shape[0] != batch and batch in shape:
        where = shape.index(batch)
        return shape[:where] + shape[where + 1:]
    return shape[1:]


def _count(shape: tuple[int, ...]) -> int:
    total = 1
    for size in shape:
        total *= size
    return total


@dataclass
class _Field:
    """Receptive field of a tensor's first unit: size r, jump j, centre in input pixels."""

    r: int
    j: int
    start: float
    spatial: bool = True  # False once flattened: the unit sees the whole image


class Tracer:
    """Runs a model once on `meta` tensors and builds one LayerRow per operation."""

    def __init__(self, model: nn.Module, settings: TraceSettings) -> None:
        self.model = model
        self.settings = settings
        self.rows: list[LayerRow] = []
        self.names = {module: name for name, module in model.named_modules()}
        self.stack: list[nn.Module] = []
        self.leaf_depth = 0  # >0 while inside a module whose row is computed from the module
        self.fields: dict[int, _Field] = {}
        self.keep_alive: list[torch.Tensor] = []
        self.seen_params: set[int] = set()
        self.pending: dict[int, int] = {}  # id(module) -> row index reserved at its pre-hook
        self.block_outputs: dict[str, tuple[torch.Tensor, int, int]] = {}  # path -> (output, first row, last row)
        self.block_starts: dict[int, int] = {}
        self.functional_counts: dict[tuple[str, str], int] = {}
        self.ran: set[int] = set()  # ids of the modules the forward pass called
        self.not_counted: list[str] = []  # operations met whose work no formula covers
        self.input_side = 0  # the smallest spatial side of the input: a field that large is the whole image
        self.producers: dict[int, object] = {}  # id(tensor) -> the row that wrote it, or ("input", k)
        self.sources: dict[int, list] = {}  # id(row) -> the producers of its inputs

    # -- bookkeeping ---------------------------------------------------------------------
    def field_of(self, tensor: torch.Tensor) -> _Field:
        return self.fields.get(id(tensor), _Field(1, 1, 0.5))

    def set_field(self, tensor: torch.Tensor, value: _Field) -> None:
        self.keep_alive.append(tensor)
        self.fields[id(tensor)] = value

    def merged_field(self, tensors: list[torch.Tensor]) -> _Field:
        """Where branches meet, the largest field."""
        fields = [self.field_of(t) for t in tensors if isinstance(t, torch.Tensor)]
        return max(fields, key=lambda f: (f.r, f.j)) if fields else _Field(1, 1, 0.5)

    def own_params(self, module: nn.Module) -> int:
        total = 0
        for parameter in module.parameters(recurse=False):
            if id(parameter) not in self.seen_params:
                self.seen_params.add(id(parameter))
                total += parameter.numel()
        return total

    def path_of(self, module: nn.Module) -> tuple[str, ...]:
        name = self.names.get(module, "")
        return tuple(name.split(".")) if name else ()

    def new_row(self, name: str, kind: str, op: str, output: torch.Tensor, path: tuple[str, ...], **values) -> LayerRow:
        shape = _per_image_shape(output, self.settings.batch)
        row = LayerRow(name=name, kind=kind, op=op, depth=len(path), output_shape=shape, activations=_count(shape), path=path, **values)
        batch, size = self.settings.batch, self.settings.bytes_per_element
        if row.new_tensor:
            memory = formulas.activation_memory(batch, row.activations, size)
            row.activation_memory = int(memory.value)
            row.explain.append(memory.text)
        else:
            row.explain.append("activation memory = 0 (a view or an in-place result shares its input's memory)")
        if row.params:
            memory = formulas.parameter_memory(row.params, self.settings.optimizer, size)
            row.parameter_memory = int(memory.value)
            row.explain.append(memory.text)
        return row

    # -- hooks -----------------------------------------------------------------------------
    def pre_hook(self, module: nn.Module, inputs) -> None:
        self.stack.append(module)
        self.ran.add(id(module))
        if self.leaf_depth == 0 and isinstance(module, HANDLED_LEAVES):
            self.pending[id(module)] = len(self.rows)
            self.rows.append(None)  # placeholder keeps execution order
        if isinstance(module, HANDLED_LEAVES):
            self.leaf_depth += 1
        else:
            self.block_starts[id(module)] = len(self.rows)

    def post_hook(self, module: nn.Module, inputs, output) -> None:
        self.stack.pop()
        if isinstance(module, HANDLED_LEAVES):
            self.leaf_depth -= 1
            index = self.pending.pop(id(module), None)
            if index is not None:
                tensors = [t for t in inputs if isinstance(t, torch.Tensor)]
                main = first_tensor(output)
                if main is not None:
                    self.rows[index] = self.module_row(module, tensors, main)
                    self.wrote(self.rows[index], tensors, main)
            return
        first = self.block_starts.pop(id(module), len(self.rows))
        main = first_tensor(output)
        name = self.names.get(module)
        if name and isinstance(main, torch.Tensor):
            self.block_outputs[name] = (main, first, len(self.rows))

    # -- rows for modules ------------------------------------------------------------------
    def module_row(self, module: nn.Module, inputs: list[torch.Tensor], output: torch.Tensor) -> LayerRow:
        path = self.path_of(module)
        name = ".".join(path)
        x = inputs[0] if inputs else output
        batch = self.settings.batch
        in_field = self.field_of(x)
        op = type(module).__name__

        if isinstance(module, (nn.Conv2d, SparseConnectionConv2d)):
            return self.conv_row(name, path, op, module, x, output)
        if isinstance(module, (*OTHER_CONVS, *TRANSPOSED_CONVS)):
            return self.other_conv_row(name, path, op, module, x, output)
        if isinstance(module, RECURRENT_MODULES):
            return self.recurrent_row(name, path, op, module, x, output)
        if isinstance(module, tuple(RECURRENT_CELLS)):
            return self.cell_row(name, path, op, module, x, output)
        if isinstance(module, nn.MultiheadAttention):
            return self.attention_row(name, path, op, module, inputs, output)
        if isinstance(module, nn.Embedding):  # a table look-up: no arithmetic
            row = self.new_row(name, "embedding", op, output, path, params=self.own_params(module))
            row.explain.insert(0, f"FLOPs = 0 (a look-up of {module.embedding_dim}-wide rows in a table of {module.num_embeddings:,})")
            self.set_field(output, _Field(1, 1, 0.5, False))
            return self.with_field(row, output)
        if isinstance(module, nn.Upsample):
            return self.elementwise_row(name, path, op, x, output, self.resize_ops(module.mode, output), "resize")
        if isinstance(module, SOFTMAX_MODULES):
            return self.elementwise_row(name, path, op, x, output, 3, "activation")
        if isinstance(module, MOVEMENT_MODULES):
            return self.elementwise_row(name, path, op, x, output, 0, "copy")
        if isinstance(module, ND_POOL_MODULES):
            return self.nd_pool_row(name, path, op, module, x, output)
        if isinstance(module, nn.Bilinear):
            return self.bilinear_row(name, path, op, module, inputs, output)
        if isinstance(module, COMPARISON_MODULES):
            return self.comparison_row(name, path, op, module, inputs, output)
        if isinstance(module, (nn.Linear, EuclideanRBF)):
            return self.linear_row(name, path, op, module, x, output)
        if isinstance(module, POOL_MODULES):
            kernel, stride, padding, ceil_mode = self.pool_geometry(module, x, output)
            row = self.pool_row(name, path, op, x, output, kernel, stride, padding, ceil_mode, module)
            if isinstance(module, TrainableSubsampling):  # times a coefficient, plus a bias
                row.params = self.own_params(module)
                extra = formulas.elementwise_ops(batch, row.activations, 2, "coefficient and bias")
                row.elementwise_ops, row.explain = extra.value, row.explain + [extra.text]
                row.parameter_memory = int(formulas.parameter_memory(row.params, self.settings.optimizer, self.settings.bytes_per_element).value)
            return row
        in_place = output is x
        is_view = output._is_view() and output._base is (x._base if x._is_view() else x)
        if isinstance(module, NORM_MODULES):
            per_element = 2 if not isinstance(module, nn.LocalResponseNorm) else module.size + 5
            ops = formulas.elementwise_ops(batch, _count(_per_image_shape(output, batch)), per_element, op)
            row = self.new_row(name, "norm", op, output, path, params=self.own_params(module), elementwise_ops=ops.value,
                               new_tensor=not in_place)
            row.explain.insert(0, ops.text)
            self.set_field(output, in_field)
            return self.with_field(row, output)
        if isinstance(module, VIEW_MODULES):
            row = self.new_row(name, "view", op, output, path, new_tensor=not (is_view or in_place))
            self.set_field(output, _Field(in_field.r + (x.shape[-1] - 1) * in_field.j, in_field.j, in_field.start, False)
                           if isinstance(module, nn.Flatten) and x.dim() == 4 else in_field)
            return self.with_field(row, output)
        kind = "dropout" if isinstance(module, (*DROPOUT_MODULES, DropPath, ScheduledDropPath)) else "activation"
        per_element = ACTIVATION_OPS.get(type(module), 1)
        ops = formulas.elementwise_ops(batch, _count(_per_image_shape(output, batch)), per_element, op)
        # The walk runs in eval mode, where dropout passes its input through; the table models
        # training, where dropout writes a new, masked tensor.
        row = self.new_row(name, kind, op, output, path, params=self.own_params(module), elementwise_ops=ops.value,
                           new_tensor=kind == "dropout" or not in_place)
        row.explain.insert(0, ops.text)
        self.set_field(output, in_field)
        return self.with_field(row, output)

    def with_field(self, row: LayerRow, output: torch.Tensor) -> LayerRow:
        field_ = self.field_of(output)
        row.rf, row.jump, row.rf_centre = field_.r, field_.j, field_.start
        one_by_one = output.dim() == 4 and output.shape[2] == output.shape[3] == 1
        row.whole_image = not field_.spatial or (one_by_one and field_.r >= self.input_side > 0)
        return row

    def conv_row(self, name, path, op, module, x, output) -> LayerRow:
        batch = self.settings.batch
        kh, kw = _pair(module.kernel_size)
        sh, sw = _pair(getattr(module, "stride", 1))
        dh, dw = _pair(getattr(module, "dilation", 1))
        padding = getattr(module, "padding", 0)
        if isinstance(padding, str):  # PyTorch's "same" / "valid"
            ph, pw = padding_before(module)
            explain = self.nd_size_texts(module, x)
            explain = explain[:1] if explain[1].split(" = ", 1)[1] == explain[0].split(" = ", 1)[1] else explain
        else:
            ph, pw = _pair(padding)
            explain = self.size_texts(module, x, (kh, kw), (sh, sw), (ph, pw), (dh, dw))
        groups = getattr(module, "groups", 1)
        c_in = x.shape[1]
        if isinstance(module, SamePadded):
            ph, pw = (before for before, _ in module.padding_for(x.shape[2], x.shape[3]))
        acts = formulas.activations(output.shape[2], output.shape[3], output.shape[1])
        explain.append(acts.text)
        if isinstance(module, SparseConnectionConv2d):
            # Only the connected input maps contribute: sum over output maps of |inputs| x K x K.
            connections = module.out_index.numel()
            per_map = output.shape[2] * output.shape[3]
            flops = batch * per_map * connections * kh * kw * 2
            explain.append(f"FLOPs = {batch} x {per_map} x ({connections} connections x {kh} x {kw}) x 2 = {formulas.mflops(flops)}")
            params = self.own_params(module)
            explain.insert(0, f"params = ({connections} connections x {kh} x {kw}) + {output.shape[1]} biases = {params:,}")
        else:
            flops_w = formulas.conv_flops(batch, acts.value, kh, kw, c_in, groups)
            flops, params = flops_w.value, self.own_params(module)
            explain.append(formulas.conv_params(kh, kw, c_in, output.shape[1], groups, module.bias is not None).text)
            explain.append(flops_w.text)
        macs = formulas.multiply_adds(flops)
        explain.append(macs.text)
        in_field = self.field_of(x)
        r, j, start = formulas.receptive_field(in_field.r, in_field.j, in_field.start, kh, sh, ph, dh)
        self.set_field(output, _Field(int(r.value), int(j.value), start))
        row = self.new_row(name, "conv", op, output, path, params=params, flops=flops, macs=macs.value,
                           kernels=output.shape[1], kernel_size=(kh, kw), stride=(sh, sw), padding=(ph, pw),
                           groups=groups, explain=explain + [r.text, j.text])
        return self.with_field(row, output)

    @staticmethod
    def size_texts(module, x, kernel, stride, padding, dilation, ceil_mode: bool = False) -> list[str]:
        """The output-size formula for H, and for W where it differs; "SAME"-padded layers pad by the input's size."""
        if isinstance(module, SamePadded):
            pads = module.padding_for(x.shape[2], x.shape[3])
            texts = [formulas.same_output_size(x.shape[2 + axis], kernel[axis], stride[axis], *pads[axis], axis=name).text
                     for axis, name in enumerate("HW")]
            return texts[:1] if (x.shape[3], pads[1]) == (x.shape[2], pads[0]) and kernel[0] == kernel[1] else texts
        texts = [formulas.output_size(x.shape[2], kernel[0], stride[0], padding[0], dilation[0], ceil_mode, axis="H").text]
        if (x.shape[3], kernel[1], stride[1], padding[1]) != (x.shape[2], kernel[0], stride[0], padding[0]):
            texts.append(formulas.output_size(x.shape[3], kernel[1], stride[1], padding[1], dilation[1], ceil_mode, axis="W").text)
        return texts

    def other_conv_row(self, name, path, op, module, x, output) -> LayerRow:
        """Conv1d, Conv3d and the transposed convs: the seeds' conv formula over every kernel
        dimension (a transposed conv: over its input positions, as it scatters each one)."""
        batch, groups = self.settings.batch, module.groups
        kernel = tuple(module.kernel_size)
        kernel_elements = _count(kernel)
        c_in, c_out = x.shape[1], output.shape[1]
        if isinstance(module, TRANSPOSED_CONVS):
            worked = formulas.transposed_conv_flops(batch, _count(tuple(x.shape[2:])) * c_in, kernel_elements, c_out, groups)
        else:
            worked = formulas.conv_flops(batch, _count(_per_image_shape(output, batch)), kernel_elements, 1, c_in, groups)
        macs = formulas.multiply_adds(worked.value)
        params = self.own_params(module)
        explain = [f"params = {params:,} ({'x'.join(map(str, kernel))} kernels)", worked.text, macs.text]
        if not isinstance(module, TRANSPOSED_CONVS):
            explain[:0] = self.nd_size_texts(module, x)
        spatial = len(kernel) == 2  # a 2-D transposed conv keeps its input's field; 1-D and 3-D have none here
        self.set_field(output, self.field_of(x) if spatial else _Field(1, 1, 0.5, False))
        row = self.new_row(name, "conv", op, output, path, params=params, flops=worked.value, macs=macs.value, kernels=c_out,
                           kernel_size=kernel if spatial else None, stride=tuple(module.stride) if spatial else None,
                           padding=padding_before(module) if spatial else None, groups=groups, explain=explain)
        return self.with_field(row, output)

    @staticmethod
    def nd_size_texts(module, x) -> list[str]:
        """The output-size formula for each axis of a convolution ("L"; "H", "W"; "D", "H", "W")."""
        kernel, dilation, stride = tuple(module.kernel_size), tuple(module.dilation), tuple(module.stride)
        axes = {1: "L", 2: "HW", 3: "DHW"}[len(kernel)]
        spatial = x.shape[2:]
        if isinstance(module.padding, str):
            pads = string_padding(module.padding, kernel, dilation)
            return [formulas.torch_padded_output_size(spatial[i], kernel[i], stride[i], *pads[i], dilation[i], module.padding,
                                                      axis=f"{axes[i]}").text for i in range(len(kernel))]
        return [formulas.output_size(spatial[i], kernel[i], stride[i], module.padding[i], dilation[i], axis=axes[i]).text
                for i in range(len(kernel))]

    def recurrent_row(self, name, path, op, module, x, output) -> LayerRow:
        steps, batch_size = (x.shape[1], x.shape[0]) if module.batch_first else (x.shape[0], x.shape[1])
        if x.dim() == 2:  # unbatched: (steps, features)
            steps, batch_size = x.shape[0], 1
        # The table's rows are per image; here the traced batch dimension is the sequence batch.
        worked = formulas.recurrent_flops(op if op in formulas.RECURRENT_GATES else "RNN", batch_size, steps,
                                          module.input_size, module.hidden_size, module.num_layers,
                                          2 if module.bidirectional else 1, getattr(module, "proj_size", 0))
        macs = formulas.multiply_adds(worked.value)
        row = self.new_row(name, "recurrent", op, output, path, params=self.own_params(module), flops=worked.value,
                           macs=macs.value, kernels=module.hidden_size, explain=[worked.text, macs.text])
        self.set_field(output, _Field(1, 1, 0.5, False))
        return self.with_field(row, output)

    def cell_row(self, name, path, op, module, x, output) -> LayerRow:
        """An LSTMCell, GRUCell or RNNCell: one time step of its layer, for each sequence in the batch."""
        batch_size = x.shape[0] if x.dim() == 2 else 1
        layer = next(kind for cell, kind in RECURRENT_CELLS.items() if isinstance(module, cell))
        worked = formulas.recurrent_flops(layer, batch_size, 1, module.input_size, module.hidden_size)
        macs = formulas.multiply_adds(worked.value)
        row = self.new_row(name, "recurrent", op, output, path, params=self.own_params(module), flops=worked.value,
                           macs=macs.value, kernels=module.hidden_size, explain=[worked.text, macs.text])
        self.set_field(output, _Field(1, 1, 0.5, False))
        return self.with_field(row, output)

    def attention_row(self, name, path, op, module, inputs, output) -> LayerRow:
        query = inputs[0]
        key = inputs[1] if len(inputs) > 1 else query
        sequence_first = query.dim() == 3 and not module.batch_first  # (L, B, E) rather than (B, L, E) or (L, E)
        batch_size = 1 if query.dim() == 2 else query.shape[1 if sequence_first else 0]
        length, source = (query.shape[0], key.shape[0]) if sequence_first else (query.shape[-2], key.shape[-2])
        e, kdim, vdim = module.embed_dim, module.kdim, module.vdim
        projections = 2 * batch_size * (length * e * e + source * kdim * e + source * vdim * e + length * e * e)
        scores = 2 * 2 * batch_size * length * source * e  # Q K^T, then the weights times V
        flops = projections + scores
        softmax = formulas.elementwise_ops(1, batch_size * module.num_heads * length * source, 3, "softmax")
        explain = [f"FLOPs = projections 2 x {batch_size} x ({length} x {e} x {e} [q] + {source} x {kdim} x {e} [k] + "
                   f"{source} x {vdim} x {e} [v] + {length} x {e} x {e} [out]) + scores and weighted sum 2 x 2 x "
                   f"{batch_size} x {length} x {source} x {e} = {formulas.mflops(flops)}", softmax.text]
        row = self.new_row(name, "attention", op, output, path, params=self.own_params(module), flops=flops, macs=flops // 2,
                           elementwise_ops=softmax.value, kernels=e, explain=explain)
        self.set_field(output, _Field(1, 1, 0.5, False))
        return self.with_field(row, output)

    @staticmethod
    def resize_ops(mode: str | None, output: torch.Tensor) -> int:
        if mode in (None, "nearest", "nearest-exact"):
            return 1
        return 2 * 2 ** (output.dim() - 2) - 1  # linear, bilinear, trilinear (bicubic counted as bilinear)

    def elementwise_row(self, name, path, op, x, output, per_element: int, kind: str) -> LayerRow:
        ops = formulas.elementwise_ops(self.settings.batch, _count(_per_image_shape(output, self.settings.batch)), per_element, op)
        row = self.new_row(name, kind, op, output, path, elementwise_ops=ops.value, new_tensor=output is not x)
        row.explain.insert(0, ops.text)
        field_ = self.field_of(x)
        if kind == "resize" and output.dim() == 4 and x.dim() == 4 and output.shape[-1] != x.shape[-1]:
            scale = x.shape[-1] / output.shape[-1]  # each output pixel steps a fraction of an input pixel
            field_ = _Field(field_.r, max(1, int(field_.j * scale)), field_.start, field_.spatial)
        self.set_field(output, field_)
        return self.with_field(row, output)

    def linear_row(self, name, path, op, module, x, output) -> LayerRow:
        batch = self.settings.batch
        c_in, c_out = x.shape[-1], output.shape[-1]
        positions = _count(tuple(x.shape[1:-1]))  # a linear layer over tokens or pixels runs once per position
        params = self.own_params(module)
        if isinstance(module, EuclideanRBF):  # subtract, square, add for each (input, class) pair
            flops = batch * 3 * c_in * c_out
            explain = [f"FLOPs = {batch} x 3 x {c_in} x {c_out} = {formulas.mflops(flops)} (subtract, square, add)",
                       f"params = 0 trainable ({c_in} x {c_out} fixed codes)"]
            macs = 0
        else:
            worked = formulas.linear_flops(batch, c_in, c_out, positions)
            flops = worked.value
            explain = [formulas.linear_params(c_in, c_out, module.bias is not None).text, worked.text]
            macs_w = formulas.multiply_adds(flops)
            macs = macs_w.value
            explain.append(macs_w.text)
        in_field = self.field_of(x)
        self.set_field(output, _Field(in_field.r, in_field.j, in_field.start, False))
        kind = "rbf" if isinstance(module, EuclideanRBF) else "linear"
        row = self.new_row(name, kind, op, output, path, params=params, flops=flops, macs=macs, kernels=c_out,
                           kernel_size=(1, 1), stride=(1, 1), padding=(0, 0), explain=explain)
        return self.with_field(row, output)

    def pool_geometry(self, module, x, output):
        if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
            return self.adaptive_geometry(x, output) + (False,)
        if isinstance(module, TrainableSubsampling):
            k = module.kernel_size
            return (k, k), (k, k), (0, 0), False
        kernel = _pair(module.kernel_size)
        stride = _pair(module.stride if module.stride is not None else module.kernel_size)
        padding = _pair(getattr(module, "padding", 0))
        return kernel, stride, padding, bool(getattr(module, "ceil_mode", False))

    @staticmethod
    def adaptive_geometry(x, output):
        """Adaptive pooling as the fixed window it amounts to (exact when sizes divide)."""
        kernel, stride = [], []
        for size_in, size_out in zip(x.shape[2:], output.shape[2:]):
            stride.append(size_in // size_out)
            kernel.append(size_in - (size_out - 1) * (size_in // size_out))
        return tuple(kernel), tuple(stride), (0, 0)

    def nd_pool_row(self, name, path, op, module, x, output) -> LayerRow:
        """A 1-D or 3-D pool: the window's elements per pooled output (an adaptive pool's fixed window)."""
        dims = int(op[-2])  # MaxPool1d, FractionalMaxPool2d, AvgPool3d, ...
        if "Adaptive" in op:
            window = [size_in - (size_out - 1) * (size_in // size_out)
                      for size_in, size_out in zip(x.shape[-dims:], output.shape[-dims:])]
        else:
            kernel = module.kernel_size
            window = list(kernel) if isinstance(kernel, (tuple, list)) else [kernel] * dims
        outputs = _count(_per_image_shape(output, self.settings.batch))
        flops = self.settings.batch * outputs * _count(tuple(window))
        text = f"FLOPs = {self.settings.batch} x {outputs:,} x {' x '.join(map(str, window))} = {formulas.mflops(flops)}"
        row = self.new_row(name, "pool", op, output, path, flops=flops, kernels=1, explain=[text])
        self.set_field(output, _Field(1, 1, 0.5, False))
        return self.with_field(row, output)

    def comparison_row(self, name, path, op, module, inputs, output) -> LayerRow:
        """CosineSimilarity: three dot products of length D per output (x1.x2, |x1|^2, |x2|^2);
        PairwiseDistance: a difference, a power and a sum per element, 3 x D ops per output;
        EmbeddingBag: each of a bag's L looked-up rows added into its sum, L x dim ops per bag."""
        batch, outputs = self.settings.batch, _count(_per_image_shape(output, self.settings.batch))
        x = inputs[0]
        if isinstance(module, nn.EmbeddingBag):
            length = x.shape[-1] if x.dim() == 2 else x.shape[0]
            bags = x.shape[0] if x.dim() == 2 else 1
            ops = formulas.elementwise_ops(bags, length, module.embedding_dim, f"{op} ({module.mode} of each bag)")
            row = self.new_row(name, "reduce", op, output, path, params=self.own_params(module), elementwise_ops=ops.value,
                               explain=[ops.text])
        else:
            length = x.shape[getattr(module, "dim", -1)]
            if isinstance(module, nn.CosineSimilarity):
                macs = batch * outputs * 3 * length
                explain = [f"MACs = {batch} x {outputs} outputs x 3 dot products x {length} = {macs:,}",
                           f"FLOPs = 2 x MACs = {formulas.mflops(2 * macs)}"]
                row = self.new_row(name, "matmul", op, output, path, flops=2 * macs, macs=macs, explain=explain)
            else:
                ops = formulas.elementwise_ops(batch, outputs * length, 3, f"{op} (difference, power, sum)")
                row = self.new_row(name, "reduce", op, output, path, elementwise_ops=ops.value, explain=[ops.text])
        self.set_field(output, _Field(1, 1, 0.5, False))
        return self.with_field(row, output)

    def bilinear_row(self, name, path, op, module, inputs, output) -> LayerRow:
        """y = x1^T A x2 + b: each output a sum over in1 x in2 products, 2 FLOPs a multiply-add."""
        positions = _count(_per_image_shape(output, self.settings.batch)) // module.out_features
        macs = self.settings.batch * positions * module.out_features * module.in1_features * module.in2_features
        text = (f"FLOPs = 2 x {self.settings.batch} x {positions} x {module.out_features} outputs x "
                f"{module.in1_features} x {module.in2_features} = {formulas.mflops(2 * macs)}")
        row = self.new_row(name, "linear", op, output, path, params=self.own_params(module), flops=2 * macs, macs=macs,
                           kernels=module.out_features, explain=[text, f"MACs = FLOPs / 2 = {macs:,}"])
        self.set_field(output, _Field(1, 1, 0.5, False))
        return self.with_field(row, output)

    def pool_row(self, name, path, op, x, output, kernel, stride, padding, ceil_mode, module=None) -> LayerRow:
        batch = self.settings.batch
        acts = formulas.activations(output.shape[2], output.shape[3], output.shape[1])
        worked = formulas.pool_flops(batch, acts.value, kernel[0], kernel[1])
        explain = [self.size_texts(module, x, kernel, stride, padding, (1, 1), ceil_mode)[0], acts.text, worked.text]
        if isinstance(module, SamePadded):
            padding = tuple(before for before, _ in module.padding_for(x.shape[2], x.shape[3]))
        in_field = self.field_of(x)
        r, j, start = formulas.receptive_field(in_field.r, in_field.j, in_field.start, kernel[0], stride[0], padding[0])
        self.set_field(output, _Field(int(r.value), int(j.value), start))
        row = self.new_row(name, "pool", op, output, path, flops=worked.value, kernels=1, kernel_size=tuple(kernel),
                           stride=tuple(stride), padding=tuple(padding), explain=explain + [r.text, j.text])
        return self.with_field(row, output)

    # -- rows for functional operations in a forward method --------------------------------
    def functional_row(self, func: Callable, args: tuple, kwargs: dict, output: Any) -> None:
        tensors = [a for a in chain(args, kwargs.values()) if isinstance(a, torch.Tensor)]
        for a in args:
            if isinstance(a, (list, tuple)):
                tensors += [t for t in a if isinstance(t, torch.Tensor)]
        outputs = output if isinstance(output, (tuple, list)) else (output,)
        outputs = [o for o in outputs if isinstance(o, torch.Tensor)]
        if not outputs or not tensors:
            return
        out = outputs[0]
        owner = self.stack[-1] if self.stack else self.model
        path = self.path_of(owner)
        op = getattr(func, "__name__", str(func)).strip("_") or "op"
        key = (".".join(path), op)
        self.functional_counts[key] = self.functional_counts.get(key, 0) + 1
        count = self.functional_counts[key]
        name = ".".join(path + (op if count == 1 else f"{op}{count}",))
        batch = self.settings.batch
        x = tensors[0]
        in_field = self.merged_field(tensors)

        if func in (F.conv2d,):
            weight = args[1] if len(args) > 1 else kwargs["weight"]
            stride = _pair(args[3] if len(args) > 3 else kwargs.get("stride", 1))
            padding = args[4] if len(args) > 4 else kwargs.get("padding", 0)
            padding = padding if isinstance(padding, str) else _pair(padding)
            dilation = _pair(args[5] if len(args) > 5 else kwargs.get("dilation", 1))
            groups = args[6] if len(args) > 6 else kwargs.get("groups", 1)
            fake = nn.Conv2d(x.shape[1], weight.shape[0], weight.shape[2:], stride, padding, dilation, groups=groups, bias=False,
                             device="meta")
            row = self.conv_row(name, path, "conv2d", fake, x, out)
            row.params = sum(t.numel() for t in tensors[1:] if isinstance(t, nn.Parameter) and id(t) not in self.seen_params)
            self.seen_params.update(id(t) for t in tensors[1:] if isinstance(t, nn.Parameter))
        elif func in (F.linear,):
            fake = nn.Linear(x.shape[-1], out.shape[-1], bias=False, device="meta")
            row = self.linear_row(name, path, "linear", fake, x, out)
            row.params = sum(t.numel() for t in tensors[1:] if isinstance(t, nn.Parameter) and id(t) not in self.seen_params)
            self.seen_params.update(id(t) for t in tensors[1:] if isinstance(t, nn.Parameter))
        elif func in POOLS and x.dim() == 4 and out.dim() in (2, 4):
            if out.dim() == 2 or func in (F.adaptive_avg_pool2d, F.adaptive_max_pool2d):
                spatial_out = out if out.dim() == 4 else out.reshape(out.shape[0], out.shape[1], 1, 1)
                kernel, stride, padding = self.adaptive_geometry(x, spatial_out)
                ceil_mode = False
            else:
                kernel = _pair(args[1] if len(args) > 1 else kwargs["kernel_size"])
                stride_arg = args[2] if len(args) > 2 else kwargs.get("stride")
                stride = _pair(stride_arg if stride_arg not in (None, []) else kernel)
                padding = _pair(args[3] if len(args) > 3 else kwargs.get("padding", 0))
                ceil_mode = bool(kwargs.get("ceil_mode", args[5] if func is F.max_pool2d and len(args) > 5 else False))
                spatial_out = out
            row = self.pool_row(name, path, op, x, spatial_out, kernel, stride, padding, ceil_mode)
            if out.dim() == 2:
                row.output_shape, self.fields[id(out)] = _per_image_shape(out, batch), self.field_of(spatial_out)
                self.keep_alive.append(out)
        elif func in REDUCTIONS:
            ops = formulas.elementwise_ops(batch, _count(_per_image_shape(x, batch)), 1, f"{op} over a stacked dimension")
            self.set_field(out, in_field)
            row = self.with_field(self.new_row(name, "reduce", op, out, path, elementwise_ops=ops.value), out)
            row.explain.insert(0, ops.text)
        elif func in MATMULS and len(tensors) >= 2:
            inner = tensors[0].shape[-1]
            worked = formulas.matmul_flops(batch, _count(_per_image_shape(out, batch)) if out.dim() > 1 else 1, inner)
            self.set_field(out, _Field(1, 1, 0.5, False))
            row = self.with_field(self.new_row(name, "matmul", op, out, path, flops=worked.value,
                                               macs=worked.value // 2, explain=[worked.text]), out)
        elif func in SOFTMAXES:
            row = self.elementwise_row(name, path, op, x, out, 3, "activation")
        elif func in RESIZES:
            mode = kwargs.get("mode", args[3] if len(args) > 3 else "nearest")
            row = self.elementwise_row(name, path, op, x, out, self.resize_ops(mode, out), "resize")
        elif func in CONCAT:
            self.set_field(out, in_field)
            row = self.with_field(self.new_row(name, "concat", op, out, path), out)
        elif func in ARITHMETIC or func in FUNCTIONAL_ACTIVATIONS or func in DROPOUTS:
            in_place = any(out is t for t in tensors)
            kind = "add" if func in ARITHMETIC else "dropout" if func in DROPOUTS else "activation"
            ops = formulas.elementwise_ops(batch, _count(_per_image_shape(out, batch)), FUNCTIONAL_ACTIVATIONS.get(func, 1), op)
            self.set_field(out, in_field)
            row = self.with_field(self.new_row(name, kind, op, out, path, elementwise_ops=ops.value,
                                               new_tensor=kind == "dropout" or not in_place), out)
            row.explain.insert(0, ops.text)
        elif func in SHAPE_ONLY:
            is_view = out._is_view() or any(out is t for t in tensors)
            flattening = x.dim() == 4 and out.dim() == 2
            self.set_field(out, _Field(in_field.r + (x.shape[-1] - 1) * in_field.j, in_field.j, in_field.start, False)
                           if flattening else in_field)
            for extra in outputs[1:]:
                self.set_field(extra, in_field)
            row = self.with_field(self.new_row(name, "view" if is_view else "copy", op, out, path, new_tensor=not is_view), out)
        else:
            self.set_field(out, in_field)
            row = self.with_field(self.new_row(name, "other", op, out, path, new_tensor=not out._is_view()), out)
            row.explain.insert(0, f"not counted: no formula for {op}, so its work is in no column")
            self.not_counted.append(f"{name} ({op})")
        self.rows.append(row)
        self.wrote(row, tensors, out)

    def wrote(self, row: LayerRow, inputs: list[torch.Tensor], output: torch.Tensor) -> None:
        """Record the dataflow: `row` read `inputs` and wrote `output`."""
        producers = []
        for tensor in inputs:
            producer = self.producer_of(tensor)
            if producer is not None and all(producer is not p for p in producers):
                producers.append(producer)
        self.sources[id(row)] = producers
        self.producers[id(output)] = row
        self.keep_alive.append(output)

    def producer_of(self, tensor: torch.Tensor):
        while tensor is not None:
            producer = self.producers.get(id(tensor))
            if producer is not None:
                return producer
            tensor = tensor._base
        return None


class _FunctionalRecorder(TorchFunctionMode):
    def __init__(self, tracer: Tracer) -> None:
        super().__init__()
        self.tracer = tracer

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        output = func(*args, **kwargs)
        tracer = self.tracer
        if (tracer.leaf_depth == 0 and tracer.stack and _produces_tensor(output) and not _is_attribute(func)
                and not _keeps_state(func, args, tracer)):
            tracer.functional_row(func, args, kwargs, output)
        return output


def _keeps_state(func, args, tracer) -> bool:
    """An initializer, or an in-place write to the model's own parameters or buffers (a lazy layer
    filling itself as it is sized): upkeep of the model's state, not work of the net."""
    if getattr(func, "__module__", "") == "torch.nn.init":
        return True
    name = getattr(func, "__name__", "")
    return name.endswith("_") and bool(args) and id(args[0]) in tracer.state_ids


def _produces_tensor(output) -> bool:
    if isinstance(output, torch.Tensor):
        return True
    return isinstance(output, (tuple, list)) and bool(output) and all(isinstance(o, torch.Tensor) for o in output)


def _is_attribute(func) -> bool:
    name = getattr(func, "__name__", "")
    return name in ("__get__", "__set__", "size", "dim", "numel", "new_empty", "new_zeros", "bernoulli_", "uniform_", "detach")


def trace(model: nn.Module, input_shape: tuple[int, ...] | list[tuple[int, ...]], settings: TraceSettings,
          copy_model: bool = True, dtypes: list[torch.dtype] | None = None,
          call: tuple[tuple, dict] | None = None) -> tuple[list[LayerRow], Tracer, torch.Tensor]:
    """Run `model` (a meta copy of it, unless `copy_model` is False) on a (batch, *input_shape)
    meta tensor, in eval mode; a list of shapes passes one tensor per shape, as several arguments."""
    shapes = input_shape if isinstance(input_shape, list) else [input_shape]
    # BatchNorm keeps the shape; the walk skips its slow meta kernel (see models.base.meta_copy).
    meta_model = (meta_copy(model) if copy_model else model).eval()
    skip_batchnorm_(meta_model)
    tracer = Tracer(meta_model, settings)
    tracer.state_ids = {id(t) for t in chain(meta_model.parameters(), meta_model.buffers())}
    handles = []
    for module in meta_model.modules():
        handles.append(module.register_forward_pre_hook(tracer.pre_hook))
        handles.append(module.register_forward_hook(tracer.post_hook))
    dtypes = dtypes or [torch.float32] * len(shapes)
    if call is None:
        inputs = [torch.empty((settings.batch, *shape), device="meta", dtype=dtype) for shape, dtype in zip(shapes, dtypes)]
        call = (tuple(inputs), {})
    else:  # example inputs, already on meta: the forward is called with them as they were given
        inputs = [leaf for leaf in tree_leaves(call) if isinstance(leaf, torch.Tensor)]
    for k, x in enumerate(inputs):
        tracer.set_field(x, _Field(1, 1, 0.5))
        tracer.producers[id(x)] = ("input", k)
    sides = [side for shape in shapes if len(shape) == 3 for side in shape[1:]]
    tracer.input_side = min(sides) if sides else 0
    # a distribution checks its arguments' values when built (Tensor.item()), which meta tensors have not
    validating = torch.distributions.Distribution._validate_args
    torch.distributions.Distribution.set_default_validate_args(False)
    try:
        with torch.no_grad(), _FunctionalRecorder(tracer), warnings.catch_warnings():
            # PyTorch's note that an even "same" kernel copies its input: about speed, not shapes
            warnings.filterwarnings("ignore", message="Using padding='same' with even kernel")
            output = meta_model(*call[0], **call[1])
    finally:
        torch.distributions.Distribution.set_default_validate_args(validating)
        for handle in handles:
            handle.remove()
    rows = [row for row in tracer.rows if row is not None]
    index = {id(row): i for i, row in enumerate(rows)}
    for i, row in enumerate(rows):
        sources = tracer.sources.get(id(row))
        if sources is None:  # a row the dataflow did not see: it follows the row before it
            row.inputs = (i - 1,) if i else (-1,)
        else:
            row.inputs = tuple(-1 - p[1] if isinstance(p, tuple) else index[id(p)] for p in sources
                               if isinstance(p, tuple) or id(p) in index) or ((i - 1,) if i else (-1,))
    tracer.returned = output
    return rows, tracer, first_tensor(output)
