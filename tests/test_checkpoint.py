"""RunMeta: what a checkpoint records, typed, and the JSON layout it reads and writes."""

from __future__ import annotations

import json

import pytest

from cnnlab.checkpoint import CheckpointError, RunMeta, read_meta


def test_run_meta_round_trips_through_its_json(tmp_path):
    meta = RunMeta("lenet5_modern", 10, 1, input_size=(1, 28, 28), model_kwargs={"activation": "relu"},
                   data="mnist-embedded", class_names=tuple("0123456789"), stored_size=(1, 28, 28), mean=(0.13,),
                   std=(0.31,), val_images=500, precision="bf16", transfer={"mode": "finetune"})
    data = meta.at_epoch(3, {"val_top1": 0.9}).to_json()
    assert data["normalization"] == {"mean": [0.13], "std": [0.31]} and data["input_size"] == [1, 28, 28]
    assert data["epoch"] == 3 and data["class_names"] == list("0123456789")
    (tmp_path / "best.json").write_text(json.dumps(data))
    assert read_meta(tmp_path / "best.json") == meta.at_epoch(3, {"val_top1": 0.9})
    assert (meta.side, meta.stored_side) == (28, 28)


def test_a_checkpoint_from_before_precisions_were_recorded_reads_as_float32(tmp_path):
    (tmp_path / "old.json").write_text(json.dumps({"model": "lenet5", "num_classes": 10, "in_chans": 1,
                                                   "input_size": [1, 32, 32]}))
    meta = read_meta(tmp_path / "old.json")
    assert meta.precision == "float32" and meta.mean is None and meta.stored_side == 32


def test_damaged_descriptions_are_explained(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"model": "lenet5", "num_classes": 10}))
    with pytest.raises(CheckpointError, match="has no 'in_chans': it is not a cnnlab checkpoint"):
        read_meta(tmp_path / "a.json")
    (tmp_path / "b.json").write_text(json.dumps({"model": "lenet5", "num_classes": "ten", "in_chans": 1}))
    with pytest.raises(CheckpointError, match="has a malformed field"):
        read_meta(tmp_path / "b.json")
    (tmp_path / "c.json").write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="holds no checkpoint description"):
        read_meta(tmp_path / "c.json")
