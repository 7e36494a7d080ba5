"""Seed 003's per-layer tables (minibatch 128, float32, SGD with momentum), row by row.

Where the slides slip, the test pins the true value and says what the slide printed and why
(docs/analysis.md has the full list).
"""

from __future__ import annotations

import pytest

from cnnlab.analysis import seed_tables, summary
from cnnlab.analysis.formulas import MB, one_decimal

# its module-scoped fixture is made once: the tests that share it run in one xdist worker
pytestmark = pytest.mark.xdist_group("seed tables")


def mb(value: int) -> str:
    return one_decimal(value / MB)


def mflops(value: int) -> str:
    return one_decimal(value / 1e6)


@pytest.fixture(scope="module")
def alexnet():
    return summary("alexnet", batch=128)


# (layer, #activations, #params, MFLOPs, activation MB, parameter MB) as seed 003 prints them;
# params exact where the slide rounds to thousands.
ALEXNET_ROWS = [
    ("conv1", 290_400, 34_944, "26,986.3", "283.6", "0.4"),
    ("pool1", 69_984, 0, "80.6", "68.3", "0.0"),
    ("conv2", 186_624, 614_656, "114,661.8", "182.3", "7.0"),
    ("pool2", 43_264, 0, "49.8", "42.3", "0.0"),
    ("conv3", 64_896, 885_120, "38,277.2", "63.4", "10.1"),
    ("conv4", 64_896, 1_327_488, "57,415.8", "63.4", "15.2"),
    ("conv5", 43_264, 884_992, "38,277.2", "42.3", "10.1"),
    ("pool3", 9_216, 0, "10.6", "9.0", "0.0"),
    ("fc6", 4_096, 37_752_832, "9,663.7", "4.0", "432.0"),
    ("fc7", 4_096, 16_781_312, "4,295.0", "4.0", "192.0"),
    ("fc8", 1_000, 4_097_000, "1,048.6", "1.0", "46.9"),
]


@pytest.mark.parametrize("layer, acts, params, flops, act_mb, param_mb", ALEXNET_ROWS)
def test_alexnet_table_row_by_row(alexnet, layer, acts, params, flops, act_mb, param_mb):
    row = alexnet.row(layer)
    assert (row.activations, row.params, mflops(row.flops), mb(row.activation_memory), mb(row.parameter_memory)) == (
        acts, params, flops, act_mb, param_mb,
    )


def test_alexnet_input_flatten_and_shapes(alexnet):
    assert (alexnet.rows[0].activations, mb(alexnet.rows[0].activation_memory)) == (154_587, "75.5")  # input counted once
    flatten = alexnet.row("flatten")
    assert (flatten.activations, flatten.activation_memory) == (9_216, 0)  # a view: no memory of its own
    conv1 = alexnet.row("conv1")
    assert (conv1.kernels, conv1.kernel_size, conv1.stride, conv1.padding, conv1.output_shape) == (96, (11, 11), (4, 4), (0, 0), (96, 55, 55))


def test_alexnet_slide_slips(alexnet):
    # fc6's worked line multiplies by 9,126 instead of 9,216: 9.569 GFLOPs there, 9,663.7 MFLOPs in the table.
    assert 128 * 2 * 9_126 * 4_096 == 9_569_304_576
    assert alexnet.row("fc6").flops == 128 * 2 * 9_216 * 4_096 == 9_663_676_416
    # fc6's #params cell says 37,758K: 9,216 x 4,097 (a bias per input) instead of 9,217 x 4,096.
    assert 9_216 * 4_097 == 37_757_952 and alexnet.row("fc6").params == 37_752_832
    # Printed totals: 62,378K params (right), 714 MB parameters (the column's sum: 713.9).
    assert alexnet.totals.params == 62_378_344
    assert mb(alexnet.totals.parameter_memory) == "713.9"
    seeds_rows = [alexnet.row(name) for name, *_ in ALEXNET_ROWS]
    # 290,851 MFLOPs is the column (290,766.6) plus one op per ReLU output (84.3 M), which no row shows.
    column = sum(r.flops for r in seeds_rows)
    relu_ops = sum(r.elementwise_ops for r in alexnet.rows if r.kind == "activation")
    assert mflops(column) == "290,766.6" and mflops(relu_ops) == "84.3"
    assert round((column + relu_ops) / 1e6) == 290_851
    # 1,406 MB of activations is the column without the input row (763.4 MB exactly; its rounded
    # cells add to 763.6) plus the ReLU outputs stored as tensors of their own (642.8 MB), though
    # the ReLUs are in place.
    column_memory = sum(r.activation_memory for r in seeds_rows)
    relu_outputs = sum(2 * 128 * r.activations * 4 for r in alexnet.rows if r.kind == "activation")
    assert mb(column_memory) == "763.4" and mb(relu_outputs) == "642.8"
    assert int((column_memory + relu_outputs) / MB) == 1_406


