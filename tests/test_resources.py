"""Absurd sizes end in one line before anything is allocated (cnnlab/resources.py), while the
analysis on the meta device keeps answering for any size."""

from __future__ import annotations

import resource

import pytest

from cnnlab.cli import main
from cnnlab.resources import TooLargeError, available_bytes, ensure_fits, size_text


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def no_more_than_4_gib():
    """The test process may not grow past 4 GiB more of address space: an allocation the guard
    missed fails here instead of taking the machine."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/status") as status:
        used = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
    resource.setrlimit(resource.RLIMIT_AS, (used + 4 * 2**30, hard))
    yield
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def test_the_guard_names_what_is_needed_and_what_there_is():
    available, where = available_bytes("cpu")
    assert available > 0 and "{}" in where
    ensure_fits(1024, "a kilobyte", "never")
    with pytest.raises(TooLargeError, match=r"^a step needs 1,024.0 TB, but this machine has .* available; do less$"):
        ensure_fits(2**50, "a step", "do less")
    assert (size_text(2.8 * 2**30), size_text(912.3 * 2**20), size_text(1280 * 2**40)) == ("2.8 GB", "912.3 MB", "1,280.0 TB")


@pytest.mark.parametrize("argv, needed", [
    (["summary", "vgg16", "--batch", "100000", "--measured"], "one real training step of vgg16 at batch 100,000 "
                                                               "(input 3x224x224; simulated) needs 6.7 TB"),
    (["summary", "resnet18", "--input", "3x100000x100000", "--measured"], "one real training step of resnet18 at batch "
                                                                          "128 (input 3x100000x100000; simulated) needs"),
])
def test_a_measured_step_too_large_for_the_machine_is_refused_in_one_line(argv, needed, capsys, no_more_than_4_gib):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith(f"cnnlab summary: error: {needed}") and "leave out --measured" in err


def test_the_analysis_answers_for_any_size_without_memory(capsys, no_more_than_4_gib):
    code, out, _ = run(capsys, "summary", "resnet18", "--input", "3x100000x100000", "--depth", "1")
    assert code == 0 and "3x100000x100000" in out
    code, out, _ = run(capsys, "layer", "conv", "--input", "3x100000x100000", "--kernels", "64", "--kernel", "7",
                       "--stride", "2", "--padding", "3")
    assert code == 0 and "50000" in out.replace(",", "")


def test_a_worked_operator_with_a_huge_padding_is_refused_in_one_line(capsys, no_more_than_4_gib):
    code, out, err = run(capsys, "op", "conv", "--input", "1 2; 3 4", "--kernel", "1", "--padding", "100000")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("cnnlab op: error: the 2x2 input with padding 100000 is a 200,002x200,002 padded input "
                          "(298.0 GB as float64) with 40,000,800,004 output elements per channel to write out")


def test_an_image_past_pillows_decompression_bomb_guard_is_refused_in_one_line(tmp_path, capsys, no_more_than_4_gib):
    from PIL import Image

    bomb = tmp_path / "bomb.png"
    Image.new("L", (20000, 10000)).save(bomb, optimize=True)  # 200 million pixels in under 200 KB
    assert bomb.stat().st_size < 300_000
    code, out, err = run(capsys, "op", "filter", str(bomb), "--out", str(tmp_path / "filtered.png"))
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"cnnlab op: error: {bomb} is too large to decode (Image size (200000000 pixels) exceeds limit")
    assert not (tmp_path / "filtered.png").exists()


def test_training_at_a_batch_the_machine_cannot_hold_is_refused_before_its_first_step(tmp_path, capsys,
                                                                                       no_more_than_4_gib):
    out = tmp_path / "run"
    code, _, err = run(capsys, "train", "resnet18", "--data", "mnist-embedded", "--batch-size", "100000", "--epochs", "1",
                       "--out", str(out))
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("cnnlab train: error: a training step at batch 100,000 (simulated: ")
    assert "but this machine has" in err and "lower --batch-size (and raise --accumulate" in err
    assert not out.exists()  # refused before the run folder was written
    # a model sized to a huge input: its weights alone would not fit, and are never allocated
    code, _, err = run(capsys, "train", "lenet5_modern", "--input-size", "100000", "--epochs", "1", "--out", str(out))
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("cnnlab train: error: a training step at batch 128 (simulated: weights 4.4 TB, ")
    assert not out.exists()


def test_a_small_run_is_not_slowed_by_the_check():
    """LeNet on digits is far below the bound, so no step is simulated for it."""
    from unittest import mock

    from cnnlab import create_model
    from cnnlab.analysis import memory

    with mock.patch.object(memory, "TrainingStep", side_effect=AssertionError("simulated")):
        memory.ensure_step_fits(create_model("lenet5_modern"), (1, 28, 28), 512, "adam")
    with pytest.raises(TooLargeError):
        memory.ensure_step_fits(create_model("lenet5_modern"), (1, 28, 28), 10**9, "adam")
