"""Seed 003's per-layer tables as the slides print them, to show beside cnnlab's figures.

Seed 003 works AlexNet, VGG-16, GoogLeNet and ResNet-34 out by hand for a minibatch of 128 in
float32 with SGD and momentum: #activations per image, #params in thousands, MFLOPs for the
minibatch, and the training memory of activations and parameters in MB (2^20 bytes). Each value
is kept as printed (decimal commas read as points), with the precision printed, so a cnnlab figure
is compared at that precision. Where a printed value is not what the network has, `slips` says
why, in the words of docs/analysis.md; tests/analysis/test_seed_tables.py checks that every
other printed value equals cnnlab's and that every slip is a real difference.

GoogLeNet's inception rows are not carried: the slide's module figures follow conventions it does
not state (its #params leaves out the convolutions' biases; its MFLOPs are 1.5-5% below the sum of
the module's convolutions and pooling), so they are checked in the tests, not shown as equal or
wrong. ResNet-34's table is printed in part ("..."): the rows it prints are here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

MB = 2**20
COLUMNS = ("activations", "params_k", "mflops", "activation_mb", "parameter_mb")
SETTINGS = {"batch": 128, "dtype": "float32", "optimizer": "momentum"}


@dataclass(frozen=True)
class SeedRow:
    name: str  # as the slide names it (conv1, fc14, conv.s4.b3.2)
    layer: str  # cnnlab's row ("features.conv1"), or "Totals"
    activations: str = ""  # per image
    params_k: str = ""  # thousands
    mflops: str = ""  # the whole minibatch
    activation_mb: str = ""
    parameter_mb: str = ""
    slips: dict[str, str] = field(default_factory=dict)  # column -> why the printed value differs


@dataclass(frozen=True)
class SeedTable:
    model: str
    input_size: tuple[int, int, int]
    rows: tuple[SeedRow, ...]


def _row(name: str, layer: str, *printed: str, **slips: str) -> SeedRow:
    """A row as the slide prints it: #activations, #params (K), MFLOPs, activation MB, parameter MB."""
    return SeedRow(name, layer, *printed, slips=slips)


ALEXNET = SeedTable("alexnet", (3, 227, 227), (
    _row("input", "input", "154587", "0", "", "75.5", "0.0"),
    _row("conv1", "features.conv1", "290400", "35", "26986.3", "283.6", "0.4"),
    _row("pool1", "features.pool1", "69984", "0", "80.6", "68.3", "0.0"),
    _row("conv2", "features.conv2", "186624", "615", "114661.8", "182.3", "7.0"),
    _row("pool2", "features.pool2", "43264", "0", "49.8", "42.3", "0.0"),
    _row("conv3", "features.conv3", "64896", "885", "38277.2", "63.4", "10.1"),
    _row("conv4", "features.conv4", "64896", "1327", "57415.8", "63.4", "15.2"),
    _row("conv5", "features.conv5", "43264", "885", "38277.2", "42.3", "10.1"),
    _row("pool3", "features.pool3", "9216", "0", "10.6", "9.0", "0.0"),
    _row("flatten", "flatten", "9216", "0", "0.0", "0.0", "0.0"),
    _row("fc6", "classifier.fc6", "4096", "37758", "9663.7", "4.0", "432.0",
         params_k="the slide computes 9,216 x 4,097 (a bias per input) = 37,757,952; fc6 has 9,216 x 4,096 "
                  "weights and 4,096 biases = 37,752,832"),
    _row("fc7", "classifier.fc7", "4096", "16781", "4295.0", "4.0", "192.0"),
    _row("fc8", "classifier.fc8", "1000", "4097", "1048.6", "1.0", "46.9"),
    _row("Totals", "Totals", "", "62378", "290851", "1406", "714",
         mflops="the slide adds one operation per ReLU output (84.3 M), which no row of its column shows; "
                "its column sums to 290,766.6 M, cnnlab's total (the ReLUs are in the element-wise column)",
         activation_mb="the slide's 1,406 MB is its column without the input row (763.4 MB) plus the ReLU "
                       "outputs as tensors of their own (642.8 MB), though the ReLUs run in place; cnnlab's "
                       "total is its column: the input, the LRN and dropout outputs, no in-place ReLU"),
))

