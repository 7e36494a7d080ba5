"""How long `cnnlab explore` takes to write a page, and how large the page is; with where the time
goes (the summary with its simulated training step, Graphviz's layout, the page itself).

    python benchmarks/explore_page.py [--models resnet50 densenet121 nasnet_a_large]

One run per model in this process (the imports are warm after the first); the CPU is named.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from cnnlab.analysis import summary
from cnnlab.analysis.inputs import meta_model
from cnnlab.viz.diagram import drawing_of
from cnnlab.train.precision import cpu_name
from cnnlab.viz.explorer import explore

MODELS = ["resnet50", "densenet121", "inception_v3", "nasnet_a_large"]


def timed(function):
    start = time.perf_counter()
    value = function()
    return time.perf_counter() - start, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=MODELS)
    args = parser.parse_args()
    explore("alexnet")  # warm the imports
    print(f"cpu: {cpu_name()}")
    print("| model | layers | page written (s) | page (MB) | of which: summary + step (s) | layout (s) |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models:
            seconds, page = timed(lambda: explore(name, out=Path(folder) / f"{name}.html"))
            size = (Path(folder) / f"{name}.html").stat().st_size / 1e6
            model = meta_model(name, None)
            summary_seconds, result = timed(lambda: summary(model, peak=True))
            layout_seconds, _ = timed(lambda: drawing_of(result, dict(model.named_modules()))[0].svg())
            print(f"| {name} | {page.layers:,} | {seconds:.2f} | {size:.2f} | {summary_seconds:.2f} | {layout_seconds:.2f} |")


if __name__ == "__main__":
    main()
