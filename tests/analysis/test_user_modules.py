"""`summary` on the modules people write (issue 43, part 1): PyTorch's string paddings, pruned and
parametrized layers, lazy layers, embeddings fed indices, outputs that are not a tensor, and
refusals that name the real reason. Each count is written out by hand."""

from __future__ import annotations

import collections
import threading
import warnings

import pytest
import torch
import torch.nn.utils.prune  # noqa: F401 - torch.nn.utils.prune is a submodule to import
from torch import nn
from torch.nn.utils import parametrizations

import cnnlab
from cnnlab.errors import CnnlabError, InputShapeError


def unique_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


@pytest.mark.parametrize("layer, input_size, output_shape, macs, first_formula", [
    # "same": D(K-1) pixels in all, the odd one after; the size is kept
    (nn.Conv2d(3, 8, 5, padding="same"), (3, 32, 32), (8, 32, 32), 32 * 32 * 8 * 5 * 5 * 3,
     'H_out = floor((32 - 5 + 2*2) / 1) + 1 = 32 (padding="same": 4 pixels, 2 before and 2 after)'),
    (nn.Conv2d(3, 8, 4, padding="same"), (3, 32, 32), (8, 32, 32), 32 * 32 * 8 * 4 * 4 * 3,
     'H_out = floor((32 - 4 + 1 + 2) / 1) + 1 = 32 (padding="same": 3 pixels, 1 before and 2 after)'),
    (nn.Conv2d(3, 8, 3, padding="same", dilation=2), (3, 31, 32), (8, 31, 32), 31 * 32 * 8 * 9 * 3,
     'H_out = floor((31 - (2*(3 - 1) + 1) + 2*2) / 1) + 1 = 31 (padding="same": 4 pixels, 2 before and 2 after)'),
    (nn.Conv2d(3, 8, 3, padding="valid"), (3, 32, 32), (8, 30, 30), 30 * 30 * 8 * 9 * 3,
     'H_out = floor((32 - 3 + 2*0) / 1) + 1 = 30 (padding="valid": nothing)'),
    (nn.Conv1d(3, 8, 4, padding="same"), (3, 50), (8, 50), 50 * 8 * 4 * 3,
     'L_out = floor((50 - 4 + 1 + 2) / 1) + 1 = 50 (padding="same": 3 pixels, 1 before and 2 after)'),
    (nn.Conv3d(3, 8, 3, padding="same"), (3, 8, 16, 16), (8, 8, 16, 16), 8 * 16 * 16 * 8 * 27 * 3,
     'D_out = floor((8 - 3 + 2*1) / 1) + 1 = 8 (padding="same": 2 pixels, 1 before and 1 after)'),
    (nn.Conv3d(3, 8, 3, padding=1, stride=2), (3, 8, 16, 16), (8, 4, 8, 8), 4 * 8 * 8 * 8 * 27 * 3,
     "D_out = floor((8 - 3 + 2*1) / 2) + 1 = 4"),
], ids=["same-5", "same-4-odd-pixel-after", "same-dilated", "valid", "conv1d-same", "conv3d-same", "conv3d-stride"])
def test_string_paddings_are_resolved_as_pytorch_pads(layer, input_size, output_shape, macs, first_formula):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch's note on even kernels with "same"
        result = cnnlab.summary(layer, input_size=input_size)
        assert tuple(layer(torch.randn(1, *input_size)).shape[1:]) == output_shape  # what PyTorch computes
    row = result.rows[-1]
    assert row.output_shape == output_shape and row.macs == macs and row.params == unique_parameters(layer)
    assert row.explain[0] == first_formula


