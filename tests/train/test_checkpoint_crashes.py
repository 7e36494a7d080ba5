"""A checkpoint is one unit: a run crashed at any write or rename resumes to the uninterrupted
run's figures and weights, bit for bit, or refuses in one line (issue 41)."""

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cnnlab.checkpoint import CheckpointError, RunMeta, load_training_state, load_weights, read_meta, save_checkpoint

DRIVER = Path(__file__).with_name("crash_every_write.py")


@pytest.mark.timeout(600)
def test_a_crash_at_every_write_and_rename_then_resume(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    done = subprocess.run([sys.executable, str(DRIVER), str(tmp_path)], env=env, capture_output=True, text=True,
                          timeout=580)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.splitlines()[-1])
    events, outcomes = report["events"], report["outcomes"]
    assert len(outcomes) == len(events) > 40  # all of them, not a sample
    # every kind of write is among them: each part staged, each commit, each part put in place, for last and best
    for name in (".last.next.safetensors", ".last.next.state.pt", ".last.next.json.partial", ".best.next.safetensors"):
        assert events.count(f"fsync {name}") == 3 if name.startswith(".last") else events.count(f"fsync {name}") >= 2
    for target in (".last.next.json", "last.safetensors", "last.state.pt", "last.json", ".best.next.json",
                   "best.safetensors", "best.json", "metrics.jsonl"):
        assert f"rename to {target}" in events, target
    assert [o for o in outcomes if o["outcome"] not in ("equal", "refused", "covered")] == []
    for outcome in outcomes:  # a folder's sync: the files as at the next event, whose crash is run
        if outcome["outcome"] == "covered":
            assert outcome["event"] == "fsync the folder" and outcomes[outcome["by"] - 1]["outcome"] in ("equal", "refused")
    refused = [o for o in outcomes if o["outcome"] == "refused"]
    for outcome in refused:  # only before the first epoch's last checkpoint is committed, and in one line
        assert "\n" not in outcome["message"] and "has no last.json checkpoint" in outcome["message"]
    first_commit = events.index("rename to .last.next.json") + 1  # a crash at an event comes before it
    assert {o["k"] for o in refused} == {o["k"] for o in outcomes[:first_commit] if o["outcome"] != "covered"}


def meta(epoch: int) -> RunMeta:
    return RunMeta(model="lenet5_modern", num_classes=10, in_chans=1, input_size=(1, 28, 28), epoch=epoch)


def test_a_committed_save_is_read_whole_before_it_is_in_place(tmp_path, monkeypatch):
    """Crash after the commit, with only the weights renamed: readers get the new epoch's weights,
    state and description together; the next save puts them in place first."""
    model = torch.nn.Linear(3, 2)
    save_checkpoint(tmp_path, "last", model, meta(1), {"epoch": 1})
    with torch.no_grad():
        model.weight.add_(1.0)
    real, calls = os.replace, []

    def replace(source, target):
        calls.append(Path(target).name)
        if len(calls) == 3:  # the commit, the weights, then (here) the state: crash
            raise SystemExit("crash")
        real(source, target)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(SystemExit):
        save_checkpoint(tmp_path, "last", model, meta(2), {"epoch": 2})
    monkeypatch.setattr(os, "replace", real)
    assert calls[:2] == [".last.next.json", "last.safetensors"]
    assert json.loads((tmp_path / "last.json").read_text())["epoch"] == 1  # the old description, the new weights
    assert read_meta(tmp_path / "last.json").epoch == 2
    assert load_training_state(tmp_path / "last.json")["epoch"] == 2
    assert torch.equal(load_weights(tmp_path / "last.json")["weight"], model.weight)
    save_checkpoint(tmp_path, "last", model, meta(3), {"epoch": 3})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.json", "last.safetensors", "last.state.pt"]
    assert json.loads((tmp_path / "last.json").read_text())["epoch"] == 3


