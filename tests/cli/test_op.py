"""`cnnlab op`: seed 002's worked examples reproduced through the command line."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnlab.analysis import operators
from cnnlab.cli import main

X = "0 1 2; 3 4 5; 6 7 8"
K = "0 1; 2 3"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def output_matrix(out: str) -> list[list[float]]:
    block = out.split("output:\n", 1)[1].split("worked:", 1)[0]
    return [[float(v) for v in line.split()] for line in block.strip().splitlines() if "channel" not in line]


def test_seed_002_cross_correlation_sum_by_sum(capsys):
    code, out, _ = run(capsys, "op", "conv", "--input", X, "--kernel", K)
    assert code == 0
    assert output_matrix(out) == [[19, 25], [37, 43]]
    for line in ("0x0 + 1x1 + 3x2 + 4x3 = 19", "1x0 + 2x1 + 4x2 + 5x3 = 25", "3x0 + 4x1 + 6x2 + 7x3 = 37",
                 "4x0 + 5x1 + 7x2 + 8x3 = 43"):
        assert line in out


def test_seed_002_padding_gives_the_4x4_output(capsys):
    code, out, _ = run(capsys, "op", "conv", "--input", X, "--kernel", K, "--padding", "1")
    assert output_matrix(out) == [[0, 3, 8, 4], [9, 19, 25, 10], [21, 37, 43, 16], [6, 7, 8, 0]]
    assert "[0,0] 0x0 + 0x0 + 0x0 + 0x1 = 0" not in out and "[0,0] 0x0 + 0x1 + 0x2 + 0x3 = 0" in out  # the seed's line


def test_seed_002_strides_of_3_and_2(capsys):
    code, out, _ = run(capsys, "op", "conv", "--input", X, "--kernel", K, "--padding", "1", "--stride", "3,2")
    assert output_matrix(out) == [[0, 8], [6, 8]]
    assert "0x0 + 0x1 + 1x2 + 2x3 = 8" in out and "0x0 + 6x1 + 0x2 + 0x3 = 6" in out
    assert "H_out = floor((3 - 2 + 2*1) / 3) + 1 = 2" in out


def test_multiple_input_channels_sum_and_several_kernels_give_several_outputs(capsys):
    two = X + " | 1 2 3; 4 5 6; 7 8 9"
    code, out, _ = run(capsys, "op", "conv", "--input", two, "--kernel", "0 1; 2 3 | 1 2; 3 4")
    assert output_matrix(out) == [[56, 72], [104, 120]]  # d2l's corr2d_multi_in
    code, out, _ = run(capsys, "op", "conv", "--input", two, "--kernel", "0 1; 2 3 | 1 2; 3 4", "--kernel",
                       "1 2; 3 4 | 2 3; 4 5", "--bias", "1", "--no-worked")
    expected = torch.nn.functional.conv2d(operators.parse_matrix(two)[None], torch.stack([
        operators.parse_matrix("0 1; 2 3 | 1 2; 3 4"), operators.parse_matrix("1 2; 3 4 | 2 3; 4 5")]), torch.ones(2, dtype=torch.float64))
    assert [row for row in output_matrix(out)] == expected[0].flatten(0, 1).tolist()


def test_pooling_max_and_average(capsys):
    code, out, _ = run(capsys, "op", "pool", "--input", X, "--mode", "max", "--size", "2", "--stride", "1")
    assert output_matrix(out) == [[4, 5], [7, 8]] and "max(0, 1, 3, 4) = 4" in out  # d2l's pool2d
    code, out, _ = run(capsys, "op", "pool", "--input", X, "--mode", "avg", "--size", "2", "--stride", "1")
    assert output_matrix(out) == [[2, 3], [5, 6]] and "(0 + 1 + 3 + 4) / 4 = 2" in out
    code, out, _ = run(capsys, "op", "pool", "--input", "0 1 2 3; 4 5 6 7; 8 9 10 11; 12 13 14 15", "--size", "3",
                       "--padding", "1", "--stride", "2")
    assert output_matrix(out) == [[5, 7], [13, 15]]  # d2l: padding 1, stride 2


def test_conv1x1_is_a_matrix_product_over_channels(capsys):
    code, out, _ = run(capsys, "op", "conv1x1", "--input", "1 2; 3 4 | 5 6; 7 8", "--kernel", "1 0; 1 1; 0.5 -1")
    assert code == 0
    assert "[0,0] 0.5x1 + (-1)x5 = -4.5" in out and "W X:" in out
    assert output_matrix(out.split("as a matrix product")[0]) == [[1, 2], [3, 4], [6, 8], [10, 12], [-4.5, -5], [-5.5, -6]]


def test_matrices_from_files(tmp_path, capsys):
    (tmp_path / "x.txt").write_text("0 1 2\n3 4 5\n6 7 8\n")
    np.save(tmp_path / "k.npy", np.array([[0.0, 1.0], [2.0, 3.0]]))
    code, out, _ = run(capsys, "op", "conv", "--input", f"@{tmp_path / 'x.txt'}", "--kernel", f"@{tmp_path / 'k.npy'}")
    assert code == 0 and output_matrix(out) == [[19, 25], [37, 43]]


@pytest.mark.parametrize("argv, message", [
    (["conv", "--input", "0 1 2; 3 4", "--kernel", K], "the rows of '0 1 2; 3 4' have different lengths (3, 2)"),
    (["conv", "--input", X + " | 1 2; 3 4", "--kernel", K], "its channels have different shapes (3x3, 2x2)"),
    (["conv", "--input", "0 1; 2 3", "--kernel", X + "; 1 1 1"], "the kernel (4x3) is larger than the padded input (2x2)"),
    (["conv", "--input", X, "--kernel", K, "--stride", "0"], "--stride must be at least 1, got 0"),
    (["conv", "--input", X, "--kernel", "0 1; 2 three"], "'three' is not a number"),
    (["conv", "--input", X, "--kernel", K + " | 1 1; 1 1"], "kernel 1 has 2 channel(s) but the input has 1"),
    (["pool", "--input", X, "--size", "2", "--padding", "2"], "more than half the window"),
    (["conv", "--input", "@/nonexistent/m.txt", "--kernel", K], "does not exist"),
])
def test_bad_input_gets_one_clear_message(capsys, argv, message):
    code, out, err = run(capsys, "op", *argv)
    assert code == 2 and message in err and "Traceback" not in err


def test_efficiency_of_convolution_as_seed_002_counts_it(capsys):
    code, out, _ = run(capsys, "op", "efficiency", "--input", "320x280", "--kernel", "2x1")
    assert "output 319x280" in out
    lines = {line.split("  ")[0]: line for line in out.splitlines()}
    assert "2" in lines["stored floats"].split() and "8,003,072,000" in lines["stored floats"]
    assert "267,960" in lines["float multiplies + adds"] and "16,006,054,680" in lines["float multiplies + adds"]


def test_batchnorm_lesson_shows_training_running_averages_prediction_and_folding(capsys):
    code, out, _ = run(capsys, "op", "batchnorm")
    assert "mean = (1 + 2 + 3 + 4 + 5 + 6 + 7 + 10) / 8 = 4.75" in out
    assert "running_mean = (1 - 0.1) x 0 + 0.1 x 4.75 = 0.475" in out
    assert "running_var = (1 - 0.1) x 1 + 0.1 x 8.5 = 1.75" in out
    assert "largest difference from conv then BN on the batch" in out
    difference = float(out.rsplit("on the batch: ", 1)[1].split()[0])
    assert difference < 1e-12
    code, _, err = run(capsys, "op", "batchnorm", "--input", "3")
    assert code == 2 and "at least two values" in err


def test_filter_writes_before_and_after_and_learn_kernel_finds_1_minus_1(tmp_path, capsys):
    out_file = tmp_path / "edges.png"
    code, out, _ = run(capsys, "op", "filter", "mnist-embedded:3500", "--kernel", "sharpen", "--out", str(out_file))
    assert code == 0 and out_file.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "a 7" in out
    edges = operators.filter_image(torch.ones(1, 5, 5, dtype=torch.float64), operators.kernel_from_text("edge"))
    assert edges[0, 2, 2] == 0 and edges[0, 0, 0] == 5  # flat regions vanish; the zero-padded corner sees 3 neighbours
    (tmp_path / "broken.png").write_bytes(b"not an image")
    code, _, err = run(capsys, "op", "filter", str(tmp_path / "broken.png"), "--out", str(tmp_path / "x.png"))
    assert code == 2 and "cannot decode" in err
    code, out, _ = run(capsys, "op", "learn-kernel")
    learned = [float(v) for v in out.rsplit("learned [", 1)[1].split("]")[0].split(",")]
    assert learned == pytest.approx([1.0, -1.0], abs=0.05)
    assert out.count("step ") == 10