def test_pruned_and_parametrized_layers_count_the_parameters_the_module_holds():
    pruned = nn.Linear(4, 4)
    torch.nn.utils.prune.l1_unstructured(pruned, "weight", 0.5)  # weight_orig and a mask; weight is computed
    normed = parametrizations.weight_norm(nn.Linear(4, 3))  # original0 (g, 3) and original1 (v, 12)
    spectral = parametrizations.spectral_norm(nn.Linear(4, 3))  # original (12); u and v are buffers
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.nn.utils.weight_norm is deprecated
        old_style = nn.utils.weight_norm(nn.Conv2d(3, 8, 3))  # weight_g (8) and weight_v (216)
    for module, input_size, params, macs in ((pruned, (4,), 16 + 4, 16), (normed, (4,), 3 + 12 + 3, 12),
                                             (spectral, (4,), 12 + 3, 12), (old_style, (3, 8, 8), 8 + 216 + 8, 6 * 6 * 8 * 27)):
        result = cnnlab.summary(module, input_size=input_size)
        assert result.totals.params == params == unique_parameters(module)
        assert result.totals.macs == macs
    notes = cnnlab.summary(pruned, input_size=(4,)).notes
    assert "pruning masks hold 8 weights at zero (weight: 8): 12 effective parameters of the 20 counted" in notes


def test_lazy_layers_are_sized_from_the_input_on_the_meta_device_and_stay_lazy():
    model = nn.Sequential(nn.LazyConv2d(8, 3), nn.LazyBatchNorm2d(), nn.Flatten(), nn.LazyLinear(5))
    result = cnnlab.summary(model, input_size=(3, 10, 10))
    assert result.totals.params == (8 * 3 * 9 + 8) + 2 * 8 + (8 * 8 * 8 * 5 + 5)
    assert result.totals.macs == 8 * 8 * 8 * 27 + 8 * 8 * 8 * 5
    assert any(note.startswith("lazy modules (0, 1, 3) sized here from the 3x10x10 input") for note in result.notes)
    assert isinstance(model[0].weight, nn.parameter.UninitializedParameter)  # the user's module is untouched
    assert result.not_counted == []  # their initialization, run as they are sized, is no work of the net
    stepped = cnnlab.summary(model, input_size=(3, 10, 10), peak=True)
    assert "the training step was not simulated: its lazy modules have no parameters yet" in stepped.notes[-1]


class Embedder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed, self.fc = nn.Embedding(100, 16), nn.Linear(16, 2)

    def forward(self, tokens):
        return self.fc(self.embed(tokens).mean(1))


def test_an_embedding_summarizes_with_integer_indices_and_says_so_without():
    result = cnnlab.summary(Embedder(), input_size=(5,), dtypes=[torch.long])
    assert result.totals.params == 100 * 16 + 16 * 2 + 2 and result.totals.macs == 16 * 2
    with pytest.raises(CnnlabError, match=r"^Embedder cannot take a 5 float32 input: .*Long, Int.*; give the input's "
                                          r"type with dtypes=\[torch.long\]") as refused:
        cnnlab.summary(Embedder(), input_size=(5,))
    assert not isinstance(refused.value, InputShapeError)  # the type is the cause, not the shape
    with pytest.raises(CnnlabError, match=r"dtypes must be 1 torch dtype\(s\), one per input \(e.g. \[torch.long\]\), "
                                          r"got \['long'\]"):
        cnnlab.summary(Embedder(), input_size=(5,), dtypes=["long"])


class Policy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return torch.distributions.Categorical(logits=self.fc(x))


class ReturnsNothing(Policy):
    def forward(self, x):
        self.fc(x)


def test_outputs_that_are_not_a_tensor_count_what_ran():
    policy = cnnlab.summary(Policy(), input_size=(4,))
    assert policy.totals.output_shape == (3,) and policy.totals.macs == 12
    assert "the forward returned a Categorical distribution: its size is that of its first parameter" in policy.notes
    nothing = cnnlab.summary(ReturnsNothing(), input_size=(4,))
    assert nothing.totals.output_shape == () and nothing.totals.macs == 12 and nothing.totals.params == 15
    assert nothing.notes[0].startswith("the forward returned None, no tensor: the work of every layer that ran")


