"""``revml`` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _mnist(args: argparse.Namespace) -> int:
    from .datasets import find_mnist_dir
    from .experiments.mnist import MnistConfig, run

    data_dir = args.data_dir
    if data_dir is None:
        # A local copy beside the checkout, when there is one; otherwise torchvision downloads.
        here = Path(__file__).resolve().parent.parent
        found = find_mnist_dir([here.parent / "shared" / "data", here / "data"])
        data_dir = str(found) if found else None
    if data_dir is None:
        print("no local MNIST copy found: torchvision will download it", file=sys.stderr)
    else:
        print(f"using the MNIST files in {data_dir}", file=sys.stderr)
    run(
        MnistConfig(
            data_dir=data_dir,
            out_dir=args.out,
            n_train=args.n_train,
            n_test=args.n_test,
            band_rows=args.rows,
            seed=args.seed,
            device=args.device,
            backend=args.backend,
            verbose=not args.quiet,
            default_params={} if args.epochs is None else {"epochs": args.epochs},
        )
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="revml", description="Missing-data imputation by reverse training."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "mnist",
        help="reproduce the MNIST experiment (10 of 28 rows missing)",
        description="Train an autoencoder on the MNIST training digits, damage the test "
        "digits by hiding contiguous pixel rows, impute them with zero fill, the "
        "direct autoencoder and reverse training, and print/write the table "
        "(results.json) and a figure (figure.png).",
    )
    p.add_argument(
        "--data-dir",
        help="folder with the four MNIST IDX .gz files (default: "
        "../shared/data/mnist beside the checkout if present, else download)",
    )
    p.add_argument("--out", default="runs/mnist", help="output folder (default: %(default)s)")
    p.add_argument(
        "--n-train", type=int, default=60_000, help="training digits used (default: %(default)s)"
    )
    p.add_argument(
        "--n-test", type=int, default=10_000, help="test digits imputed (default: %(default)s)"
    )
    p.add_argument(
        "--rows",
        type=int,
        default=10,
        help="contiguous pixel rows hidden per digit (default: %(default)s)",
    )
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="autoencoder training epochs (default: sized from the data)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:1... (default: cuda if available)"
    )
    p.add_argument(
        "--backend",
        default="auto",
        choices=["auto", "reference", "compile", "triton"],
        help="execution path of the reverse loop (default: %(default)s)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars or log lines")
    p.set_defaults(func=_mnist)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, FileNotFoundError, RuntimeError) as err:
        print(f"revml: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
