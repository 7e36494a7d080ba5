"""Execute the lecture notebooks in a fresh kernel each and write, for a student to open, the
executed notebooks and their HTML: `make notebooks` (or `python notebooks/execute.py [OUT]`,
default build/notebooks). The notebooks here stay without outputs; what they write while running
(run folders, pictures) goes under OUT/work, not beside them."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbconvert import HTMLExporter

HERE = Path(__file__).resolve().parent


def execute(path: Path, work: Path, timeout: int = 600):
    """`path` executed in a fresh kernel whose working folder is `work`; the executed notebook."""
    notebook = nbformat.read(path, as_version=4)
    work.mkdir(parents=True, exist_ok=True)
    NotebookClient(notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(work)}}).execute()
    return notebook


def main(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter()
    for path in sorted(HERE.glob("[0-9]*.ipynb")):
        started = time.perf_counter()
        notebook = execute(path, out / "work" / path.stem)
        nbformat.write(notebook, out / path.name)
        html, _ = exporter.from_notebook_node(notebook)
        (out / f"{path.stem}.html").write_text(html, encoding="utf-8")
        print(f"{path.name}: executed in {time.perf_counter() - started:.1f} s -> {out / path.name}, "
              f"{out / (path.stem + '.html')}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("build/notebooks")))