class Buggy(nn.Module):
    def forward(self, x):
        raise ValueError("my own bug")


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
def test_refusals_name_the_real_reason():
    with pytest.raises(CnnlabError, match=r"^RecursiveScriptModule is a TorchScript module: PyTorch runs no forward "
                                          r"hooks on one, .* summarize the nn.Module it was scripted or traced from$"):
        cnnlab.summary(torch.jit.script(nn.Linear(4, 4)), input_size=(4,))
    with pytest.raises(CnnlabError, match=r"^Buggy's forward raised ValueError on a 4 float32 input \(on the meta "
                                          r"device, shapes only\): my own bug$") as raised:
        cnnlab.summary(Buggy(), input_size=(4,))
    assert isinstance(raised.value.__cause__, ValueError) and raised.value.__cause__.__traceback__ is not None
    with pytest.raises(InputShapeError, match=r"^Linear cannot take a 5 input: "):  # here the shape is the cause
        cnnlab.summary(nn.Linear(4, 4), input_size=(5,))


class TextAndImage(nn.Module):
    """Two inputs of two types, one by keyword, and a non-tensor argument."""

    def __init__(self) -> None:
        super().__init__()
        self.image, self.embed = nn.Linear(4, 3), nn.Embedding(10, 3)

    def forward(self, x, tokens=None, scale: float = 1.0):
        return self.image(x) * scale + self.embed(tokens).mean(1)


def test_an_example_input_of_any_form_gives_the_shapes_types_and_batch():
    model = TextAndImage()
    keywords = cnnlab.summary(model, input_data={"x": torch.zeros(8, 4), "tokens": torch.zeros(8, 5, dtype=torch.long),
                                                 "scale": 2.0})
    assert (keywords.batch, keywords.input_size) == (8, [(4,), (5,)])
    assert keywords.totals.params == 4 * 3 + 3 + 10 * 3 and keywords.totals.macs == 8 * 4 * 3
    assert keywords.totals.output_shape == (3,)
    positional = cnnlab.summary(model, input_data=(torch.zeros(1, 4), torch.zeros(1, 5, dtype=torch.long)))
    assert positional.batch == 1 and positional.totals.macs == 4 * 3
    conv = cnnlab.summary(nn.Conv2d(3, 8, 3), input_data=torch.zeros(2, 3, 10, 10))
    assert conv.input_size == (3, 10, 10) and conv.totals.macs == 2 * 8 * 8 * 8 * 27


@pytest.mark.parametrize("input_data, message", [
    ("x", "input_data must be a tensor, a tuple or list of the forward's arguments, or a dict of its keyword "
          "arguments; got str"),
    ({"x": 3}, "input_data needs at least one tensor, each with a batch dimension first"),
    (torch.tensor(1.0), "input_data needs at least one tensor, each with a batch dimension first"),
])
def test_an_example_input_of_the_wrong_kind_is_one_line(input_data, message):
    with pytest.raises(CnnlabError, match=f"^{message}"):
        cnnlab.summary(TextAndImage(), input_data=input_data)
    with pytest.raises(CnnlabError, match="^give input_data alone: its tensors carry their own shapes and types"):
        cnnlab.summary(TextAndImage(), input_size=(4,), input_data=torch.zeros(1, 4))


@pytest.mark.parametrize("cell, gates", [(nn.LSTMCell(4, 8), 4), (nn.GRUCell(4, 8), 3), (nn.RNNCell(4, 8), 1)])
def test_a_recurrent_cell_is_one_time_step_of_its_layer(cell, gates):
    result = cnnlab.summary(cell, input_size=(4,), batch=3)
    row = result.rows[-1]
    assert (row.kind, row.params) == ("recurrent", unique_parameters(cell))
    assert row.flops == 3 * 2 * gates * 8 * (4 + 8) and row.macs == row.flops // 2  # 3 sequences, one step each
    assert result.not_counted == [] and result.notes == []


