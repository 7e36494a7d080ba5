"""`cnnlab op`: the seeds' first lessons as commands (analysis/operators.py does the work)."""

from __future__ import annotations

import argparse

from cnnlab.errors import CnnlabError

MATRIX_HELP = 'entries separated by spaces, rows by ";", channels by "|", e.g. "0 1 2; 3 4 5; 6 7 8"; or @FILE (text or .npy)'


def add_commands(commands: argparse._SubParsersAction) -> None:
    op = commands.add_parser("op", help="the operators worked by hand: conv, pool, conv1x1, filter, learn-kernel, "
                                        "efficiency, batchnorm",
                             description="The seeds' first lessons: each operator computed by torch and written out.")
    sub = op.add_subparsers(dest="operator", metavar="OPERATOR")
    sub.required = True

    conv = sub.add_parser("conv", help="2-D cross-correlation, each output element as its sum of products",
                          description="Cross-correlate --input with each --kernel (one output channel per kernel), as "
                                      "seed 002 works it: 0x0 + 1x1 + 3x2 + 4x3 = 19.")
    conv.add_argument("--input", required=True, help=MATRIX_HELP)
    conv.add_argument("--kernel", required=True, action="append", help="a kernel with one slice per input channel "
                                                                        "(repeat for several output channels)")
    conv.add_argument("--padding", default="0", help="zero padding: P or PH,PW (default 0)")
    conv.add_argument("--stride", default="1", help="S or SH,SW (default 1)")
    conv.add_argument("--bias", type=float, default=0.0)
    conv.add_argument("--no-worked", dest="worked", action="store_false", help="the output matrix only")
    conv.set_defaults(run=run_conv)

    pool = sub.add_parser("pool", help="max or average pooling, window by window")
    pool.add_argument("--input", required=True, help=MATRIX_HELP)
    pool.add_argument("--mode", choices=("max", "avg"), default="max")
    pool.add_argument("--size", default="2", help="window: K or KH,KW (default 2)")
    pool.add_argument("--stride", default=None, help="S or SH,SW (default: the window size)")
    pool.add_argument("--padding", default="0", help="P or PH,PW (default 0)")
    pool.add_argument("--no-worked", dest="worked", action="store_false")
    pool.set_defaults(run=run_pool)

    one = sub.add_parser("conv1x1", help="the 1x1 convolution as a matrix product over channels")
    one.add_argument("--input", required=True, help=MATRIX_HELP + " (several channels)")
    one.add_argument("--kernel", required=True, help='C_out rows of C_in entries, e.g. "1 0 1; 0 1 1"')
    one.add_argument("--no-worked", dest="worked", action="store_false")
    one.set_defaults(run=run_conv1x1)

    filt = sub.add_parser("filter", help="filter a real image with a kernel, before and after as a PNG",
                          description="Cross-correlate an image with a kernel (seed 002's edge detection and sharpen) "
                                      "and write the image before and after.")
    filt.add_argument("image", metavar="IMAGE|mnist-embedded:INDEX")
    filt.add_argument("--kernel", default="edge", help='edge, sharpen, blur, or a matrix such as "-1 -1 -1; -1 8 -1; -1 -1 -1"')
    filt.add_argument("--out", default="filtered.png")
    filt.set_defaults(run=run_filter)

    learn = sub.add_parser("learn-kernel", help="learn the edge kernel [1, -1] from an image and its edges (d2l)")
    learn.add_argument("--image", default=None, help="mnist-embedded:INDEX or an image file (default: d2l's 6x8 image)")
    learn.add_argument("--steps", type=int, default=10)
    learn.add_argument("--lr", type=float, default=3e-2)
    learn.add_argument("--seed", type=int, default=0)
    learn.set_defaults(run=run_learn)

    efficiency = sub.add_parser("efficiency", help="stored floats and multiply-adds: a conv against a dense layer")
    efficiency.add_argument("--input", default="320x280", help="HxW (default seed 002's 320x280)")
    efficiency.add_argument("--kernel", default="2x1", help="KHxKW (default seed 002's 2x1)")
    efficiency.set_defaults(run=run_efficiency)

    norm = sub.add_parser("batchnorm", help="BatchNorm on a tiny batch: training, running averages, prediction, folding")
    norm.add_argument("--input", default=None, help="the batch's values for one channel, e.g. \"1 2; 3 4; 5 6; 7 10\" "
                                                    "(one row per image; default that)")
    norm.add_argument("--gamma", type=float, default=2.0)
    norm.add_argument("--beta", type=float, default=0.5)
    norm.add_argument("--momentum", type=float, default=0.1)
    norm.set_defaults(run=run_batchnorm)