def test_alexnet_explain_prints_the_seeds_worked_lines(alexnet):
    text = alexnet.explain("conv1")
    assert "H_out = floor((227 - 11 + 2*0) / 4) + 1 = 55" in text
    assert "params = (11 x 11 x 3 + 1) x 96 = 34,944" in text
    assert "FLOPs = 128 x 290,400 x (11 x 11 x 3) x 2 = 26,986.3 MFLOPs" in text
    assert "activation memory = 2 x 128 x 290,400 x 4 B / 2^20 = 283.6 MB" in text
    assert "parameter memory = 3 x 34,944 x 4 B / 2^20 = 0.4 MB" in text
    assert "FLOPs = 128 x 69,984 x 3 x 3 = 80.6 MFLOPs" in alexnet.explain("pool1")


@pytest.fixture(scope="module")
def vgg16():
    return summary("vgg16", batch=128)


VGG16_ROWS = [  # torchvision indices of seed 003's conv1..conv13, pool1..pool5, fc14..fc16
    ("features.0", 3_211_264, 1_792, "22,196.3", "3,136.0"),
    ("features.2", 3_211_264, 36_928, "473,520.1", "3,136.0"),
    ("features.4", 802_816, 0, "411.0", "784.0"),
    ("features.5", 1_605_632, 73_856, "236,760.1", "1,568.0"),
    ("features.7", 1_605_632, 147_584, "473,520.1", "1,568.0"),
    ("features.9", 401_408, 0, "205.5", "392.0"),
    ("features.10", 802_816, 295_168, "236,760.1", "784.0"),
    ("features.12", 802_816, 590_080, "473,520.1", "784.0"),
    ("features.16", 200_704, 0, "102.8", "196.0"),
    ("features.17", 401_408, 1_180_160, "236,760.1", "392.0"),
    ("features.19", 401_408, 2_359_808, "473,520.1", "392.0"),
    ("features.23", 100_352, 0, "51.4", "98.0"),
    ("features.24", 100_352, 2_359_808, "118,380.0", "98.0"),
    ("features.30", 25_088, 0, "12.8", "24.5"),
    ("classifier.0", 4_096, 102_764_544, "26,306.7", "4.0"),
    ("classifier.3", 4_096, 16_781_312, "4,295.0", "4.0"),
    ("classifier.6", 1_000, 4_097_000, "1,048.6", "1.0"),
]


@pytest.mark.parametrize("layer, acts, params, flops, act_mb", VGG16_ROWS)
def test_vgg16_table_row_by_row(vgg16, layer, acts, params, flops, act_mb):
    row = vgg16.row(layer)
    assert (row.activations, row.params, mflops(row.flops), mb(row.activation_memory)) == (acts, params, flops, act_mb)


def test_vgg16_slide_slips(vgg16):
    # fc14 and fc16's #params cells (102,786K and 4,100K) are C_in x (C_out + 1), not (C_in + 1) x C_out.
    assert 25_088 * 4_097 == 102_785_536 and 4_096 * 1_001 == 4_100_096
    assert vgg16.row("classifier.0").params == 102_764_544 and vgg16.row("classifier.6").params == 4_097_000
    # So its parameter total is 138,382K; the network has 138,357,544.
    assert vgg16.totals.params == 138_357_544
    # fc14's parameter memory (1,176.3 MB) carries the slip: 3 x 102,764,544 x 4 B is 1,176.0 MB.
    assert mb(vgg16.row("classifier.0").parameter_memory) == "1,176.0"
    # 3,961,171 MFLOPs: the seeds' column; cnnlab adds torchvision's 7x7 adaptive pool (3.2 M, an identity at 224).
    seeds_rows = [r for r in vgg16.rows if r.kind in ("conv", "pool", "linear") and r.name != "avgpool"]
    assert round(sum(r.flops for r in seeds_rows) / 1e6) == 3_961_171
    assert mflops(vgg16.row("avgpool").flops) == "3.2"
    # 14,733 MB: the column without the input row (and without the adaptive pool).
    assert int(sum(r.activation_memory for r in seeds_rows) / MB) == 14_733
    assert mb(vgg16.totals.parameter_memory) == "1,583.4"  # the slide's 1,584 carries the fc slips


def test_vgg16_forward_activations_per_image_seed_000():
    """Seed 000 lists VGG-16's per-image memory layer by layer and totals it as "24M x 4 bytes
    ~= 96MB / image". Its own rows add up to 15.2M activations (58.1 MB forward); 24M is not
    reproducible from them."""
    result = summary("vgg16", batch=1)
    listed = [r for r in result.rows if r.kind in ("input", "conv", "pool", "linear") and r.name != "avgpool"]
    per_image = sum(r.activations for r in listed)
    assert per_image == 15_237_608
    assert one_decimal(per_image * 4 / MB) == "58.1"
    assert result.totals.params == 138_357_544  # "TOTAL params: 138M parameters"


