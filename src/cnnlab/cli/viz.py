"""`cnnlab draw`, `filters`, `features`, `report` and `experiment`."""

from __future__ import annotations

import argparse

from cnnlab.cli.options import add_model_options, console, model_kwargs, user_module_and_input


def add_commands(commands: argparse._SubParsersAction) -> None:
    from cnnlab.viz.diagram import ANNOTATIONS, MODULE_FIGURES

    draw = commands.add_parser(
        "draw", help="a block diagram of a network, as the papers draw it (Graphviz)",
        description="Boxes for layers (\"3x3 conv, 64, /2\") with BN and activations folded in, the output shape on "
                    "each edge, residual shortcuts meeting at \"+\", branches meeting at a concat, block modules framed "
                    "and runs of identical blocks drawn once as \"Bottleneck ×3\". Read from the same trace as `summary`.")
    draw.add_argument("source", nargs="?", metavar="MODEL|RUN_DIR", help="a zoo name, a run folder or a checkpoint")
    draw.add_argument("--module", choices=MODULE_FIGURES, default=None,
                      help="one of the seeds' module figures at the seeds' sizes, instead of a whole model")
    draw.add_argument("--depth", type=int, default=None,
                      help="one box per module N levels down, with its totals (0: every layer, no ×N folding)")
    draw.add_argument("--out", default=None, help="the file: .svg (default MODEL.svg), .png or .pdf")
    draw.add_argument("--input", default=None, help="input size CxHxW (default: the model's)")
    draw.add_argument("--batch", type=int, default=1, help="minibatch for --annotate's FLOPs and memory (default 1)")
    draw.add_argument("--annotate", default="", metavar="WHAT",
                      help=f"numbers from the analysis in each box, comma-separated: {', '.join(ANNOTATIONS)}")
    draw.set_defaults(run=run_draw)

    filters = commands.add_parser("filters", help="a convolution's learned filters as an image grid",
                                  description="The filters of the first convolution (or --layer) as images, each scaled on "
                                              "its own: what ZFNet's authors inspected to fix AlexNet's first layer.")
    filters.add_argument("source", metavar="CHECKPOINT|MODEL", help="a run folder or checkpoint (or a zoo name: initial weights)")
    filters.add_argument("--layer", default=None, help="the convolution (default: the first), e.g. conv1 or features.0")
    filters.add_argument("--out", default="filters.png", help="the image file (.png, .svg, .pdf)")
    filters.set_defaults(run=run_filters)

    features = commands.add_parser("features", help="the feature maps of one image at one layer",
                                   description="Run one image through a checkpoint (with its run's preprocessing) and "
                                               "draw the maps a layer outputs.")
    features.add_argument("checkpoint", metavar="CHECKPOINT")
    features.add_argument("image", metavar="IMAGE")
    features.add_argument("--layer", required=True, help="a module name, e.g. layer1 or features.conv2")
    features.add_argument("--limit", type=int, default=64, help="at most this many channels (default 64)")
    features.add_argument("--out", default="features.png", help="the image file (.png, .svg, .pdf)")
    features.set_defaults(run=run_features)

    explore = commands.add_parser(
        "explore", help="one offline page per network: click any layer for its numbers worked out",
        description="The network's diagram (as `cnnlab draw` draws it), zoomable and pannable, and a panel: a click on a "
                    "box, or a layer found by name, shows its input and output shapes, parameters, FLOPs and multiply-adds, "
                    "activations, memory, its share of a simulated training step's memory, receptive field and jump, each "
                    "with its formula filled in, and seed 003's value beside cnnlab's where the slides have the row. One "
                    "HTML file that works offline; building it needs Graphviz's dot (make graphviz).")
    add_model_options(explore, user_modules=True)
    explore.add_argument("--input", default=None,
                         help="input size CxHxW (default: the model's; needed for FILE.py:NAME, e.g. 3x32x32)")
    explore.add_argument("--batch", type=int, default=1, help="minibatch for the costs (default 1; 128: seed 003's tables)")
    explore.add_argument("--out", default=None, help="the page to write (default MODEL.html)")
    explore.set_defaults(run=run_explore)

    report = commands.add_parser("report", help="one self-contained HTML page for a model or a run",
                                 description="The summary table (sortable), the per-layer plots and, for a run folder, its "
                                             "curves, confusion matrix, metrics and settings, in one HTML file that needs "
                                             "no network access.")
    report.add_argument("source", metavar="MODEL|RUN_DIR")
    report.add_argument("--html", default="report.html", help="the page to write (default report.html)")
    report.set_defaults(run=run_report)

    from cnnlab.experiments import EXPERIMENTS

    listing = "\n".join(f"  {name:22} {experiment.summary}" for name, experiment in EXPERIMENTS.items())
    experiment = commands.add_parser(
        "experiment", help="rerun one of the seeds' claims (or all of them) and say whether the figures show it",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Rerun a claim of the lecture notes with figures: prints the budget and the expected time, a progress "
                    "bar, a table of means and seed spreads, writes OUT/NAME.json and OUT/NAME.png, and ends with the "
                    "verdict (shown, shown with a caveat, not shown) and the figures that decide it.\n\n" + listing)
    experiment.add_argument("name", choices=(*EXPERIMENTS, "all"), metavar="NAME",
                            help="an experiment above, or all (then OUT/summary.md, .json and .png)")
    budget = experiment.add_mutually_exclusive_group()
    budget.add_argument("--quick", dest="tier", action="store_const", const="quick",
                        help="the budget the tests run: seconds to a minute, one seed; decides nothing")
    budget.add_argument("--long", dest="tier", action="store_const", const="long",
                        help="a longer CPU budget where the standard one cannot decide a claim (degradation: about 95 "
                             "minutes, He et al.'s warm-up rule for every arm); two seeds")
    budget.add_argument("--full", dest="tier", action="store_const", const="full",
                        help="the papers' budgets, three seeds: for a GPU")
    experiment.set_defaults(tier="standard")
    experiment.add_argument("--data", default="fashion-mnist", help="data set for the trained arms (default fashion-mnist)")
    experiment.add_argument("--out", default="experiments", help="folder for NAME.json and NAME.png (default experiments/)")
    experiment.add_argument("--resume", action="store_true",
                            help="continue an interrupted run: keep its finished runs (each arm and seed) and, with all, "
                                 "the experiments OUT already holds at this budget and data; train the rest")
    experiment.set_defaults(run=run_experiment)