def run_conv(args: argparse.Namespace) -> int:
    from cnnlab.analysis import operators

    x = operators.parse_matrix(args.input, "--input")
    kernels = [operators.parse_matrix(text, "--kernel") for text in args.kernel]
    padding = operators.parse_pair(args.padding, "--padding")
    stride = operators.parse_pair(args.stride, "--stride", minimum=1)
    print(operators.conv2d(x, kernels, padding, stride, args.bias).render(args.worked))
    return 0


def run_pool(args: argparse.Namespace) -> int:
    from cnnlab.analysis import operators

    x = operators.parse_matrix(args.input, "--input")
    size = operators.parse_pair(args.size, "--size", minimum=1)
    stride = operators.parse_pair(args.stride, "--stride", minimum=1) if args.stride else None
    padding = operators.parse_pair(args.padding, "--padding")
    print(operators.pool2d(x, args.mode, size, stride, padding).render(args.worked))
    return 0


def run_conv1x1(args: argparse.Namespace) -> int:
    from cnnlab.analysis import operators

    worked = operators.conv1x1(operators.parse_matrix(args.input, "--input"),
                               operators.parse_matrix(args.kernel, "--kernel"))
    print(worked.render(args.worked))
    return 0


def run_filter(args: argparse.Namespace) -> int:
    from cnnlab.analysis import operators
    from cnnlab.viz.filters import filtered_picture

    image, label = operators.lesson_image(args.image)
    path, kernel, filtered = filtered_picture(image, label, args.kernel, args.out)
    print(f"wrote {path}: {label} before and after the {kernel.shape[0]}x{kernel.shape[1]} kernel "
          f"(output range {operators.number(filtered.min())} to {operators.number(filtered.max())})")
    return 0


def run_learn(args: argparse.Namespace) -> int:
    from cnnlab.analysis import operators

    if args.steps < 1 or args.lr <= 0:
        raise CnnlabError("--steps must be at least 1 and --lr positive")
    image = operators.lesson_image(args.image)[0][0] if args.image else None
    result = operators.learn_kernel(image, args.steps, args.lr, args.seed)
    h, w = result.image.shape
    print(f"image X {h}x{w}; its edges Y = X cross-correlated with the kernel [1, -1] ({h}x{w - 1}); learn a 1x2 kernel "
          f"from X and Y alone (squared error, gradient descent at lr {args.lr:g})")
    for step, loss, kernel in result.steps:
        print(f"step {step:>3}: loss {loss:.4f}, kernel [{kernel[0]:.4f}, {kernel[1]:.4f}]")
    final = result.steps[-1][2]
    print(f"learned [{final[0]:.4f}, {final[1]:.4f}] against the true [1, -1]")
    return 0


def run_efficiency(args: argparse.Namespace) -> int:
    from cnnlab.analysis import operators

    print(operators.efficiency(operators.parse_pair(args.input, "--input", 1), operators.parse_pair(args.kernel, "--kernel", 1)).render())
    return 0


def run_batchnorm(args: argparse.Namespace) -> int:
    from cnnlab.analysis import operators

    batch = None
    if args.input:
        values = operators.parse_matrix(args.input, "--input")[0]  # (images, values per image)
        if values.numel() < 2:
            raise CnnlabError("--input needs at least two values to have a variance")
        batch = values[:, None, None, :]
    print(operators.batchnorm_lesson(batch, args.gamma, args.beta, args.momentum))
    return 0