def test_googlenet_stem_and_head_rows():
    result = summary("googlenet", batch=128, depth=1)
    expected = {  # seed 003's GoogLeNet table: MFLOPs and activation MB
        "conv1": ("30,211.6", "784.0", 802_816), "maxpool1": ("231.2", "196.0", 200_704),
        "conv2": ("3,288.3", "196.0", 200_704), "conv3": ("88,785.0", "588.0", 602_112),
        "maxpool2": ("173.4", "147.0", 150_528), "avgpool": ("6.4", "1.0", 1_024), "fc": ("262.1", "1.0", 1_000),
    }
    for name, (flops, memory, acts) in expected.items():
        row = result.row(name)
        output_memory = 2 * 128 * row.activations * 4
        assert (mflops(row.flops), mb(output_memory), row.activations) == (flops, memory, acts), name
    assert result.row("fc").params == 1_025_000


# Seed 003's incep rows: (module, widths, output H/W x channels, params without biases in K)
GOOGLENET_INCEPTIONS = [
    ("inception3a", (64, 96, 128, 16, 32, 32), 28, 256, 163),
    ("inception3b", (128, 128, 192, 32, 96, 64), 28, 480, 388),
    ("inception4a", (192, 96, 208, 16, 48, 64), 14, 512, 376),
    ("inception4b", (160, 112, 224, 24, 64, 64), 14, 512, 449),
    ("inception4c", (128, 128, 256, 24, 64, 64), 14, 512, 509),
    ("inception4d", (112, 144, 288, 32, 64, 64), 14, 528, 605),
    ("inception4e", (256, 160, 320, 32, 128, 128), 14, 832, 867),
    ("inception5a", (256, 160, 320, 32, 128, 128), 7, 832, 1_042),
    ("inception5b", (384, 192, 384, 48, 128, 128), 7, 1024, 1_443),
]


@pytest.mark.parametrize("module, widths, size, channels, slide_params_k", GOOGLENET_INCEPTIONS)
def test_googlenet_inception_rows(module, widths, size, channels, slide_params_k):
    result = summary("googlenet", batch=128, depth=1)
    row = result.row(module)
    assert row.widths == widths
    assert row.output_shape == (channels, size, size)
    assert mb(2 * 128 * row.activations * 4) == one_decimal(2 * 128 * size * size * channels * 4 / MB)
    # The slide's #params column leaves out the conv biases (one per output map of each conv).
    biases = sum(widths)
    assert round((row.params - biases) / 1000) == slide_params_k


def test_resnet_rows_are_resnet34s():
    result = summary("resnet34", batch=128)
    assert mflops(result.row("conv1").flops) == "30,211.6"
    assert mflops(result.row("maxpool").flops) == "231.2"
    last = result.row("layer4.2.conv2")  # the slide's "conv.s4.b3.2": stage 4 has three blocks in ResNet-34
    assert (mflops(last.flops), last.params, mb(last.activation_memory), mb(last.parameter_memory)) == (
        "29,595.0", 2_359_296, "24.5", "27.0",
    )
    assert (mflops(result.row("avgpool").flops), mb(result.row("avgpool").activation_memory)) == ("3.2", "0.5")
    fc = result.row("fc")
    assert (fc.params, mflops(fc.flops), mb(fc.activation_memory), mb(fc.parameter_memory)) == (513_000, "131.1", "1.0", "5.9")


@pytest.mark.parametrize("model", sorted(seed_tables.TABLES))
def test_every_printed_value_equals_cnnlabs_or_is_a_slip_explained(model):
    """The values a notebook shows beside cnnlab's (cnnlab.analysis.seed_tables): each is cnnlab's
    figure at the printed precision, or a slip whose explanation is shown; no slip is equal."""
    table = seed_tables.TABLES[model]
    result = summary(model, batch=128, input_size=table.input_size)
    assert seed_tables.seed_table(model, result.input_size, 128, "float32", "momentum") is table
    for seed in table.rows:
        if seed.layer == "Totals":
            t = result.totals
            values = seed_tables.cnnlab_values(0, t.params, t.flops, t.activation_memory, t.parameter_memory)
        else:
            row = result.row(seed.layer)
            assert row.name == seed.layer
            values = seed_tables.cnnlab_values(row.activations, row.params, row.flops, row.activation_memory,
                                               row.parameter_memory)
        differs = {column for column, equal in seed_tables.compare(seed, values).items() if not equal}
        assert differs == set(seed.slips), (seed.name, differs)


def test_printed_values_are_rounded_as_the_spreadsheet_rounds():
    assert seed_tables.at_printed_precision(26_986.34, "26986.3") == "26986.3"
    assert seed_tables.at_printed_precision(0.05, "0.1") == "0.1"  # halves up
    assert seed_tables.at_printed_precision(713.86, "714") == "714"
    assert seed_tables.printed_text("params_k", "37758") == "37,758K"
    assert seed_tables.printed_text("mflops", "114661.8") == "114,661.8"
    # other settings than the slides': no table to show beside cnnlab's
    assert seed_tables.seed_table("alexnet", (3, 227, 227), 64, "float32", "momentum") is None
    assert seed_tables.seed_table("alexnet", (3, 227, 227), 128, "float32", "adam") is None