def run_explore(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cnnlab.viz.explorer import checked_page_path, explore

    out = checked_page_path(args.out or f"{Path(args.model.split(':')[-1]).stem or 'model'}.html")
    kwargs = model_kwargs(args)
    own = user_module_and_input(args, kwargs)  # FILE.py:NAME, a module of the user's own
    model, input_size = (own[0], own[1]) if own is not None else (args.model, args.input)
    page = explore(model, input_size=input_size, batch=args.batch, **kwargs)
    path = page.save(out)
    console().print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB, {page.layers} layers; works offline)",
                    highlight=False)
    return 0


def run_draw(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cnnlab.errors import CnnlabError
    from cnnlab.viz.diagram import draw, module_figure

    annotate = [a.strip() for a in args.annotate.split(",") if a.strip()]
    if args.module:
        if args.source:
            raise CnnlabError("give a MODEL or --module NAME, not both")
        module, size, title = module_figure(args.module)
        out = args.out or f"{args.module}.svg"
        draw(module, input_size=args.input or size, out=out, depth=args.depth, annotate=annotate, batch=args.batch,
             title=title)
    elif not args.source:
        raise CnnlabError("say what to draw: a MODEL (see `cnnlab models`), a run folder, or --module NAME")
    elif Path(args.source).exists():
        from cnnlab.models.from_checkpoint import model_from_source

        model, size, description = model_from_source(args.source)
        out = args.out or f"{Path(args.source).name or 'model'}.svg"
        draw(model, input_size=args.input or size, out=out, depth=args.depth, annotate=annotate, batch=args.batch,
             title=description)
    else:
        out = args.out or f"{args.source}.svg"
        draw(args.source, input_size=args.input, out=out, depth=args.depth, annotate=annotate, batch=args.batch)
    console().print(f"wrote {out}", highlight=False)
    return 0


def run_filters(args: argparse.Namespace) -> int:
    from cnnlab.models.from_checkpoint import model_from_source
    from cnnlab.viz.filters import filter_grid

    model, _, description = model_from_source(args.source)
    path, layer = filter_grid(model, args.out, args.layer, title=f"{description}\n")
    console().print(f"wrote {path} ({layer})", highlight=False)
    return 0


def run_features(args: argparse.Namespace) -> int:
    from cnnlab.train.evaluate import checkpoint_input
    from cnnlab.models.from_checkpoint import load_model
    from cnnlab.viz.filters import feature_maps

    model, meta = load_model(args.checkpoint)
    x = checkpoint_input(meta, args.image)
    path, shape = feature_maps(model, x, args.layer, args.out, limit=args.limit, title=f"{meta.model}, {args.image}\n")
    console().print(f"wrote {path} ({'x'.join(map(str, shape))} at {args.layer})", highlight=False)
    return 0


def run_experiment(args: argparse.Namespace) -> int:
    from cnnlab.experiments import expected_time, run_all
    from cnnlab.experiments import run_experiment as run

    out = console()
    log = lambda line: out.print(line, highlight=False)  # noqa: E731
    if args.name == "all":
        records = run_all(args.out, args.tier, args.data, resume=args.resume, log=log, progress=True,
                          on_result=lambda result: _print_result(out, result))
        from rich.table import Table

        from cnnlab.experiments import open_parts

        table = Table(title=f"the seeds' claims ({args.tier} budget)")
        for column in ("experiment", "verdict", "decided at", "still open", "minutes"):
            table.add_column(column, justify="right" if column == "minutes" else "left")
        for record in records:
            table.add_row(record["experiment"], record["verdict"], record["tier"], "; ".join(open_parts(record)) or "-",
                          f"{record['seconds'] / 60:.1f}")
        out.print(table)
        log(f"wrote {args.out}/summary.md, summary.json, summary.png")
        return 0
    log(f"experiment {args.name} ({args.tier} budget; expected {expected_time(args.name, args.tier)})")
    _print_result(out, run(args.name, args.out, tier=args.tier, data=args.data, log=log, progress=True, resume=args.resume))
    return 0


def _print_result(out, result) -> None:
    from rich.table import Table

    from cnnlab.experiments.summary import cell

    table = Table(title=f"{result.name}: {result.budget}" if result.budget else result.name)
    for column in result.rows[0]:
        table.add_column(column, justify="left" if isinstance(result.rows[0][column], str) else "right")
    for row in result.rows:
        table.add_row(*(cell(key, value) for key, value in row.items()))
    out.print(table)
    out.print(f"claim: {result.claim}", highlight=False)
    out.print(f"verdict: {result.verdict.upper()}: {result.reason}", highlight=False)
    out.print(f"wrote {', '.join(result.files)}", highlight=False)


def run_report(args: argparse.Namespace) -> int:
    from cnnlab.model_report import build_report
    from cnnlab.viz.report import write_page

    path = write_page(build_report(args.source), args.html)
    console().print(f"wrote {path} ({path.stat().st_size / 1024:,.0f} KiB, self-contained)", highlight=False)
    return 0
