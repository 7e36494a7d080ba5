"""What a notebook cell costs: the size and rendering time of each rich display, beside the text a
terminal gets and beside torchinfo's text (torchinfo has no HTML view).

    python benchmarks/notebook_display.py [--models resnet152 densenet264 nasnet_a_large] [--out FILE]

Per model, in one run on this machine: the summary is computed once (not timed here:
benchmarks/analysis_speed.py times it), then its HTML (`_repr_html_`) and its text (`repr`) are
rendered, best of 5, and what a notebook cell computes (`_repr_mimebundle_`: the HTML and, as
its text fallback, the table's first and last 30 rows); the model's card (`_repr_html_` of the model: one meta forward for the stage
shapes) and the diagram's SVG (Graphviz's layout) are timed once; torchinfo's table is formatted
from its own computed statistics (`str(stats)`), best of 5.
"""

from __future__ import annotations

import argparse
import json
import time

import cnnlab
from cnnlab.train.precision import cpu_name

MODELS = ["alexnet", "resnet152", "densenet264", "nasnet_a_large"]


def best_of(function, repeat: int = 5) -> tuple[float, object]:
    times, value = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        value = function()
        times.append(time.perf_counter() - start)
    return min(times), value


def measure(name: str) -> dict:
    result = cnnlab.summary(name)
    html_seconds, html = best_of(result._repr_html_)
    text_seconds, text = best_of(lambda: repr(result))
    bundle_seconds, _ = best_of(result._repr_mimebundle_)
    model = cnnlab.create_model(name)
    card_seconds, card = best_of(model._repr_html_, repeat=1)
    diagram = cnnlab.draw(name)
    svg_seconds, svg = best_of(diagram.svg, repeat=1)
    row = {"model": name, "rows": len(result.rows), "html_kb": len(html) / 1000, "html_ms": 1000 * html_seconds,
           "text_kb": len(text) / 1000, "text_ms": 1000 * text_seconds, "cell_ms": 1000 * bundle_seconds, "card_kb": len(card) / 1000,
           "card_ms": 1000 * card_seconds, "svg_kb": len(svg) / 1000, "svg_ms": 1000 * svg_seconds}
    try:
        import torchinfo
    except ImportError:
        return row
    stats = torchinfo.summary(cnnlab.create_model(name), input_size=(1, *model.default_input_size), verbose=0,
                              depth=10)
    info_seconds, info = best_of(lambda: str(stats))
    row.update(torchinfo_kb=len(info) / 1000, torchinfo_ms=1000 * info_seconds)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--out", default=None, help="write the rows as JSON here")
    args = parser.parse_args()
    rows = [measure(name) for name in args.models]
    print(f"cpu: {cpu_name()}; cnnlab {cnnlab.__version__}")
    header = ("model", "rows", "HTML KB", "HTML ms", "cell ms", "text KB", "text ms", "card KB", "card ms", "SVG KB", "SVG ms",
              "torchinfo KB", "torchinfo ms")
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for row in rows:
        values = [row["model"], f"{row['rows']:,}"] + [f"{row[key]:,.1f}" for key in (
            "html_kb", "html_ms", "cell_ms", "text_kb", "text_ms", "card_kb", "card_ms", "svg_kb", "svg_ms")]
        values += [f"{row[key]:,.1f}" if key in row else "-" for key in ("torchinfo_kb", "torchinfo_ms")]
        print("| " + " | ".join(values) + " |")
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(rows, handle, indent=2)


if __name__ == "__main__":
    main()
