"""Training: reproducible runs, safe checkpoints, resume after a kill, clear failures."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cnnlab.cli import main
from cnnlab.train import TrainConfig, TrainingDiverged, fit, load_model
from cnnlab.checkpoint import CheckpointError
from cnnlab.train.precision import resolve

QUICK = dict(model="lenet5_modern", data="mnist-embedded", epochs=2, batch_size=64, subset=640, optimizer="adam",
             lr=2e-3, model_kwargs={"activation": "relu", "pool": "max", "batch_norm": True}, seed=3)


def quiet(_line: str) -> None:
    pass


def test_a_run_writes_its_folder_and_learns(tmp_path):
    result = fit(TrainConfig(**QUICK, out=str(tmp_path / "run")), log=quiet)
    run = tmp_path / "run"
    for name in ("best.safetensors", "best.json", "last.safetensors", "last.json", "last.state.pt",
                 "metrics.jsonl", "metrics.csv", "config.json"):
        assert (run / name).is_file(), name
    assert not (run / "curves.png").exists()  # training draws nothing: the CLI and cnnlab.fit draw the curves
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    meta = json.loads((run / "best.json").read_text())
    assert meta["model"] == "lenet5_modern" and meta["class_names"] == list("0123456789")
    assert meta["input_size"] == [1, 28, 28] and len(meta["normalization"]["mean"]) == 1
    assert meta["model_kwargs"] == QUICK["model_kwargs"] and "torch" in meta["versions"]
    assert result.best["val_top1"] > 0.5  # 640 digits, 2 epochs: far above chance (10%)
    model, _ = load_model(run)
    assert sum(p.numel() for p in model.parameters()) > 0


def test_same_seed_same_metrics(tmp_path):
    first = fit(TrainConfig(**QUICK, out=str(tmp_path / "a")), log=quiet)
    second = fit(TrainConfig(**QUICK, out=str(tmp_path / "b")), log=quiet)
    strip = lambda history: [{k: v for k, v in r.items() if k not in ("images_per_second", "seconds")} for r in history]  # noqa: E731
    assert strip(first.history) == strip(second.history)


def test_existing_run_folder_is_refused_and_kept(tmp_path):
    fit(TrainConfig(**QUICK, out=str(tmp_path / "run")), log=quiet)
    before = (tmp_path / "run" / "best.safetensors").read_bytes()
    with pytest.raises(Exception, match=r"already holds a run; continue it with --resume, replace it with --overwrite"):
        fit(TrainConfig(**QUICK, out=str(tmp_path / "run")), log=quiet)
    assert (tmp_path / "run" / "best.safetensors").read_bytes() == before


def test_nan_loss_stops_with_a_message_and_keeps_the_last_good_checkpoint(tmp_path):
    run = tmp_path / "run"
    fit(TrainConfig(**{**QUICK, "epochs": 1}, out=str(run)), log=quiet)
    good = (run / "last.safetensors").read_bytes()
    settings = {**QUICK, "epochs": 3, "lr": 1e6, "optimizer": "sgd", "model_kwargs": {"activation": "relu"}}
    with pytest.raises(TrainingDiverged, match=r"the loss became (nan|inf).*last good checkpoint is .*last.json .*Lower --lr"):
        fit(TrainConfig(**settings, out=str(tmp_path / "diverging")), log=quiet)
    assert (run / "last.safetensors").read_bytes() == good


def test_corrupt_and_mismatched_checkpoints(tmp_path):
    run = tmp_path / "run"
    fit(TrainConfig(**{**QUICK, "epochs": 1}, out=str(run)), log=quiet)
    weights = run / "best.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])
    with pytest.raises(CheckpointError, match=r"best.safetensors does not match the SHA-256 that best.json records"):
        load_model(run / "best.json")
    # a description without digests (written by hand) still names a truncated file as such
    meta = json.loads((run / "best.json").read_text())
    del meta["files"]
    (run / "best.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"best.safetensors is corrupt or truncated"):
        load_model(run / "best.json")
    with pytest.raises(CheckpointError, match=r"no checkpoint at"):
        load_model(tmp_path / "nothing.json")
    # weights of another model
    meta = json.loads((run / "last.json").read_text())
    meta["model"] = "lenet5"
    (run / "other.json").write_text(json.dumps(meta))
    (run / "other.safetensors").write_bytes((run / "last.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match=r"gives lenet5 options it does not take \('activation'\)"):
        load_model(run / "other.json")
    meta["model_kwargs"] = {}
    (run / "other.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"does not fit lenet5"):
        load_model(run / "other.json")


def test_training_state_is_read_with_weights_only(tmp_path):
    run = tmp_path / "run"
    fit(TrainConfig(**{**QUICK, "epochs": 1}, out=str(run)), log=quiet)

    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo pwned > /tmp/cnnlab-state-pwned",))

    torch.save({"epoch": 1, "x": Exploit()}, run / "last.state.pt")
    with pytest.raises(Exception, match=r"last.state.pt does not match the SHA-256 that last.json records"):
        fit(TrainConfig(**{**QUICK, "epochs": 2}, out=str(run), resume=True), log=quiet)
    # whoever can replace the file can rewrite its digest too: the pickle is still never run
    meta = json.loads((run / "last.json").read_text())
    meta["files"]["state"]["sha256"] = hashlib.sha256((run / "last.state.pt").read_bytes()).hexdigest()
    (run / "last.json").write_text(json.dumps(meta))
    with pytest.raises(Exception, match=r"cannot be read safely"):
        fit(TrainConfig(**{**QUICK, "epochs": 2}, out=str(run), resume=True), log=quiet)
    assert not Path("/tmp/cnnlab-state-pwned").exists()


def test_evaluate_wrong_class_count(tmp_path, capsys):
    from tests.data.formats import write_cifar100

    run = tmp_path / "run"
    fit(TrainConfig(**{**QUICK, "epochs": 1}, out=str(run)), log=quiet)
    write_cifar100(tmp_path / "c100")
    code = main(["evaluate", str(run), "--data", f"cifar100:{tmp_path / 'c100'}"])
    assert code == 2 and "trained for 10 classes but cifar100 has 100" in capsys.readouterr().err


def test_evaluate_and_predict(tmp_path, capsys):
    from PIL import Image

    from cnnlab.data import load_mnist_embedded

    run = tmp_path / "run"
    fit(TrainConfig(**QUICK, out=str(run)), log=quiet)
    assert main(["evaluate", str(run)]) == 0
    out = capsys.readouterr().out
    # --subset 640: validation is 10% of the 640 trained on, in the run's own precision
    trained_in = resolve("auto", torch.device("cpu")).name  # --amp auto, as this machine resolves it
    assert "mnist-embedded val (64 images)" in out and "top-1" in out and f"computed in {trained_in}, as the run trained" in out
    assert (run / "confusion.png").is_file() and (run / "confusion.csv").read_text().startswith("true \\ predicted,0,1")
    digits = load_mnist_embedded()
    image = tmp_path / "seven.png"
    Image.fromarray(digits.images[3_500, 0].numpy()).save(image)  # a 7 (the digits are sorted by label)
    assert main(["predict", str(run / "best.json"), str(image), "--top-k", "3"]) == 0
    precision, line = capsys.readouterr().out.strip().splitlines()
    assert precision == f"lenet5_modern: computed in {trained_in}, as the run trained"
    assert line.startswith(f"{image}: ") and line.count("%") == 3
    from cnnlab.train.evaluate import predict_images  # the same from Python

    predictions, _, meta = predict_images(run / "best.json", [image], top_k=3)
    assert meta.model == "lenet5_modern" and [p.path for p in predictions] == [image]
    assert line == f"{image}: " + ", ".join(f"{name} {p:.1%}" for name, p in predictions[0].top)


def test_toml_config_and_flag_override(tmp_path, capsys):
    config = tmp_path / "run.toml"
    config.write_text('data = "mnist-embedded"\nepochs = 1\nbatch-size = 64\nsubset = 320\noptimizer = "adam"\nlr = 0.002\n')
    code = main(["train", "lenet5_modern", "--config", str(config), "--epochs", "2", "--out", str(tmp_path / "run")])
    assert code == 0
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 2
    bad = tmp_path / "bad.toml"
    bad.write_text("epochz = 3\n")
    code = main(["train", "lenet5_modern", "--config", str(bad)])
    assert code == 2 and "unknown settings epochz" in capsys.readouterr().err


RESUMABLE = dict(model="lenet5_modern", data="mnist-embedded", epochs=4, batch_size=32, subset=1600, optimizer="sgd",
                 lr=0.05, momentum=0.9, model_kwargs={"activation": "relu", "pool": "max", "batch_norm": True}, seed=5,
                 augment="digits", dropout=None)
TRAIN_SCRIPT = f"""
import sys
from cnnlab.train import TrainConfig, fit
fit(TrainConfig(**{RESUMABLE!r}, out=sys.argv[1]), log=print)
"""


def test_killed_run_resumes_to_bitwise_identical_weights(tmp_path):
    """SIGKILL in the middle of epoch 3, resume: the final weights equal an uninterrupted run's. The
    killed run is a process of its own; the reference and the resumed run train in this one."""
    script = tmp_path / "train.py"
    script.write_text(TRAIN_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    reference = tmp_path / "reference"
    fit(TrainConfig(**RESUMABLE, out=str(reference)), log=lambda line: None)

    interrupted = tmp_path / "interrupted"
    process = subprocess.Popen([sys.executable, "-u", str(script), str(interrupted)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # Epoch 2's line is printed after its checkpoint; an epoch of 50 steps lasts about half a second
    # here, so a kill 0.1 s later lands inside epoch 3 (or, on a slow machine, just after it).
    for line in process.stdout:
        if line.startswith("epoch   2/4"):
            time.sleep(0.1)
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert json.loads((interrupted / "last.json").read_text())["epoch"] in (2, 3)
    fit(TrainConfig(**RESUMABLE, out=str(interrupted), resume=True), log=lambda line: None)

    expected = load_file(str(reference / "last.safetensors"))
    actual = load_file(str(interrupted / "last.safetensors"))
    assert expected.keys() == actual.keys()
    assert all(torch.equal(expected[k], actual[k]) for k in expected)
    assert [json.loads(l)["epoch"] for l in (interrupted / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3, 4]
    assert not list(interrupted.glob(".*tmp*"))  # no temporary file left behind
