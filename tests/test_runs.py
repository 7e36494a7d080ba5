"""cnnlab.fit and cnnlab.load_run: a run from Python, of a zoo name, a zoo model or a module of
one's own; the Run it gives (history, folder, best model, evaluate, predict) and its display."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

import cnnlab
from cnnlab.cli import main
from cnnlab.errors import CnnlabError
from cnnlab.experiments import Result

QUICK = dict(data="mnist-embedded", epochs=2, batch_size=64, subset=640, test_fraction=0.1, optimizer="adam", lr=2e-3,
             seed=3, live=False, log=lambda line: None)


class Tiny(nn.Module):
    """A student's first CNN for 28x28 digits."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Linear(8 * 14 * 14, classes)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


@pytest.fixture(scope="module")
def own_run(tmp_path_factory):
    model = Tiny()
    out = tmp_path_factory.mktemp("runs") / "tiny"
    return model, cnnlab.fit(model, out=out, **QUICK)


def test_a_module_of_ones_own_trains_in_place_and_its_run_says_how_to_reload_it(own_run):
    model, run = own_run
    assert [record["epoch"] for record in run.history] == [1, 2] and run.best["val_top1"] > 0.5
    assert (run.out / "curves.png").read_bytes()[:4] == b"\x89PNG"  # drawn by the API, from metrics.jsonl
    meta = json.loads((run.out / "best.json").read_text())
    assert meta["model"] == "Tiny" and meta["module"].endswith("test_runs.Tiny")  # as pytest imported it
    # the module itself was trained: its weights are the last epoch's
    last = load_file(run.out / "last.safetensors")
    assert torch.equal(model.state_dict()["head.weight"].cpu(), last["head.weight"])
    # reloading needs the module, and says so in one line
    with pytest.raises(CnnlabError, match=r"a module of your own, not a zoo model: cnnlab cannot rebuild it from the "
                                          r"files; load it in Python with cnnlab.load_run\('.*', model=Tiny\(\)\)"):
        cnnlab.load_run(run.out)
    again = cnnlab.load_run(run.out, model=Tiny())
    assert again.history == run.history and again.best == run.best and again.test == run.test
    best = load_file(run.out / "best.safetensors")
    assert torch.equal(again.model.state_dict()["head.weight"], best["head.weight"])


def test_the_command_line_refuses_a_run_of_ones_own_module_in_one_line(own_run, capsys):
    _, run = own_run
    assert main(["evaluate", str(run.out)]) == 2
    error = capsys.readouterr().err
    assert "a module of your own, not a zoo model" in error and "Traceback" not in error


def test_a_run_evaluates_and_predicts_as_the_commands_do(own_run):
    _, run = own_run
    evaluation = run.evaluate()
    assert evaluation.metrics["images"] == run.test["images"]
    assert evaluation.metrics["top1"] == pytest.approx(run.test["top1"])
    from cnnlab.data import load_source

    digits = load_source("mnist-embedded").train
    predictions = run.predict(digits.images[:4])  # decoded uint8 images, 4 x 1 x 28 x 28
    assert len(predictions) == 4 and all(len(p.top) == 5 for p in predictions)
    assert sum(p.top[0][0] == str(label) for p, label in zip(predictions, digits.labels[:4].tolist())) >= 2
    with pytest.raises(CnnlabError, match=r"takes 1-channel images; got a \(2, 3, 28, 28\) array"):
        run.predict(torch.zeros(2, 3, 28, 28))


def test_a_run_shows_its_curves_and_final_figures(own_run):
    _, run = own_run
    bundle = run._repr_mimebundle_()
    assert bundle["text/plain"].startswith(f"<Run {run.out}: Tiny on mnist-embedded, 2 epochs, best val top-1")
    html = bundle["text/html"]
    assert "data:image/png;base64," in html and "best epoch" in html and "test (best epoch)" in html
    assert html.count("<tr>") == 1 + 2  # the folded table of epochs: header, two epochs


def test_a_zoo_model_object_reloads_by_name(tmp_path):
    model = cnnlab.create_model("lenet5_modern", activation="relu", pool="max", batch_norm=True)
    run = cnnlab.fit(model, out=tmp_path / "lenet", **QUICK)
    meta = json.loads((run.out / "best.json").read_text())
    assert meta["model"] == "lenet5_modern" and "module" not in meta
    assert meta["model_kwargs"] == {"activation": "relu", "pool": "max", "batch_norm": True}
    reloaded = cnnlab.load_run(run.out)  # no module needed: the zoo rebuilds it
    assert type(reloaded.model).__name__ == type(model).__name__


def test_a_model_that_does_not_fit_the_data_is_refused_before_training(tmp_path):
    with pytest.raises(CnnlabError, match=r"Tiny ends in 5 outputs per image, but mnist-embedded has 10 classes"):
        cnnlab.fit(Tiny(classes=5), out=tmp_path / "five", **QUICK)
    rgb = cnnlab.create_model("resnet20")  # 3 channels, the digits have one
    with pytest.raises(CnnlabError, match=r"resnet20 .*channel"):
        cnnlab.fit(rgb, out=tmp_path / "rgb", **QUICK)
    with pytest.raises(CnnlabError, match=r"fit takes a zoo model's name, a zoo model or an nn.Module; got int"):
        cnnlab.fit(3, out=tmp_path / "three", **QUICK)
    assert not (tmp_path / "five" / "best.json").exists()


def test_load_run_opens_a_run_the_command_line_made(tmp_path):
    out = tmp_path / "cli"
    assert main(["train", "lenet5_modern", "--data", "mnist-embedded", "--epochs", "1", "--subset", "320",
                 "--batch-size", "64", "--out", str(out)]) == 0
    run = cnnlab.load_run(out)
    assert run.meta.model == "lenet5_modern" and len(run.history) == 1 and run.best["epoch"] == 1
    assert run.config["epochs"] == 1 and run.test is None or "top1" in run.test
    assert isinstance(run.model, nn.Module) and not run.model.training
    with pytest.raises(CnnlabError, match=r"is not a run folder"):
        cnnlab.load_run(tmp_path / "nowhere")


def test_an_experiments_result_shows_its_verdict_table_and_figure(tmp_path):
    picture = tmp_path / "degradation.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\nfake")
    record = {"experiment": "degradation", "claim": "plain-56 trains worse than plain-20", "verdict": "shown with a caveat",
              "reason": "plain-56's training error is above plain-20's by 3.1 points",
              "budget": "12,000 images x 6 epochs", "rows": [{"model": "plain20", "train_error": 0.1234, "seeds": 2}],
              "files": [str(picture)]}
    (tmp_path / "degradation.json").write_text(json.dumps(record))
    result = Result.from_json(tmp_path / "degradation.json")
    html = result._repr_mimebundle_()["text/html"]
    assert "degradation: shown with a caveat" in html and "plain-56&#x27;s training error is above" in html
    assert "<td>plain20</td><td>12.34%</td><td>2</td>" in html and "data:image/png;base64," in html
    with pytest.raises(CnnlabError, match=r"is not an experiment's result"):
        (tmp_path / "bad.json").write_text("{}")
        Result.from_json(tmp_path / "bad.json")