@pytest.mark.parametrize("activation", [nn.PReLU(), nn.RReLU(), nn.SELU(), nn.CELU(), nn.Mish(), nn.Hardtanh(),
                                        nn.LogSigmoid(), nn.Softplus(), nn.Softsign(), nn.Tanhshrink(),
                                        nn.Threshold(0.1, 0.0), nn.Hardshrink(), nn.Softshrink()],
                         ids=lambda module: type(module).__name__)
def test_every_element_wise_activation_is_one_operation_per_element(activation):
    result = cnnlab.summary(nn.Sequential(nn.Linear(4, 6), activation), input_size=(4,), batch=2)
    row = result.rows[-1]
    assert (row.kind, row.elementwise_ops, row.params) == ("activation", 2 * 6, unique_parameters(activation))
    assert result.not_counted == [] and result.notes == []


USER_FILE = '''
import torch
from torch import nn


class Tokens(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed, self.fc = nn.Embedding(100, 16), nn.Linear(16, 2)

    def forward(self, tokens, image):
        return self.fc(self.embed(tokens).mean(1)) + image.flatten(1)[:, :2]


def needs_a_width(width):
    return nn.Linear(width, 2)


padded = nn.Conv2d(3, 8, 4, padding="same")
'''


def test_the_command_line_summarizes_a_module_of_ones_own_with_typed_inputs(tmp_path, capsys):
    import json

    from cnnlab.cli import main

    source = tmp_path / "my_nets.py"
    source.write_text(USER_FILE)
    assert main(["summary", f"{source}:Tokens", "--input", "12:long+3x2x2", "--batch", "2", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["input_size"] == [[12], [3, 2, 2]] and data["totals"]["params"] == 100 * 16 + 16 * 2 + 2
    assert data["totals"]["macs"] == 2 * 16 * 2
    assert main(["summary", f"{source}:padded", "--input", "3x32x32", "--explain"]) == 0
    assert 'H_out = floor((32 - 4 + 1 + 2) / 1) + 1 = 32 (padding="same": 3 pixels, 1 before and 2 after)' \
        in capsys.readouterr().out
    refusals = {
        f"{source}:Tokens": "is a module of your own: give its input, e.g. --input 3x32x32, or --input 1x128:long",
        f"{source}:needs_a_width --input 4": "needs_a_width() cannot be called without arguments",
        f"{source}:Nope --input 4": "has no Nope; its modules: Tokens, padded",
        f"{tmp_path / 'none.py'}:X --input 4": "there is no file",
        f"{source}:Tokens --input 12:longer": "unknown type 'longer'; choose one of float32",
        f"{source}:Tokens --input 12:long+3x2x2 --set width=3": "--num-classes, --in-chans and --set are for zoo models",
    }
    for arguments, message in refusals.items():
        assert main(["summary", *arguments.split()]) == 2
        error = capsys.readouterr().err.strip()
        assert message in error and len(error.splitlines()) == 1, error


# torch.nn's layer classes that have no formula, each for a reason
NO_FORMULA = {
    "Container": "a container: the layers in it are counted", "Sequential": "a container: the layers in it are counted",
    "ModuleList": "a container", "ModuleDict": "a container", "ParameterList": "holds parameters, computes nothing",
    "ParameterDict": "holds parameters, computes nothing", "DataParallel": "a wrapper: the module it runs is counted",
    "RNNBase": "the base of LSTM, GRU and RNN, which are counted", "RNNCellBase": "the base of the cells, which are counted",
    "Transformer": "a composite: counted through its Linear, MultiheadAttention, LayerNorm and dropout layers",
    "TransformerEncoder": "a composite, as Transformer", "TransformerDecoder": "a composite, as Transformer",
    "TransformerEncoderLayer": "a composite, as Transformer", "TransformerDecoderLayer": "a composite, as Transformer",
    "AdaptiveLogSoftmaxWithLoss": "a loss (its forward takes the targets)",
}


def test_every_layer_class_in_torch_nn_has_a_formula_or_a_reason():
    from cnnlab.analysis.trace import HANDLED_LEAVES

    classes = {name: getattr(nn, name) for name in dir(nn)
               if isinstance(getattr(nn, name), type) and issubclass(getattr(nn, name), nn.Module) and name != "Module"}
    losses = {name for name, cls in classes.items() if issubclass(cls, nn.modules.loss._Loss)}  # not layers of a net
    uncovered = {name for name, cls in classes.items() if not issubclass(cls, HANDLED_LEAVES)} - losses
    assert uncovered == set(NO_FORMULA), (sorted(uncovered - set(NO_FORMULA)), sorted(set(NO_FORMULA) - uncovered))


@pytest.mark.parametrize("layer, input_size, kind, flops, elementwise_ops", [
    (nn.MaxPool1d(2), (3, 8), "pool", 2 * 12 * 2, 0),  # batch 2 x 12 outputs x a window of 2
    (nn.AvgPool3d(2), (3, 4, 4, 4), "pool", 2 * 24 * 8, 0),
    (nn.AdaptiveAvgPool1d(2), (3, 8), "pool", 2 * 6 * 4, 0),
    (nn.InstanceNorm2d(3, affine=True), (3, 4, 4), "norm", 0, 2 * 48 * 2),
    (nn.RMSNorm(8), (3, 8), "norm", 0, 2 * 24 * 2),
    (nn.Dropout1d(), (3, 8), "dropout", 0, 2 * 24),
    (nn.Softmin(1), (8,), "activation", 0, 2 * 8 * 3),
    (nn.GLU(), (8,), "activation", 0, 2 * 4 * 2),  # a x sigmoid(b) per output
    (nn.PixelShuffle(2), (4, 2, 2), "copy", 0, 0),
    (nn.ZeroPad2d(1), (3, 4, 4), "copy", 0, 0),
    (nn.FractionalMaxPool2d(2, output_size=3), (3, 8, 8), "pool", 2 * 27 * 4, 0),  # the 2x2 window per output
    (nn.PairwiseDistance(), [(6,), (6,)], "reduce", 0, 2 * 6 * 3),  # a difference, a power and a sum per element
    (nn.CosineSimilarity(), [(6,), (6,)], "matmul", 2 * 2 * 3 * 6, 0),  # 3 dot products of 6 per output
], ids=lambda value: type(value).__name__ if isinstance(value, nn.Module) else None)
def test_the_other_layers_formulas(layer, input_size, kind, flops, elementwise_ops):
    result = cnnlab.summary(layer, input_size=input_size, batch=2)
    row = result.rows[-1]
    assert (row.kind, row.flops, row.elementwise_ops, row.params) == (kind, flops, elementwise_ops, unique_parameters(layer))
    assert result.not_counted == []


def test_an_embedding_bag_adds_each_bags_rows():
    result = cnnlab.summary(nn.EmbeddingBag(10, 4), input_size=(5,), dtypes=[torch.long], batch=2)
    row = result.rows[-1]
    assert (row.kind, row.params, row.elementwise_ops) == ("reduce", 40, 2 * 5 * 4) and result.not_counted == []


def test_a_bilinear_layer_is_a_sum_of_products_of_its_two_inputs():
    result = cnnlab.summary(nn.Bilinear(3, 4, 5), input_size=[(3,), (4,)], batch=2)
    row = result.rows[-1]
    assert (row.params, row.macs, row.flops) == (5 * 3 * 4 + 5, 2 * 5 * 3 * 4, 2 * 2 * 5 * 3 * 4)


class Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first, self.second = nn.Linear(16, 16), nn.Linear(16, 16)
        self.second.weight = self.first.weight  # one tensor, used twice

    def forward(self, x):
        return self.second(self.first(x))


def test_cnnlabs_column_of_the_table_beside_torchinfo():
    """docs/analysis.md, "Beside torchinfo's numbers": cnnlab's side of each row."""
    pruned = nn.Linear(4, 4)
    torch.nn.utils.prune.l1_unstructured(pruned, "weight", 0.5)
    rows = [(nn.Linear(4, 3), (4,), 15, 12), (nn.Conv2d(3, 8, 3), (3, 8, 8), 224, 7_776),
            (nn.ConvTranspose2d(8, 3, 4, stride=2, padding=1), (8, 8, 8), 387, 24_576), (Tied(), (16,), 288, 512),
            (pruned, (4,), 20, 16)]
    for module, input_size, params, macs in rows:
        totals = cnnlab.summary(module, input_size=input_size).totals
        assert (totals.params, totals.macs) == (params, macs), module
        assert params == unique_parameters(module)


Pair = collections.namedtuple("Pair", "logits features")


class NamedTupleOut(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return Pair(self.fc(x), x)


class DictOut(NamedTupleOut):
    def forward(self, x):
        return {"out": self.fc(x), "aux": x}


class SharedTwice(nn.Module):
    """One layer called twice: its parameters once, its work twice."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(self.fc(x))


class LoopOverList(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(4, 4) for _ in range(3)])

    def forward(self, x):
        for layer in self.layers:
            x = torch.relu(layer(x))
        return x


@pytest.mark.parametrize("module, input_size, output_shape, macs", [
    (nn.Conv2d(3, 8, 3, padding=1, padding_mode="reflect"), (3, 8, 8), (8, 8, 8), 8 * 8 * 8 * 27),
    (nn.Conv2d(3, 8, 3, padding=2, padding_mode="circular"), (3, 8, 8), (8, 10, 10), 10 * 10 * 8 * 27),
    (nn.Conv2d(4, 8, 3, groups=2, dilation=2), (4, 9, 9), (8, 5, 5), 5 * 5 * 8 * 9 * 2),
    (nn.MaxPool2d(3, 2, ceil_mode=True), (3, 8, 8), (3, 4, 4), 0),
    (nn.AvgPool2d(3, 2, padding=1, ceil_mode=True), (3, 7, 7), (3, 4, 4), 0),
    (nn.AdaptiveAvgPool2d((2, 3)), (3, 8, 9), (3, 2, 3), 0),
    (nn.AdaptiveMaxPool2d((3, 1)), (3, 7, 5), (3, 3, 1), 0),
    (NamedTupleOut(), (4,), (3,), 12),
    (DictOut(), (4,), (3,), 12),
    (SharedTwice(), (4,), (4,), 2 * 16),
    (LoopOverList(), (4,), (4,), 3 * 16),
], ids=["reflect-padding", "circular-padding", "groups-dilation", "ceil-max-pool", "ceil-avg-pool-padded",
        "adaptive-2x3", "adaptive-3x1", "namedtuple-output", "dict-output", "one-layer-twice", "module-list-loop"])
def test_a_zoo_of_modules_as_users_write_them(module, input_size, output_shape, macs):
    result = cnnlab.summary(module, input_size=input_size)
    with torch.no_grad():
        returned = module(torch.randn(1, *input_size))
    first = returned if isinstance(returned, torch.Tensor) else (
        next(iter(returned.values())) if isinstance(returned, dict) else returned[0])
    assert result.totals.output_shape == output_shape == tuple(first.shape[1:])  # as PyTorch computes it
    assert result.totals.params == unique_parameters(module) and result.totals.macs == macs
    assert result.not_counted == []


class Guarded(nn.Module):
    """Attributes deepcopy cannot copy: the meta copy shares them with the original."""

    def __init__(self, log_path) -> None:
        super().__init__()
        self.fc, self.lock, self.log = nn.Linear(4, 3), threading.Lock(), open(log_path, "w")  # noqa: SIM115

    def forward(self, x):
        with self.lock:
            return self.fc(x)


def test_a_module_holding_a_lock_and_an_open_file_is_summarized(tmp_path):
    module = Guarded(tmp_path / "log.txt")
    try:
        totals = cnnlab.summary(module, input_size=(4,)).totals
    finally:
        module.log.close()
    assert (totals.params, totals.macs) == (15, 12)
