"""One writer per run folder, and no one-class classifier."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnlab.cli import main
from cnnlab.errors import CnnlabError
from cnnlab.train import TrainConfig, fit
from cnnlab.checkpoint import LOCK_NAME, RunFolderLock

SRC = str(Path(__file__).resolve().parents[2] / "src")
TRAIN = [sys.executable, "-m", "cnnlab", "train", "lenet5_modern", "--epochs", "3", "--subset", "3000", "--batch-size", "32",
         "--augment", "none", "--optimizer", "adam", "--lr", "0.002"]


def start(out: Path) -> subprocess.Popen:
    return subprocess.Popen([*TRAIN, "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": SRC})


def test_two_runs_into_one_folder_at_the_same_moment_exactly_one_writes(tmp_path):
    out = tmp_path / "run"
    first, second = start(out), start(out)
    results = [(process.wait(timeout=240), *process.communicate()) for process in (first, second)]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], [(code, err[-500:]) for code, _, err in results]
    refused = next(err for code, _, err in results if code == 2)
    winner = next(process for process, (code, _, _) in zip((first, second), results) if code == 0)
    assert f"is being written by process {winner.pid}" in refused and "choose another --out" in refused
    # the folder holds one consistent run: three epochs once, every checkpoint from it
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [record["epoch"] for record in history] == [1, 2, 3]
    assert json.loads((out / "last.json").read_text())["epoch"] == 3


def test_a_killed_runs_lock_is_gone_and_resume_continues(tmp_path):
    out = tmp_path / "run"
    process = start(out)
    deadline = time.monotonic() + 120
    while not (out / "last.json").exists():  # an epoch's checkpoint is written: the run holds its lock
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    with pytest.raises(CnnlabError, match=f"is being written by process {process.pid}"):
        RunFolderLock(out)
    # readers take no lock: evaluating the folder mid-run reads its last whole checkpoint
    assert main(["evaluate", str(out), "--out", str(tmp_path / "evaluation")]) == 0
    evaluation = json.loads((tmp_path / "evaluation" / "evaluation.json").read_text())
    assert (evaluation["split"], evaluation["images"]) == ("val", 300)  # 10% of the 3,000 trained on
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    RunFolderLock(out).release()  # the kernel dropped the dead process's lock
    assert main([*TRAIN[3:], "--out", str(out), "--resume"]) == 0  # in this process: the lock is free to take
    assert [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]


def test_a_refused_run_leaves_no_folder_behind_and_the_lock_file_is_not_a_run(tmp_path):
    with pytest.raises(CnnlabError, match="has no last.json"):
        fit(TrainConfig(model="lenet5_modern", epochs=1, subset=100, resume=True, out=str(tmp_path / "new")), log=lambda _: None)
    assert not (tmp_path / "new").exists()
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / LOCK_NAME).write_text("process 1 on elsewhere")  # left by a finished run: not a lock
    fit(TrainConfig(model="lenet5_modern", epochs=1, subset=100, batch_size=50, out=str(tmp_path / "empty")), log=lambda _: None)
    assert (tmp_path / "empty" / "best.json").is_file()


def test_a_one_class_folder_is_refused(tmp_path):
    only = tmp_path / "images" / "cats"
    only.mkdir(parents=True)
    for index in range(6):
        Image.fromarray(np.full((8, 8, 3), index * 30, dtype=np.uint8)).save(only / f"{index}.png")
    with pytest.raises(CnnlabError, match="has 1 class \\(cats\\): a classifier needs at least two"):
        fit(TrainConfig(model="lenet5_modern", data=f"folder:{tmp_path / 'images'}", epochs=1, out=str(tmp_path / "run")),
            log=lambda _: None)
    with pytest.raises(CnnlabError, match="a classifier needs at least two"):
        fit(TrainConfig(model="lenet5_modern", data="mnist-embedded[3]", epochs=1, out=str(tmp_path / "run")),
            log=lambda _: None)
