from __future__ import annotations

import csv
import io
import json

from cnnlab.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_summary_table_has_the_seeds_columns_and_totals(capsys):
    code, out, _ = run(capsys, "summary", "alexnet", "--batch", "128")
    assert code == 0
    assert "features.conv1" in out and "26,986.3" in out and "283.6" in out and "Totals" in out
    assert "62,378,344 parameters" in out


def test_summary_explain_one_layer(capsys):
    code, out, _ = run(capsys, "summary", "alexnet", "--explain", "conv1")
    assert "H_out = floor((227 - 11 + 2*0) / 4) + 1 = 55" in out
    assert "activation memory = 2 x 128 x 290,400 x 4 B / 2^20 = 283.6 MB" in out


def test_summary_json_csv_md(capsys):
    _, out, _ = run(capsys, "summary", "lenet5_modern", "--batch", "1", "--format", "json")
    data = json.loads(out)
    assert data["totals"]["params"] == 61_706 and data["batch"] == 1
    assert data["rows"][1]["name"] == "features.conv1" and data["rows"][1]["params"] == 156
    _, out, _ = run(capsys, "summary", "lenet5_modern", "--batch", "1", "--format", "csv")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0][0] == "Layer" and rows[0][8] == "#params" and rows[-1][0] == "Totals" and rows[-1][8] == "61706"
    _, out, _ = run(capsys, "summary", "lenet5_modern", "--format", "md")
    assert out.startswith("| Layer | Kernels |") and "| **Totals** |" in out


def test_summary_depth_folds_inception_modules(capsys):
    _, out, _ = run(capsys, "summary", "googlenet", "--depth", "1", "--format", "json")
    rows = {row["name"]: row for row in json.loads(out)["rows"]}
    assert rows["inception3a"]["widths"] == [64, 96, 128, 16, 32, 32]
    assert "inception3a.branch1.conv" not in rows


def test_summary_measured(capsys):
    code, out, _ = run(capsys, "summary", "lenet5_modern", "--batch", "16", "--measured")
    assert code == 0 and "measured: one real training step at batch 16 peaked at" in out


def test_summary_bad_input_is_one_line(capsys):
    code, _, err = run(capsys, "summary", "alexnet", "--input", "3x16x16")
    assert code == 2 and "does not fit alexnet" in err and "smallest input it accepts is 67x67" in err and "Traceback" not in err
    code, _, err = run(capsys, "summary", "alexnet", "--input", "huge")
    assert code == 2 and "is not of the form CxHxW" in err


def test_layer_conv_pool_fc(capsys):
    code, out, _ = run(capsys, "layer", "conv", "--input", "3x227x227", "--kernels", "96", "--kernel", "11",
                       "--stride", "4", "--batch", "128", "--explain")
    assert code == 0 and "output 96x55x55" in out and "params 34,944" in out and "26,986.3" in out
    _, out, _ = run(capsys, "layer", "pool", "--input", "96x55x55", "--kernel", "3", "--stride", "2", "--batch", "128")
    assert "output 96x27x27" in out and "80.6" in out
    _, out, _ = run(capsys, "layer", "fc", "--input", "256x6x6", "--kernels", "4096", "--batch", "128")
    assert "params 37,752,832" in out and "9,663.7" in out
    code, _, err = run(capsys, "layer", "conv", "--input", "3x8x8", "--kernels", "4", "--kernel", "11")
    assert code == 2 and "cannot take a 3x8x8 input" in err
    code, _, err = run(capsys, "layer", "conv", "--input", "3x8x8", "--kernels", "4", "--groups", "2")
    assert code == 2 and "must divide both" in err


def test_compare_and_largest_batch(capsys):
    code, out, _ = run(capsys, "compare", "resnet50", "vgg16", "--batch", "256", "--optimizer", "adam",
                       "--memory", "16GiB", "--format", "json")
    rows = {row["model"]: row for row in json.loads(out)}
    assert code == 0 and rows["vgg16"]["params"] == 138_357_544
    assert rows["resnet50"]["largest_batch_seeds"] == 77 and rows["vgg16"]["largest_batch_seeds"] == 123
    assert 190 <= rows["resnet50"]["largest_batch"] <= 215 and 190 <= rows["vgg16"]["largest_batch"] <= 215
    assert round(rows["resnet50"]["gmacs_per_image"], 2) == 3.86
    code, _, err = run(capsys, "compare", "resnet50", "--memory", "lots")
    assert code == 2 and "is not a size: write it like 16GiB" in err


def test_rf_three_3x3_see_7x7(capsys):
    code, out, _ = run(capsys, "rf", "vgg16")
    assert code == 0
    lines = [line for line in out.splitlines() if "features.2 " in line or "features.5 " in line]
    assert any(" 5 " in line for line in lines)  # two 3x3: 5x5