def test_a_damaged_part_is_refused_by_its_digest(tmp_path):
    save_checkpoint(tmp_path, "best", torch.nn.Linear(3, 2), meta(1), {"epoch": 1})
    weights = tmp_path / "best.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # one flipped bit in a tensor still parses as safetensors
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="does not match the SHA-256 that best.json records"):
        load_weights(tmp_path / "best.json")
    assert load_training_state(tmp_path / "best.json")["epoch"] == 1


def test_a_truncated_description_is_refused_in_one_line(tmp_path):
    save_checkpoint(tmp_path, "last", torch.nn.Linear(3, 2), meta(1), {"epoch": 1})
    description = tmp_path / "last.json"
    description.write_text(description.read_text()[:40])
    with pytest.raises(CheckpointError, match=r"last.json is not a readable checkpoint description \(.*\); it is "
                                              "damaged") as error:
        read_meta(description)
    assert "\n" not in str(error.value)


def test_a_full_disk_or_a_read_only_folder_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    from cnnlab import checkpoint

    model = torch.nn.Linear(3, 2)
    save_checkpoint(tmp_path, "last", model, meta(1), {"epoch": 1})
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    real_write = checkpoint._write_durable
    for failure in (errno.ENOSPC, errno.EROFS):
        written = []

        def write(path, data, failure=failure):
            written.append(path.name)
            if len(written) == 2:  # the weights were staged; the state does not fit
                raise OSError(failure, os.strerror(failure), str(path))
            real_write(path, data)

        monkeypatch.setattr(checkpoint, "_write_durable", write)
        with torch.no_grad():
            model.weight.add_(1.0)
        with pytest.raises(CheckpointError) as error:
            save_checkpoint(tmp_path, "last", model, meta(2), {"epoch": 2})
        assert str(error.value) == (f"cannot save checkpoint 'last' in {tmp_path} ({os.strerror(failure)}); the "
                                    "previous one is intact: free some space or make the folder writable, then "
                                    "continue with --resume")
        assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # nothing staged is left behind
        assert read_meta(tmp_path / "last.json").epoch == 1 and load_training_state(tmp_path / "last.json")["epoch"] == 1


def test_a_checkpoint_written_before_digests_still_loads(tmp_path):
    """Run folders of the earlier layout (three plain files, no digests in the JSON) load as they are."""
    from safetensors.torch import save_file

    model = torch.nn.Linear(3, 2)
    save_file(model.state_dict(), str(tmp_path / "best.safetensors"))
    (tmp_path / "best.json").write_text(json.dumps(meta(4).to_json()))
    assert read_meta(tmp_path / "best.json").epoch == 4
    assert torch.equal(load_weights(tmp_path / "best.json")["weight"], model.weight)
    with pytest.raises(CheckpointError, match="best.state.pt is missing: the checkpoint is incomplete; it cannot resume"):
        load_training_state(tmp_path / "best.json")


def test_a_reader_past_an_uncommitted_save_says_so_in_one_line(tmp_path, capsys):
    """A save cut short before its commit (its weights staged): evaluate reads the last complete
    checkpoint and says so once; --resume discards the staged files and says so too."""
    from cnnlab.cli import main
    from cnnlab.train import TrainConfig, fit

    run = tmp_path / "run"
    settings = dict(model="lenet5_modern", data="mnist-embedded", epochs=1, batch_size=32, subset=128,
                    model_kwargs={"activation": "relu", "pool": "max"})
    fit(TrainConfig(**settings, out=str(run)), log=lambda _: None)
    (run / ".last.next.safetensors").write_bytes(b"half a file")
    assert main(["evaluate", str(run / "last.json"), "--out", str(tmp_path / "evaluation")]) == 0
    err = capsys.readouterr().err
    assert err == (f"cnnlab evaluate: note: {run}: a newer save of 'last' is not committed (being written, or cut short "
                   "by a crash); reading the last complete one (epoch 1)\n")
    lines: list[str] = []
    fit(TrainConfig(**{**settings, "epochs": 2}, out=str(run), resume=True), log=lines.append)
    assert f"resume: {run}: a save of 'last' was interrupted before it was committed and is discarded; 'last' is the " \
           "last complete one (epoch 1)" in lines
    assert not (run / ".last.next.safetensors").exists()