VGG16 = SeedTable("vgg16", (3, 224, 224), (
    _row("input", "input", "150528", "0", "", "73.5", "0.0"),
    _row("conv1", "features.0", "3211264", "2", "22196.3", "3136.0", "0.0"),
    _row("conv2", "features.2", "3211264", "37", "473520.1", "3136.0", "0.4"),
    _row("pool1", "features.4", "802816", "0", "411.0", "784.0", "0.0"),
    _row("conv3", "features.5", "1605632", "74", "236760.1", "1568.0", "0.8"),
    _row("conv4", "features.7", "1605632", "148", "473520.1", "1568.0", "1.7"),
    _row("pool2", "features.9", "401408", "0", "205.5", "392.0", "0.0"),
    _row("conv5", "features.10", "802816", "295", "236760.1", "784.0", "3.4"),
    _row("conv6", "features.12", "802816", "590", "473520.1", "784.0", "6.8"),
    _row("conv7", "features.14", "802816", "590", "473520.1", "784.0", "6.8"),
    _row("pool3", "features.16", "200704", "0", "102.8", "196.0", "0.0"),
    _row("conv8", "features.17", "401408", "1180", "236760.1", "392.0", "13.5"),
    _row("conv9", "features.19", "401408", "2360", "473520.1", "392.0", "27.0"),
    _row("conv10", "features.21", "401408", "2360", "473520.1", "392.0", "27.0"),
    _row("pool4", "features.23", "100352", "0", "51.4", "98.0", "0.0"),
    _row("conv11", "features.24", "100352", "2360", "118380.0", "98.0", "27.0"),
    _row("conv12", "features.26", "100352", "2360", "118380.0", "98.0", "27.0"),
    _row("conv13", "features.28", "100352", "2360", "118380.0", "98.0", "27.0"),
    _row("pool5", "features.30", "25088", "0", "12.8", "24.5", "0.0"),
    _row("flatten", "flatten", "25088", "0", "0.0", "0.0", "0.0"),
    _row("fc14", "classifier.0", "4096", "102786", "26306.7", "4.0", "1176.3",
         params_k="the slide computes 25,088 x 4,097 (C_in x (C_out + 1)) = 102,785,536; fc14 has "
                  "(25,088 + 1) x 4,096 = 102,764,544",
         parameter_mb="carries the #params slip: 3 x 102,764,544 x 4 B is 1,176.0 MB"),
    _row("fc15", "classifier.3", "4096", "16781", "4295.0", "4.0", "192.0"),
    _row("fc16", "classifier.6", "1000", "4100", "1048.6", "1.0", "46.9",
         params_k="the slide computes 4,096 x 1,001 = 4,100,096; fc16 has (4,096 + 1) x 1,000 = 4,097,000"),
    _row("Totals", "Totals", "", "138382", "3961171", "14733", "1584",
         params_k="carries fc14's and fc16's slips; VGG-16 has 138,357,544 parameters",
         mflops="cnnlab also counts torchvision's 7x7 adaptive average pool (3.2 M; an identity at 224), "
                "which the slide's network does not have",
         activation_mb="the slide's 14,733 MB is its rows' column: without the input (73.5 MB), the adaptive "
                       "pool (24.5 MB) and the two dropout outputs (4.0 MB each) that cnnlab's column holds",
         parameter_mb="carries fc14's and fc16's #params slips: cnnlab's 1,583.4 MB rounds to 1,583"),
))

GOOGLENET = SeedTable("googlenet", (3, 224, 224), (
    _row("input", "input", "150528", "0", "", "73.5", "0.0"),
    _row("conv1", "conv1.conv", "802816", "9", "30211.6", "784.0", "0.1"),
    _row("pool1", "maxpool1", "200704", "0", "231.2", "196.0", "0.0"),
    _row("conv2", "conv2.conv", "200704", "4", "3288.3", "196.0", "0.0"),
    _row("conv3", "conv3.conv", "602112", "111", "88785.0", "588.0", "1.3"),
    _row("pool2", "maxpool2", "150528", "0", "173.4", "147.0", "0.0"),
    _row("pool3", "maxpool3", "94080", "0", "108.4", "91.9", "0.0"),
    _row("pool4", "maxpool4", "40768", "0", "47.0", "39.8", "0.0"),
    _row("avgpool", "avgpool", "1024", "0", "6.4", "1.0", "0.0"),
    _row("fc1", "fc", "1000", "1025", "262.1", "1.0", "11.7"),
))

