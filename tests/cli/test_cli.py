from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cnnlab.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_models_lists_family_paper_input_and_count(capsys):
    code, out, _ = run(capsys, "models", "vgg16*")
    assert code == 0
    assert "vgg16 " in out and "138,357,544" in out and "3x224x224" in out and "Simonyan" in out
    assert "vgg16_bn" in out and "138,365,992" in out and "vgg11" not in out


def test_models_json(capsys):
    import json

    code, out, _ = run(capsys, "models", "lenet*", "--format", "json")
    rows = json.loads(out)
    assert {row["name"]: row["params"] for row in rows} == {"lenet5": 60_000, "lenet5_modern": 61_706}


def test_show_prints_the_module_tree_with_counts(capsys):
    code, out, _ = run(capsys, "show", "lenet5_modern", "--set", "activation=relu", "--num-classes", "3")
    assert code == 0
    assert "conv1: Conv2d(1, 6, kernel_size=(5, 5)" in out
    assert "ReLU" in out and "Sigmoid" not in out
    assert "61,111 trainable parameters" in out  # 61,706 - (84+1) * (10 - 3)


def test_unknown_model_is_one_clear_line_and_status_2(capsys):
    code, out, err = run(capsys, "show", "resnet5")
    assert code == 2
    assert err.strip().startswith("cnnlab show: error: unknown model 'resnet5'")
    assert "Traceback" not in err


def test_bad_set_option_is_explained(capsys):
    code, _, err = run(capsys, "show", "nin", "--set", "widthless")
    assert code == 2 and "--set expects KEY=VALUE" in err
    code, _, err = run(capsys, "show", "nin", "--set", "depth=3")
    assert code == 2 and "nin has no option 'depth'" in err


@pytest.mark.parametrize("command", [[], ["models"], ["show"], ["demo"], ["summary"], ["layer"], ["compare"], ["rf"],
                                     ["data"], ["data", "info"], ["data", "show"], ["train"], ["evaluate"], ["predict"]])
def test_help_on_every_command(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith("usage: cnnlab")


def test_python_dash_m_cnnlab():
    result = subprocess.run([sys.executable, "-m", "cnnlab", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("usage: cnnlab")


def test_demo_chooses_on_validation_and_reports_test_once(tmp_path, capsys):
    """The README's demo: 4,000 train / 500 validation / 500 test digits; the best epoch is chosen
    on validation and the line reports the test split. The bar is a sanity check far from the
    edge (chance is 10%, every CPU reaches about 98.5%); speed is a benchmark's business."""
    import re

    code, out, _ = run(capsys, "demo", "--out", str(tmp_path / "demo"))
    assert code == 0
    assert "4,000 train / 500 val / 500 test images" in out
    accuracy = float(re.search(r"test accuracy ([\d.]+)% on 500 digits never trained on nor used to choose", out).group(1))
    assert accuracy >= 95.0
    folder = tmp_path / "demo"
    best, test = json.loads((folder / "best.json").read_text()), json.loads((folder / "test.json").read_text())
    assert (best["test_fraction"], best["val_images"], test["images"]) == (0.1, 500, 500)
    assert f"best epoch {best['epoch']}, chosen on the 500 validation digits" in out
    assert test["top1"] == pytest.approx(accuracy / 100, abs=5e-5)
    assert (folder / "best.safetensors").is_file() and (folder / "curves.png").is_file()


def test_train_flags_are_trainconfigs_fields():
    """One flag per TrainConfig field, built from the field (its help text is in train/config.py)."""
    import argparse
    from dataclasses import fields

    from cnnlab.cli.train import add_commands, config_from_args
    from cnnlab.train import TrainConfig

    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    config = config_from_args(parser.parse_args(
        ["transfer", "resnet20", "--init", "runs/a", "--mode", "finetune", "--no-nesterov", "--milestones", "0.5,0.75",
         "--no-feature-cache", "--batch-size", "64", "--sync-bn", "--set", "zero_init_residual=true"]))
    assert (config.transfer, config.init, config.nesterov, config.milestones) == ("finetune", "runs/a", False, (0.5, 0.75))
    assert (config.feature_cache, config.batch_size, config.sync_bn) == (False, 64, True)
    assert config.model_kwargs == {"zero_init_residual": True}
    assert config_from_args(parser.parse_args(["train", "resnet20", "--nesterov"])).nesterov is True
    assert config_from_args(parser.parse_args(["train", "resnet20"])) == TrainConfig(model="resnet20")
    transfer_only = {f.name for f in fields(TrainConfig) if f.metadata.get("group") == "transfer"}
    assert transfer_only == {"transfer", "head_epochs", "finetune_lr_scale", "lr_decay", "freeze_stages", "feature_cache"}
    everything_but_model_kwargs = len(fields(TrainConfig)) - 1  # MODEL is the positional, model_kwargs is --set
    for command, expected in (("train", everything_but_model_kwargs - len(transfer_only)), ("transfer", everything_but_model_kwargs)):
        sub = parser._subparsers._group_actions[0].choices[command]
        dests = {action.dest for action in sub._actions} & {f.name for f in fields(TrainConfig)}
        assert len(dests) == expected, (command, {f.name for f in fields(TrainConfig)} - dests)
        assert all(action.help for action in sub._actions if action.dest in dests)
    with pytest.raises(SystemExit):
        parser.parse_args(["transfer", "resnet20", "--init", "runs/a"])  # --mode is required


@pytest.mark.parametrize("command", [
    ["show"], ["summary"], ["compare"], ["plot"], ["rf"], ["train"], ["transfer", "--init", "x.safetensors", "--mode",
    "finetune"], ["export", "--onnx", "out.onnx"], ["bench"], ["draw"], ["filters"], ["report"]])
def test_a_misspelt_model_gets_the_same_did_you_mean_in_every_command(command, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing a command might write lands in the checkout
    argv = [command[0], "resnt18", *command[1:]]
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.strip() == (f"cnnlab {command[0]}: error: unknown model 'resnt18'; did you mean resnet18, "
                           "resnet152, resnet110, resnet101? (run `cnnlab models` to list them all)")
    assert list(tmp_path.iterdir()) == []
