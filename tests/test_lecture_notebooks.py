"""The lectures in notebooks/: stored without outputs (they diff as text), and each executed top to
bottom in a fresh kernel with no error and with rich outputs; their own asserts check the seeds'
numbers against cnnlab's as they run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="needs the test extras' notebook tools")
nbclient = pytest.importorskip("nbclient", reason="needs the test extras' notebook tools")
pytest.importorskip("ipykernel", reason="needs the test extras' notebook tools")

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9]*.ipynb"))
RICH = {"text/html", "image/svg+xml", "image/png"}


def test_the_three_lectures_are_there():
    assert [path.name for path in NOTEBOOKS] == ["01_convolution_worked.ipynb", "02_lenet.ipynb",
                                                 "03_alexnet_and_vgg.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_stored_without_outputs(path):
    notebook = json.loads(path.read_text())
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert code and all(cell["outputs"] == [] and cell["execution_count"] is None for cell in code)
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_runs_top_to_bottom_with_rich_outputs(path, tmp_path):
    notebook = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()  # raises on an error
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output["output_type"] == "error"]
    rich = [output for output in outputs if RICH & set(output.get("data", {}))]
    assert len(rich) >= 5, path.name
    assert list(path.parent.glob("runs")) == []  # what a notebook writes stays in its working folder