RESNET34 = SeedTable("resnet34", (3, 224, 224), (
    _row("input", "input", "150528", "0", "", "73.5", "0.0"),
    _row("conv1", "conv1", "802816", "9", "30211.6", "784.0", "0.1"),
    _row("pool1", "maxpool", "200704", "0", "231.2", "196.0", "0.0"),
    _row("conv.s4.b3.2", "layer4.2.conv2", "25088", "2360", "29595.0", "24.5", "27.0",
         params_k="2,360K counts a bias per filter, (3 x 3 x 512 + 1) x 512 = 2,359,808, as VGG's convolutions "
                  "have; ResNet's have none (BatchNorm follows): 3 x 3 x 512 x 512 = 2,359,296"),
    _row("avgpool", "avgpool", "512", "0", "3.2", "0.5", "0.0"),
    _row("fc1", "fc", "1000", "513", "131.1", "1.0", "5.9"),
))

TABLES = {table.model: table for table in (ALEXNET, VGG16, GOOGLENET, RESNET34)}


def seed_table(model: str, input_size, batch: int, dtype: str, optimizer: str) -> SeedTable | None:
    """Seed 003's table for this summary, if the slides worked this model out at these settings."""
    table = TABLES.get(model)
    settings = {"batch": batch, "dtype": dtype, "optimizer": optimizer}
    if table is None or settings != SETTINGS or tuple(input_size) != table.input_size:
        return None
    return table


def cnnlab_values(activations: int, params: int, flops: int, activation_memory: int, parameter_memory: int) -> dict:
    """cnnlab's figures in the seed's units (before rounding)."""
    return {"activations": activations, "params_k": params / 1000, "mflops": flops / 1e6,
            "activation_mb": activation_memory / MB, "parameter_mb": parameter_memory / MB}


def at_printed_precision(value: float, printed: str) -> str:
    """`value` rounded as the slide's spreadsheet rounds (halves up) to the decimals `printed` has."""
    decimals = len(printed.partition(".")[2])
    quantum = Decimal(1).scaleb(-decimals)
    return str(Decimal(repr(float(value))).quantize(quantum, rounding=ROUND_HALF_UP))


def compare(row: SeedRow, values: dict) -> dict[str, bool]:
    """For each column the slide prints: does cnnlab's figure, at the printed precision, equal it?"""
    return {column: at_printed_precision(values[column], getattr(row, column)) == getattr(row, column)
            for column in COLUMNS if getattr(row, column)}


HEADERS = {"activations": "#activations", "params_k": "#params", "mflops": "MFLOPs",
           "activation_mb": "activation memory", "parameter_mb": "parameter memory"}


@dataclass(frozen=True)
class SeedCell:
    """One value the slide prints beside cnnlab's: equal at the printed precision, or a slip and why."""

    column: str  # a COLUMNS key
    printed: str  # as cnnlab writes figures ("37,758K")
    equal: bool
    why: str = ""

    @property
    def header(self) -> str:
        return HEADERS[self.column]


def compare_row(seed: SeedRow, values: dict) -> list[SeedCell]:
    """The slide's printed values of this row against cnnlab's `values` (cnnlab_values)."""
    equal = compare(seed, values)
    return [SeedCell(column, printed_text(column, getattr(seed, column)), equal[column],
                     "" if equal[column] else seed.slips.get(column, "differs from cnnlab's figure"))
            for column in COLUMNS if getattr(seed, column)]


def printed_text(column: str, printed: str) -> str:
    """A printed value as cnnlab's tables write figures (thousands separated; params in K)."""
    if not printed:
        return ""
    whole, _, decimals = printed.partition(".")
    text = f"{int(whole):,}" + (f".{decimals}" if decimals else "")
    return text + "K" if column == "params_k" else text
